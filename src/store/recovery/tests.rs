//! Forcing a membership: what openraft loads afterwards, and the refusals that change nothing.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftStateMachine, StorageHelper};
use openraft::{CommittedLeaderId, EntryPayload};

use super::*;
use crate::raft::{node_id, SnapshotMeta, TypeConfig};
use crate::store::{open, LogStore, StateMachine as Sm};

const ELECTION: &str = "e";

fn members(names: &[&str]) -> BTreeMap<NodeId, PeerNode> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let node = PeerNode {
                name: name.to_string(),
                addr: format!("127.0.0.1:{}", 5000 + i),
            };
            (node_id(name), node)
        })
        .collect()
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, node_id("b")), index)
}

fn membership_entry(term: u64, index: u64, names: &[&str]) -> Entry {
    let m = members(names);
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![m.keys().copied().collect()], m)),
    }
}

fn blank(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

/// Writes `entries` and `vote` as peer `a`'s log store would, then closes the database.
fn seed(dir: &Path, entries: &[Entry], vote: Vote) {
    let db = open_db(dir, ELECTION, "a").expect("open");
    for e in entries {
        db.inner
            .logs
            .insert(index_key(e.log_id.index), wire::encode_record(e))
            .expect("insert entry");
    }
    db.inner
        .meta
        .insert(VOTE_KEY, wire::encode_record(&vote))
        .expect("insert vote");
    db.sync().expect("sync");
}

/// A cluster of a, b, c: the membership at 0, blank entries of elections up to term 2, and
/// the vote for b in term 2.
fn three_voters(dir: &Path) {
    seed(
        dir,
        &[
            membership_entry(0, 0, &["a", "b", "c"]),
            blank(1, 1),
            blank(2, 2),
        ],
        Vote::new_committed(2, node_id("b")),
    );
}

/// What openraft loads from the directory at its next start: the vote, the effective
/// membership's voters and log id, and the last log id.
async fn loaded(dir: &Path) -> (Vote, Vec<NodeId>, Option<LogId>, Option<LogId>) {
    let (mut log, mut sm, _) = open(dir, ELECTION, "a").expect("reopen");
    let state = StorageHelper::<TypeConfig, LogStore, Sm>::new(&mut log, &mut sm)
        .get_initial_state()
        .await
        .expect("openraft loads the recovered state");
    let effective = state.membership_state.effective();
    let last = log.get_log_state().await.expect("log state").last_log_id;
    (
        *state.vote_ref(),
        effective.voter_ids().collect(),
        *effective.log_id(),
        last,
    )
}

#[tokio::test]
async fn a_forced_single_voter_is_what_openraft_loads_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    three_voters(dir.path());

    let report = force_membership(dir.path(), ELECTION, "a", members(&["a"])).expect("force");
    assert_eq!(report.term(), 3);
    assert_eq!(report.old.membership().voter_ids().count(), 3, "{report:?}");
    assert_eq!(report.old_vote, Some(Vote::new_committed(2, node_id("b"))));
    assert_eq!(report.purged_to, None);
    let written = LogId::new(CommittedLeaderId::new(3, node_id("a")), 3);
    assert_eq!(*report.new.log_id(), Some(written));

    let (vote, voters, at, last) = loaded(dir.path()).await;
    assert_eq!(vote, Vote::new_committed(3, node_id("a")));
    assert_eq!(voters, vec![node_id("a")]);
    assert_eq!(at, Some(written));
    assert_eq!(last, Some(written));
}

#[tokio::test]
async fn the_membership_applied_before_a_purge_is_the_one_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = [
        membership_entry(0, 0, &["a", "b", "c"]),
        blank(1, 1),
        blank(2, 2),
        blank(4, 3),
    ];
    seed(dir.path(), &entries, Vote::new_committed(4, node_id("b")));
    {
        let (mut log, mut sm, _) = open(dir.path(), ELECTION, "a").expect("open");
        sm.apply(entries.to_vec()).await.expect("apply");
        log.purge(log_id(2, 2)).await.expect("purge");
    }
    let recovery = Recovery::open(dir.path(), ELECTION, "a").expect("open for recovery");
    assert_eq!(recovery.stored().last_log_id, Some(log_id(4, 3)));
    assert_eq!(*recovery.stored().membership.log_id(), Some(log_id(0, 0)));
    assert_eq!(recovery.stored().term, 4);

    let report = recovery.force(members(&["a", "d"])).expect("force");
    assert_eq!(report.term(), 5);
    let (vote, voters, at, _) = loaded(dir.path()).await;
    assert_eq!(vote, Vote::new_committed(5, node_id("a")));
    let mut expected = vec![node_id("a"), node_id("d")];
    expected.sort_unstable();
    assert_eq!(voters, expected);
    assert_eq!(at.map(|id| (id.leader_id.term, id.index)), Some((5, 4)));
}

#[tokio::test]
async fn a_log_behind_an_installed_snapshot_is_purged_up_to_it_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    three_voters(dir.path());
    let snapshot_at = log_id(5, 9);
    {
        let (_, mut sm, _) = open(dir.path(), ELECTION, "a").expect("open");
        let m = members(&["a", "b", "c"]);
        let meta = SnapshotMeta {
            last_log_id: Some(snapshot_at),
            last_membership: StoredMembership::new(
                Some(log_id(0, 0)),
                Membership::new(vec![m.keys().copied().collect()], m),
            ),
            snapshot_id: "test".into(),
        };
        sm.install_snapshot(&meta, Box::new(Cursor::new(Vec::new())))
            .await
            .expect("install");
    }
    let report = force_membership(dir.path(), ELECTION, "a", members(&["a"])).expect("force");
    assert_eq!(report.purged_to, Some(snapshot_at));
    assert_eq!(report.term(), 6);
    let (_, voters, at, last) = loaded(dir.path()).await;
    assert_eq!(voters, vec![node_id("a")]);
    assert_eq!(at.map(|id| id.index), Some(10));
    assert_eq!(last, at);
}

#[tokio::test]
async fn recovering_again_takes_a_newer_term() {
    let dir = tempfile::tempdir().expect("tempdir");
    three_voters(dir.path());
    let first = force_membership(dir.path(), ELECTION, "a", members(&["a"])).expect("first");
    let second = force_membership(dir.path(), ELECTION, "a", members(&["a", "b"])).expect("again");
    assert!(second.term() > first.term());
    assert_eq!(second.old, first.new);
    let (_, voters, _, _) = loaded(dir.path()).await;
    assert_eq!(voters.len(), 2);
}

#[test]
fn a_missing_or_empty_directory_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let err = force_membership(&missing, ELECTION, "a", members(&["a"])).unwrap_err();
    assert!(matches!(err, RecoveryError::Missing { .. }), "{err}");
    assert!(!missing.exists(), "a missing directory was created");

    let err = force_membership(dir.path(), ELECTION, "a", members(&["a"])).unwrap_err();
    assert!(matches!(err, RecoveryError::Empty { .. }), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    assert!(err.to_string().contains("nothing to recover"), "{err}");
}

#[test]
fn a_peer_that_never_joined_has_nothing_to_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path(), ELECTION, "a").expect("open"));
    let err = force_membership(dir.path(), ELECTION, "a", members(&["a"])).unwrap_err();
    assert!(matches!(err, RecoveryError::NeverJoined { .. }), "{err}");
}

#[tokio::test]
async fn refusals_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    three_voters(dir.path());
    let before = loaded(dir.path()).await;

    let err = force_membership(dir.path(), ELECTION, "a", members(&["b", "c"])).unwrap_err();
    assert!(matches!(err, RecoveryError::SelfNotNamed { .. }), "{err}");
    let err = force_membership(dir.path(), ELECTION, "b", members(&["b"])).unwrap_err();
    assert!(
        matches!(err, RecoveryError::Store(StoreError::ForeignPeer { .. })),
        "{err}"
    );
    let err = force_membership(dir.path(), "other", "a", members(&["a"])).unwrap_err();
    assert!(
        matches!(
            err,
            RecoveryError::Store(StoreError::ForeignElection { .. })
        ),
        "{err}"
    );
    assert_eq!(loaded(dir.path()).await, before);
}

#[test]
fn a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    three_voters(dir.path());
    let running = open(dir.path(), ELECTION, "a").expect("open");
    let err = force_membership(dir.path(), ELECTION, "a", members(&["a"])).unwrap_err();
    assert!(
        matches!(err, RecoveryError::Store(StoreError::Locked { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("stop the raft-elector peer"),
        "{err}"
    );
    drop(running);
}
