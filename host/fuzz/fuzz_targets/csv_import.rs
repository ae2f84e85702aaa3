//! Any base-data file (the first byte picks residents, places or organisations): reading
//! never panics, every row kept has the header's width, and the problem list stays bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use linli_formats::csv_table::{parse_table, ImportKind, MAX_PROBLEMS};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else { return };
    let kind = [ImportKind::Residents, ImportKind::Places, ImportKind::Organisations][usize::from(selector) % 3];
    let mut problems = Vec::new();
    let table = parse_table(kind, file, &mut problems);
    // The header's own problems (at most one per column) come before the row limit applies.
    assert!(problems.len() <= MAX_PROBLEMS + 1 + file.len().min(4096), "{} problems", problems.len());
    if let Some(table) = table {
        for row in &table.rows {
            for (column, _, _) in kind.columns() {
                let _ = table.get(row, column);
            }
        }
        let widths: std::collections::BTreeSet<usize> = table.rows.iter().map(|r| r.len()).collect();
        assert!(widths.len() <= 1, "rows of different widths kept: {widths:?}");
    }
});
