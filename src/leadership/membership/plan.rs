//! The leader's membership controller as a pure step: from the membership in force, how far
//! each member's log is, who asked to leave and who has been silent, the ONE change to make
//! next (openraft runs one change at a time, each through joint consensus). Unit-tested on
//! the step; [`super::controller`] runs it.

use std::collections::{BTreeMap, BTreeSet};

use crate::members::Members;
use crate::raft::NodeId;

/// What the leader observed.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub me: NodeId,
    pub members: Members,
    /// The leader's last log index.
    pub last_index: u64,
    /// Per member, the last log index it is known to hold (openraft's replication metrics).
    pub matched: BTreeMap<NodeId, Option<u64>>,
    /// The cap on voters.
    pub max_voters: usize,
    /// Members known to be witnesses: always voters, never demoted.
    pub witnesses: BTreeSet<NodeId>,
    /// Per voter, how long it has been unreachable (only those past the removal threshold
    /// when `--remove-unreachable-after` is set).
    pub silent_too_long: BTreeSet<NodeId>,
    /// The membership in force has been the same joint one for a while: nobody is finishing
    /// the change (its leader lost the leadership half-way).
    pub stuck_joint: bool,
}

/// The next change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Make these learners voters.
    Promote(BTreeSet<NodeId>),
    /// Make these voters learners (the cap was lowered).
    Demote(BTreeSet<NodeId>),
    /// Remove these voters altogether (unreachable too long).
    RemoveSilent(BTreeSet<NodeId>),
    /// End a joint change another leader left half-way: the newer half becomes the voters.
    Finish(BTreeSet<NodeId>),
}

/// How far behind the leader's log a learner may be and still count as caught up.
const CAUGHT_UP_LAG: u64 = 2;

/// The next change, if any. Nothing while a joint change is under way, unless it is stuck.
pub fn next(i: &Inputs) -> Option<Change> {
    if !i.members.is_voter(i.me) {
        return None;
    }
    if i.members.joint() {
        return i
            .stuck_joint
            .then(|| i.members.configs.last().cloned().map(Change::Finish))
            .flatten();
    }
    let voters = i.members.voters();
    let silent: BTreeSet<NodeId> = i
        .silent_too_long
        .iter()
        .filter(|id| **id != i.me && voters.contains(id))
        .copied()
        .collect();
    if !silent.is_empty() {
        return Some(Change::RemoveSilent(silent));
    }
    let behind = |id: &NodeId| {
        let held = i.matched.get(id).copied().flatten().unwrap_or(0);
        i.last_index.saturating_sub(held)
    };
    if voters.len() > i.max_voters {
        // Demote the least up-to-date voters, never this leader nor a witness.
        let mut candidates: Vec<NodeId> = voters
            .iter()
            .filter(|id| **id != i.me && !i.witnesses.contains(id))
            .copied()
            .collect();
        candidates.sort_by_key(|id| std::cmp::Reverse(behind(id)));
        let out: BTreeSet<NodeId> = candidates
            .into_iter()
            .take(voters.len() - i.max_voters)
            .collect();
        return (!out.is_empty()).then_some(Change::Demote(out));
    }
    let room = i.max_voters - voters.len();
    if room == 0 {
        return None;
    }
    // Witnesses first, then the most up-to-date learners.
    let mut ready: Vec<NodeId> = i
        .members
        .learners()
        .into_iter()
        .filter(|id| behind(id) <= CAUGHT_UP_LAG && i.matched.get(id).copied().flatten().is_some())
        .collect();
    ready.sort_by_key(|id| (!i.witnesses.contains(id), behind(id), *id));
    let promote: BTreeSet<NodeId> = ready.into_iter().take(room).collect();
    (!promote.is_empty()).then_some(Change::Promote(promote))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::PeerNode;

    fn members(voters: &[NodeId], learners: &[NodeId]) -> Members {
        let nodes = voters
            .iter()
            .chain(learners)
            .map(|id| {
                (
                    *id,
                    PeerNode {
                        name: format!("p{id}"),
                        addr: format!("p{id}:1"),
                    },
                )
            })
            .collect();
        Members {
            configs: vec![voters.iter().copied().collect()],
            nodes,
            index: Some(3),
        }
    }

    fn inputs(voters: &[NodeId], learners: &[NodeId]) -> Inputs {
        let all = voters.iter().chain(learners);
        Inputs {
            me: 1,
            members: members(voters, learners),
            last_index: 10,
            matched: all.map(|id| (*id, Some(10))).collect(),
            max_voters: 5,
            ..Inputs::default()
        }
    }

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn caught_up_learners_are_promoted_up_to_the_cap() {
        let i = inputs(&[1, 2, 3], &[4, 5, 6, 7]);
        assert_eq!(next(&i), Some(Change::Promote(set(&[4, 5]))));
        let full = inputs(&[1, 2, 3, 4, 5], &[6, 7]);
        assert_eq!(next(&full), None, "members beyond the cap stay learners");
    }

    #[test]
    fn a_learner_still_catching_up_waits() {
        let mut i = inputs(&[1, 2, 3], &[4, 5]);
        i.matched.insert(4, Some(3));
        i.matched.insert(5, None);
        assert_eq!(next(&i), None);
        i.matched.insert(4, Some(9));
        assert_eq!(next(&i), Some(Change::Promote(set(&[4]))));
    }

    #[test]
    fn the_most_up_to_date_learner_goes_first_and_witnesses_before_all() {
        let mut i = inputs(&[1, 2, 3, 4], &[5, 6, 7]);
        i.matched.insert(5, Some(8));
        i.matched.insert(6, Some(10));
        assert_eq!(next(&i), Some(Change::Promote(set(&[6]))));
        i.witnesses.insert(7);
        i.matched.insert(7, Some(9));
        assert_eq!(next(&i), Some(Change::Promote(set(&[7]))));
    }

    #[test]
    fn nothing_changes_during_a_joint_change_or_on_a_non_voter() {
        let mut i = inputs(&[1, 2, 3], &[4]);
        i.members.configs.push(set(&[1, 2, 3, 4]));
        assert_eq!(next(&i), None);
        let mut j = inputs(&[2, 3, 4], &[1]);
        j.me = 1;
        assert_eq!(next(&j), None);
    }

    #[test]
    fn a_stuck_joint_change_is_finished_with_its_newer_half() {
        let mut i = inputs(&[1, 2, 3], &[]);
        i.members.configs.push(set(&[1, 2]));
        i.stuck_joint = true;
        assert_eq!(next(&i), Some(Change::Finish(set(&[1, 2]))));
    }

    #[test]
    fn voters_above_a_lowered_cap_are_demoted_never_the_leader_nor_a_witness() {
        let mut i = inputs(&[1, 2, 3, 4, 5], &[]);
        i.max_voters = 3;
        i.witnesses.insert(5);
        i.matched.insert(2, Some(4));
        i.matched.insert(3, Some(5));
        assert_eq!(next(&i), Some(Change::Demote(set(&[2, 3]))));
    }

    #[test]
    fn silent_voters_are_removed_first_never_the_leader() {
        let mut i = inputs(&[1, 2, 3], &[4]);
        i.silent_too_long = set(&[1, 3, 4]);
        assert_eq!(next(&i), Some(Change::RemoveSilent(set(&[3]))));
    }
}
