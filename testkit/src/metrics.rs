//! Reading one sample out of a Prometheus metrics text (`GET /metrics`).

/// The value of the first sample whose name (with its labels, if `name` has them) is `name`:
/// `metric(text, "raft_elector_term")`, or
/// `metric(text, "raft_elector_peer_requests_refused_total{reason=\"auth\"}")`. A name without
/// labels also matches the first labelled sample of that name.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::metric;

    const TEXT: &str = "# HELP raft_elector_term Current Raft term\n\
        # TYPE raft_elector_term gauge\n\
        raft_elector_term 17\n\
        raft_elector_terms_x 3\n\
        raft_elector_peer_requests_refused_total{reason=\"auth\"} 2\n\
        raft_elector_peer_requests_refused_total{reason=\"election\"} 1\n";

    #[test]
    fn reads_plain_and_labelled_samples() {
        assert_eq!(metric(TEXT, "raft_elector_term"), Some(17.0));
        assert_eq!(
            metric(
                TEXT,
                "raft_elector_peer_requests_refused_total{reason=\"election\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            metric(TEXT, "raft_elector_peer_requests_refused_total"),
            Some(2.0)
        );
    }

    #[test]
    fn a_prefix_of_another_name_or_a_comment_is_no_sample() {
        assert_eq!(metric(TEXT, "raft_elector_terms"), None);
        assert_eq!(metric("nothing", "raft_elector_term"), None);
        assert_eq!(
            metric("# HELP raft_elector_term x\n", "raft_elector_term"),
            None
        );
    }
}
