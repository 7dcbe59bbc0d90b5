//! When `recover` refuses: a majority still answering, a peer that answers unreadably, a peer
//! ahead of this one.

use raft_elector::raft::{node_id, Membership, Vote};

use super::*;

fn stored(voters: &[&str], term: u64) -> Stored {
    let nodes: BTreeMap<NodeId, PeerNode> = voters
        .iter()
        .map(|n| {
            let node = PeerNode {
                name: n.to_string(),
                addr: format!("{n}:1"),
            };
            (node_id(n), node)
        })
        .collect();
    Stored {
        vote: Some(Vote::new_committed(term, node_id(voters[0]))),
        last_log_id: None,
        last_applied: None,
        membership: StoredMembership::new(
            None,
            Membership::new(vec![nodes.keys().copied().collect()], nodes),
        ),
        term,
    }
}

fn probe(name: &str, outcome: Outcome) -> Probe {
    Probe {
        id: node_id(name),
        node: PeerNode {
            name: name.into(),
            addr: format!("{name}:1"),
        },
        outcome,
    }
}

fn status(name: &str, term: u64) -> Outcome {
    Outcome::Status(PeerStatus {
        election: "e".into(),
        peer: name.into(),
        members_digest: 0,
        initialized: true,
        term,
        last_log_index: None,
    })
}

fn gone() -> Outcome {
    Outcome::Unreachable("connection refused".into())
}

#[test]
fn a_lone_survivor_of_three_may_recover() {
    let s = stored(&["a", "b", "c"], 4);
    let probes = [probe("b", gone()), probe("c", gone())];
    judge(node_id("a"), &s, &probes).expect("allowed");
}

#[test]
fn two_of_three_are_a_majority_still_there() {
    let s = stored(&["a", "b", "c"], 4);
    let probes = [probe("b", status("b", 4)), probe("c", gone())];
    let err = judge(node_id("a"), &s, &probes).unwrap_err();
    assert!(matches!(err, RecoverError::QuorumReachable { .. }), "{err}");
    assert!(err.to_string().contains("majority is still there"), "{err}");
}

#[test]
fn a_peer_that_answers_unreadably_counts_as_there() {
    let s = stored(&["a", "b", "c"], 4);
    let probes = [
        probe("b", Outcome::Unreadable("403".into())),
        probe("c", gone()),
    ];
    let err = judge(node_id("a"), &s, &probes).unwrap_err();
    assert!(matches!(err, RecoverError::QuorumReachable { .. }), "{err}");
    let s = stored(&["a", "b", "c", "d", "e"], 4);
    let probes = [
        probe("b", Outcome::Unreadable("403".into())),
        probe("c", gone()),
        probe("d", gone()),
        probe("e", gone()),
    ];
    let err = judge(node_id("a"), &s, &probes).unwrap_err();
    assert!(matches!(err, RecoverError::Unreadable { .. }), "{err}");
}

#[test]
fn a_reachable_peer_with_a_newer_term_or_a_longer_log_blocks() {
    let s = stored(&["a", "b", "c", "d", "e"], 4);
    let probes = [probe("b", status("b", 5)), probe("c", gone())];
    let err = judge(node_id("a"), &s, &probes).unwrap_err();
    assert!(
        matches!(err, RecoverError::NewerTerm { theirs: 5, .. }),
        "{err}"
    );

    let mut longer = status("b", 4);
    if let Outcome::Status(st) = &mut longer {
        st.last_log_index = Some(7);
    }
    let err = judge(node_id("a"), &s, &[probe("b", longer)]).unwrap_err();
    assert!(
        matches!(err, RecoverError::LongerLog { theirs: 7, .. }),
        "{err}"
    );
    judge(node_id("a"), &s, &[probe("b", status("b", 4))]).expect("same term, no log");
}

#[test]
fn a_joint_membership_needs_a_majority_of_both_halves_to_refuse() {
    let mut s = stored(&["a", "b", "c"], 4);
    let nodes: BTreeMap<NodeId, PeerNode> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| {
            let node = PeerNode {
                name: n.to_string(),
                addr: format!("{n}:1"),
            };
            (node_id(n), node)
        })
        .collect();
    let old = ["a", "b", "c"].iter().map(|n| node_id(n)).collect();
    let new = ["a", "d", "e"].iter().map(|n| node_id(n)).collect();
    s.membership = StoredMembership::new(None, Membership::new(vec![old, new], nodes));
    // a and b: a majority of the old half only.
    let probes = [
        probe("b", status("b", 4)),
        probe("c", gone()),
        probe("d", gone()),
        probe("e", gone()),
    ];
    judge(node_id("a"), &s, &probes).expect("no quorum of the joint membership");
    let probes = [
        probe("b", status("b", 4)),
        probe("c", gone()),
        probe("d", status("d", 4)),
        probe("e", gone()),
    ];
    let err = judge(node_id("a"), &s, &probes).unwrap_err();
    assert!(matches!(err, RecoverError::QuorumReachable { .. }), "{err}");
}
