//! The last lines of a peer's log, headed by whose log it is: what a failing test prints; and
//! the fields of one text log line.

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

/// The value of the field `name` in one line of the binary's text log (`name=value`, quotes
/// removed). The event's own fields come last, after its span's (which may carry a field of
/// the same name, the term): the last one is returned.
pub fn field(line: &str, name: &str) -> Option<String> {
    line.split_whitespace()
        .rev()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_s_own_field_wins_over_the_span_s() {
        let line = "2024-01-01T00:00:00Z  INFO peer{id=peer-0 term=3}: raft_elector::x: \
                    leadership handed over to=peer-1 term=4 elapsed_ms=7";
        assert_eq!(field(line, "term").as_deref(), Some("4"));
        assert_eq!(field(line, "to").as_deref(), Some("peer-1"));
        assert_eq!(
            field("vote granted candidate=\"b\"", "candidate").as_deref(),
            Some("b")
        );
        assert_eq!(field(line, "elapsed").as_deref(), None);
        assert_eq!(field(line, "from"), None);
    }

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
