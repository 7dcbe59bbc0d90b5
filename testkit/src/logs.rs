//! The last lines of a peer's log, headed by whose log it is: what a failing test prints.

use std::path::Path;

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The last `lines` lines of the file at `path` (empty when it cannot be read).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
    tail(&std::fs::read_to_string(path).unwrap_or_default(), lines)
}

/// `text` under a heading that names the peer and where its log lives.
pub fn headed(peer: &str, place: &str, text: &str) -> String {
    format!("----- last lines of {peer} ({place}) -----\n{text}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\nb", 5), "a\nb");
        assert_eq!(tail("", 3), "");
        assert_eq!(
            headed("peer-0", "/tmp/x.log", "b\nc"),
            "----- last lines of peer-0 (/tmp/x.log) -----\nb\nc\n"
        );
    }
}
