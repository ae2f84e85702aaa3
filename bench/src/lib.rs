//! What the benchmarks share: writing their section of bench/RESULTS.md.

const HEADER: &str = "# Benchmark results\n\nEach section is rewritten by the command it names. Ratios compare against a native baseline measured in the same run.\n\n";

/// Replace the section whose title starts with `title` (`## {title}…`) with `section`,
/// keeping every other section in place (a new one goes first).
pub fn write_section(path: &str, title: &str, section: &str) -> std::io::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut sections: Vec<String> = existing.split("\n## ").skip(1).map(|s| format!("## {}", s.trim_end())).collect();
    match sections.iter().position(|s| s.starts_with(&format!("## {title}"))) {
        Some(at) => sections[at] = section.trim_end().to_string(),
        None => sections.insert(0, section.trim_end().to_string()),
    }
    std::fs::write(path, format!("{HEADER}{}\n", sections.join("\n\n")))
}

/// Today's date (UTC) for section titles.
pub fn today() -> String {
    std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_section_is_replaced_in_place_and_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RESULTS.md");
        let path = path.to_str().unwrap();
        super::write_section(path, "A", "## A — 1\n\nfirst\n").unwrap();
        super::write_section(path, "B", "## B — 1\n\nsecond\n").unwrap();
        super::write_section(path, "A", "## A — 2\n\nnewer\n").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("# Benchmark results"));
        assert!(text.contains("## B — 1\n\nsecond") && text.contains("## A — 2\n\nnewer") && !text.contains("first"));
        assert!(text.find("## B").unwrap() < text.find("## A").unwrap(), "replaced in place");
    }
}
