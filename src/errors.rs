//! Printing an error with its causes on one line.

/// `outer: cause: root cause`, skipping any cause whose text is already part of the line (many
/// errors repeat their source in their own message).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {path}: {source}")]
    struct Outer {
        path: String,
        source: Inner,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("disk says no")]
    struct Inner {
        #[source]
        root: std::io::Error,
    }

    #[test]
    fn spells_each_cause_once() {
        let e = Outer {
            path: "/d".into(),
            source: Inner {
                root: std::io::Error::other("EIO"),
            },
        };
        assert_eq!(chain(&e), "cannot open /d: disk says no: EIO");
    }
}
