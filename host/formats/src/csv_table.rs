//! Base-data CSV files (residents, places, organisations) as spreadsheets save them:
//! headers in English or Chinese, a UTF-8 BOM allowed, every problem reported with the row
//! and column a person sees. Checking the rows against the tenant tree and the existing
//! records is the host's part (capabilities/base/import.rs).
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Problems listed in one report; a file with more is almost certainly the wrong file.
pub const MAX_PROBLEMS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportKind {
    Residents,
    Places,
    Organisations,
}

impl ImportKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "residents" => Some(Self::Residents),
            "places" => Some(Self::Places),
            "organisations" | "organizations" => Some(Self::Organisations),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Residents => "residents",
            Self::Places => "places",
            Self::Organisations => "organisations",
        }
    }

    /// (canonical name, Chinese header, required)
    pub fn columns(self) -> &'static [(&'static str, &'static str, bool)] {
        match self {
            Self::Residents => &[
                ("real_name", "姓名", true),
                ("id_number", "身份证号", true),
                ("phone", "手机号", true),
                ("grid", "网格", true),
                ("building", "楼栋", false),
                ("unit", "单元", false),
                ("room", "房号", false),
                ("household", "户", false),
                ("tags", "标签", false),
            ],
            Self::Places => &[("name", "名称", true), ("kind", "类型", true), ("grid", "网格", true), ("address", "地址", false)],
            Self::Organisations => &[("name", "名称", true), ("kind", "类型", true), ("grid", "网格", true), ("contact", "联系方式", false)],
        }
    }
}

/// One thing wrong with the file. Rows count as a spreadsheet shows them: the header is
/// row 1, the first record row 2. `code` says what is wrong for the console to put in the
/// reader's language (with `value`, what it names: a grid, a row, a phone number); `problem`
/// says it in English, for the API and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    pub row: usize,
    pub column: String,
    #[serde(default)]
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub problem: String,
}

impl Problem {
    pub fn new(row: usize, column: impl Into<String>, code: &str, value: Option<String>, problem: impl Into<String>) -> Self {
        Self { row, column: column.into(), code: code.into(), value, problem: problem.into() }
    }
}

/// A parsed file: header → column index, and the record rows.
pub struct Table {
    pub columns: HashMap<&'static str, usize>,
    pub rows: Vec<csv::StringRecord>,
}

impl Table {
    pub fn get<'a>(&self, row: &'a csv::StringRecord, column: &str) -> &'a str {
        self.columns.get(column).and_then(|i| row.get(*i)).map(str::trim).unwrap_or("")
    }
}

/// Read a CSV file (UTF-8, an optional BOM, English or Chinese headers) into rows; every
/// problem found is added to `problems`. `None` when the file cannot be read at all.
pub fn parse_table(kind: ImportKind, bytes: &[u8], problems: &mut Vec<Problem>) -> Option<Table> {
    let text = match std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)) {
        Ok(text) => text,
        Err(e) => {
            problems.push(Problem::new(0, "", "not-utf8", None, format!("the file is not UTF-8 text (byte {}); save it as \"CSV UTF-8\"", e.valid_up_to())));
            return None;
        }
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.push(Problem::new(1, "", "header-unreadable", None, format!("cannot read the header: {e}")));
            return None;
        }
    };
    let mut columns = HashMap::new();
    for (index, name) in header.iter().enumerate() {
        let name = name.trim();
        match kind.columns().iter().find(|(en, zh, _)| *en == name || *zh == name) {
            Some((en, _, _)) if columns.contains_key(en) => problems.push(Problem::new(1, name, "column-twice", None, "this column appears twice")),
            Some((en, _, _)) => {
                columns.insert(*en, index);
            }
            None => problems.push(Problem::new(
                1,
                name,
                "column-unknown",
                Some(kind.columns().iter().map(|(_, zh, _)| *zh).collect::<Vec<_>>().join("、")),
                format!(
                    "unknown column; the columns of a {} file are {}",
                    kind.as_str(),
                    kind.columns().iter().map(|(en, zh, _)| format!("{zh}/{en}")).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    for (en, zh, required) in kind.columns() {
        if *required && !columns.contains_key(en) {
            problems.push(Problem::new(1, format!("{zh}/{en}"), "column-missing", Some(zh.to_string()), "this required column is missing"));
        }
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        if problems.len() >= MAX_PROBLEMS {
            problems.push(Problem::new(
                i + 2,
                "",
                "too-many-problems",
                Some(MAX_PROBLEMS.to_string()),
                format!("more than {MAX_PROBLEMS} problems; stopped reading here (is this the right file?)"),
            ));
            break;
        }
        match record {
            Ok(r) if r.iter().all(|f| f.trim().is_empty()) => {}
            Ok(r) if r.len() != header.len() => problems.push(Problem::new(
                i + 2,
                "",
                "field-count",
                Some(format!("{}/{}", r.len(), header.len())),
                format!("has {} fields, the header has {}", r.len(), header.len()),
            )),
            Ok(r) => rows.push(r),
            Err(e) => problems.push(Problem::new(i + 2, "", "row-unreadable", None, format!("cannot read this row: {e}"))),
        }
    }
    Some(Table { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_headers_a_bom_and_every_problem_with_its_row() {
        let file = "\u{feff}姓名,身份证号,手机号,网格,备注\n王秀英,110101195001010018,13800000001,xingfu-g1,\n,,,,\n李,1,2\n";
        let mut problems = Vec::new();
        let table = parse_table(ImportKind::Residents, file.as_bytes(), &mut problems).expect("readable");
        assert_eq!(table.rows.len(), 1, "the blank row is skipped, the short row refused");
        assert_eq!(table.get(&table.rows[0], "real_name"), "王秀英");
        assert_eq!(table.get(&table.rows[0], "tags"), "", "an absent optional column reads as empty");
        assert!(problems.iter().any(|p| p.row == 1 && p.column == "备注" && p.problem.contains("unknown column")), "{problems:?}");
        assert!(problems.iter().any(|p| p.row == 4 && p.problem.contains("fields")), "{problems:?}");
    }

    #[test]
    fn unreadable_files_say_why() {
        let mut problems = Vec::new();
        assert!(parse_table(ImportKind::Places, b"\xff\xfename", &mut problems).is_none());
        assert!(problems[0].problem.contains("UTF-8"));
        let mut problems = Vec::new();
        let table = parse_table(ImportKind::Places, "名称,类型\n".as_bytes(), &mut problems).expect("readable");
        assert!(table.rows.is_empty());
        assert!(problems.iter().any(|p| p.column == "网格/grid" && p.problem.contains("required")), "{problems:?}");
    }
}
