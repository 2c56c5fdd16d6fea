//! What the benchmark reports share: `BENCHMARKS.md` is written by several harnesses
//! (`scripts/bench` owns most of it; `scripts/soak` and `scripts/bench-async` own one `## `
//! section each), so each replaces only its own sections and keeps the others.

use std::path::Path;
use std::process::Command;

/// The section of `BENCHMARKS.md` that `scripts/soak` owns.
pub const SOAK_HEADING: &str = "## Soak";

/// The section of `BENCHMARKS.md` that `scripts/bench-async` owns.
pub const ASYNC_HEADING: &str = "## Async vs blocking subscriber";

/// The section of `BENCHMARKS.md` kept by hand (FEC figures from the simulator and the
/// namespace tests, docs/fec.md).
pub const FEC_HEADING: &str = "## FEC (forward error correction)";

/// The section of `BENCHMARKS.md` kept by hand (PGMCC figures from the simulator and the
/// namespace tests, docs/congestion.md).
pub const PGMCC_HEADING: &str = "## Congestion control (PGMCC)";

/// The section of `BENCHMARKS.md` kept by hand (the link-byte ratio of the sharding test on
/// the namespace LAN, docs/sharding.md).
pub const SHARDING_HEADING: &str = "## Topic→group sharding";

/// The section of `BENCHMARKS.md` kept by hand (the catch-up time of a late joiner on the
/// namespace LAN, docs/late-join.md).
pub const LATE_JOIN_HEADING: &str = "## Late join with history";

/// The section of `BENCHMARKS.md` kept by hand (the NAK reduction and the path skew of the
/// dual-path test on the namespace LAN, docs/dual-path.md).
pub const DUAL_PATH_HEADING: &str = "## Dual-path (A/B) sessions";

/// The sections of `BENCHMARKS.md` that `scripts/bench` keeps as they are.
pub const FOREIGN_SECTIONS: [&str; 7] = [
    SOAK_HEADING,
    ASYNC_HEADING,
    FEC_HEADING,
    PGMCC_HEADING,
    SHARDING_HEADING,
    LATE_JOIN_HEADING,
    DUAL_PATH_HEADING,
];

/// `existing` with its section `heading` (up to the next `## ` heading or the end) replaced by
/// `section`, or with `section` appended when there is none.
pub fn splice_section(existing: &str, heading: &str, section: &str) -> String {
    let section = section.trim_end();
    let lines: Vec<&str> = existing.lines().collect();
    let Some((start, end)) = find_section(&lines, heading) else {
        let mut out = existing.trim_end().to_owned();
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(section);
        out.push('\n');
        return out;
    };
    let mut out = lines[..start].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(section);
    out.push('\n');
    if end < lines.len() {
        out.push('\n');
        out.push_str(&lines[end..].join("\n"));
        out.push('\n');
    }
    out
}

/// The section `heading` of `doc` (heading line included, trailing blank lines trimmed), if
/// it has one.
pub fn section_of(doc: &str, heading: &str) -> Option<String> {
    let lines: Vec<&str> = doc.lines().collect();
    let (start, end) = find_section(&lines, heading)?;
    Some(lines[start..end].join("\n").trim_end().to_owned())
}

/// The line range of section `heading`: its heading line up to the next `## ` heading.
fn find_section(lines: &[&str], heading: &str) -> Option<(usize, usize)> {
    let start = lines.iter().position(|l| l.trim_end() == heading)?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    Some((start, end))
}

/// The workspace's commit (`git rev-parse --short=10 HEAD`), with `+ uncommitted changes`
/// when the tree is dirty.
pub fn commit() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short=10", "HEAD"]) else {
        return "unknown (not a git checkout)".to_owned();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} + uncommitted changes")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_or_appended_and_nothing_else_moves() {
        let doc = "# B\n\nintro\n\n## Memory\n\nx\n";
        let once = splice_section(doc, "## Soak", "## Soak\n\nfirst\n");
        assert_eq!(once, "# B\n\nintro\n\n## Memory\n\nx\n\n## Soak\n\nfirst\n");
        let twice = splice_section(&once, "## Soak", "## Soak\n\nsecond\n");
        assert_eq!(
            twice,
            "# B\n\nintro\n\n## Memory\n\nx\n\n## Soak\n\nsecond\n"
        );
        // In the middle: the sections after it stay, subsections are part of it.
        let mid = "# B\n\n## Soak\n\nold\n\n### Memory\n\nold\n\n## How\n\nkeep\n";
        assert_eq!(
            splice_section(mid, "## Soak", "## Soak\n\nnew\n"),
            "# B\n\n## Soak\n\nnew\n\n## How\n\nkeep\n"
        );
        assert_eq!(
            splice_section("", "## Soak", "## Soak\n\nx"),
            "## Soak\n\nx\n"
        );
        assert_eq!(
            section_of(mid, "## Soak").as_deref(),
            Some("## Soak\n\nold\n\n### Memory\n\nold")
        );
        assert_eq!(section_of(mid, "## Async"), None);
    }
}
