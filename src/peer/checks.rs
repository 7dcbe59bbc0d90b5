//! Sanity checks on decoded peer RPCs before they reach openraft.
//!
//! A request that decodes can still be impossible: a heartbeat carrying someone else's vote or
//! an uncommitted one, entries that skip indexes or come from a future term. openraft assumes
//! its peers are correct (some of these only trip debug assertions, found by fuzzing the peer
//! handlers), so such requests are refused here. They also bind every request to its sender:
//! an authenticated peer can speak only for itself, never as the leader.

use crate::raft::{vote_for, vote_term, AppendRequest, NodeId, SnapshotRequest, Vote, VoteRequest};

fn own_vote(vote: &Vote, sender: NodeId, committed: bool) -> Result<(), &'static str> {
    if vote_for(vote) != Some(sender) {
        return Err("the request carries another peer's vote");
    }
    match (committed, vote.is_committed()) {
        (true, false) => Err("a leader's request must carry a committed vote"),
        (false, true) => Err("a vote request must carry an uncommitted vote"),
        _ => Ok(()),
    }
}

/// An append-entries: the sender's committed vote, consecutive entries no newer than its term.
pub fn append(req: &AppendRequest, sender: NodeId) -> Result<(), &'static str> {
    own_vote(&req.vote, sender, true)?;
    let term = vote_term(&req.vote);
    let first = req.prev_log_id.map_or(0, |p| p.index + 1);
    let mut last_term = req.prev_log_id.map_or(0, |p| p.leader_id.term);
    if last_term > term || req.leader_commit.is_some_and(|c| c.leader_id.term > term) {
        return Err("log id from a term after the leader's");
    }
    for (index, e) in (first..).zip(&req.entries) {
        if e.log_id.index != index {
            return Err("entries are not consecutive");
        }
        if e.log_id.leader_id.term < last_term || e.log_id.leader_id.term > term {
            return Err("entry terms out of order");
        }
        last_term = e.log_id.leader_id.term;
    }
    Ok(())
}

/// A vote request: the sender's own, uncommitted vote; its log no newer than its term.
pub fn vote(req: &VoteRequest, sender: NodeId) -> Result<(), &'static str> {
    own_vote(&req.vote, sender, false)?;
    if req
        .last_log_id
        .is_some_and(|l| l.leader_id.term > vote_term(&req.vote))
    {
        return Err("last log id from a term after the candidate's");
    }
    Ok(())
}

/// A snapshot chunk: the sender's committed vote; a snapshot no newer than its term.
pub fn snapshot(req: &SnapshotRequest, sender: NodeId) -> Result<(), &'static str> {
    own_vote(&req.vote, sender, true)?;
    if req
        .meta
        .last_log_id
        .is_some_and(|l| l.leader_id.term > vote_term(&req.vote))
    {
        return Err("snapshot from a term after the leader's");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    use super::*;
    use crate::raft::{Command, Entry};

    fn id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 0), index)
    }

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: id(term, index),
            payload: EntryPayload::Normal(Command::Noop),
        }
    }

    fn heartbeat(vote: Vote, prev: Option<LogId<NodeId>>, entries: Vec<Entry>) -> AppendRequest {
        AppendRequest {
            vote,
            prev_log_id: prev,
            leader_commit: None,
            entries,
        }
    }

    #[test]
    fn appends_must_be_the_senders_and_consecutive() {
        let ok = heartbeat(
            Vote::new_committed(5, 7),
            Some(id(4, 9)),
            vec![entry(4, 10), entry(5, 11)],
        );
        assert_eq!(append(&ok, 7), Ok(()));
        assert!(append(&ok, 8).is_err(), "another sender");
        assert!(
            append(&heartbeat(Vote::new(5, 7), None, vec![]), 7).is_err(),
            "uncommitted"
        );
        assert!(
            append(
                &heartbeat(
                    Vote::new_committed(5, 7),
                    Some(id(4, 9)),
                    vec![entry(4, 11)]
                ),
                7
            )
            .is_err(),
            "gap"
        );
        assert!(
            append(
                &heartbeat(Vote::new_committed(5, 7), None, vec![entry(6, 0)]),
                7
            )
            .is_err(),
            "future term"
        );
        assert!(
            append(
                &heartbeat(
                    Vote::new_committed(5, 7),
                    None,
                    vec![entry(3, 0), entry(2, 1)]
                ),
                7
            )
            .is_err(),
            "order"
        );
        assert_eq!(
            append(
                &heartbeat(Vote::new_committed(5, 7), None, vec![entry(1, 0)]),
                7
            ),
            Ok(())
        );
    }

    #[test]
    fn votes_must_be_the_candidates_own() {
        assert_eq!(
            vote(&VoteRequest::new(Vote::new(3, 2), Some(id(2, 4))), 2),
            Ok(())
        );
        assert!(vote(&VoteRequest::new(Vote::new(3, 2), None), 1).is_err());
        assert!(vote(&VoteRequest::new(Vote::new_committed(3, 2), None), 2).is_err());
        assert!(vote(&VoteRequest::new(Vote::new(3, 2), Some(id(4, 1))), 2).is_err());
    }
}
