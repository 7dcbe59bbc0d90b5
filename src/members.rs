//! The membership in force, as openraft holds it: the voter configurations (two while a joint
//! change is under way), the learners, and every member's name and address. Everything that
//! counts a quorum or names a peer asks this, never the command line: the flags only say whom
//! to contact and who forms the first cluster.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::raft::{NodeId, PeerNode, RaftMetrics};

/// What one peer is in the membership (also carried by the peer protocol's join and leave
/// answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Standing {
    Voter,
    Learner,
    /// Not a member (yet, or any more).
    Outside,
}

/// The membership in force on one peer: its effective (latest appended) configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// The voter sets: one, or two during a joint change. A quorum is a majority of EACH.
    pub configs: Vec<BTreeSet<NodeId>>,
    /// Every member, voters and learners.
    pub nodes: BTreeMap<NodeId, PeerNode>,
    /// Log index of the membership entry (none for the initial empty membership).
    pub index: Option<u64>,
}

impl Members {
    /// The membership a peer's metrics show.
    pub fn from_metrics(m: &RaftMetrics) -> Self {
        let stored = &m.membership_config;
        let membership = stored.membership();
        Members {
            configs: membership.get_joint_config().clone(),
            nodes: membership
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect(),
            index: stored.log_id().map(|l| l.index),
        }
    }

    /// A single voter set, e.g. the first cluster before Raft has published anything.
    pub fn uniform(nodes: BTreeMap<NodeId, PeerNode>) -> Self {
        Members {
            configs: vec![nodes.keys().copied().collect()],
            nodes,
            index: None,
        }
    }

    /// Every voter of any configuration in force.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.configs.iter().flatten().copied().collect()
    }

    /// Members that vote in no configuration in force.
    pub fn learners(&self) -> BTreeSet<NodeId> {
        let voters = self.voters();
        self.nodes
            .keys()
            .filter(|id| !voters.contains(id))
            .copied()
            .collect()
    }

    /// Whether `id` is not a voter of the configuration being moved to (the last one): a
    /// leader in that state is being removed and still leads until the change is committed.
    pub fn removing(&self, id: NodeId) -> bool {
        self.configs.last().is_some_and(|c| !c.contains(&id))
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.configs.iter().any(|c| c.contains(&id))
    }

    pub fn standing(&self, id: NodeId) -> Standing {
        if self.is_voter(id) {
            Standing::Voter
        } else if self.nodes.contains_key(&id) {
            Standing::Learner
        } else {
            Standing::Outside
        }
    }

    /// Whether a joint change is under way.
    pub fn joint(&self) -> bool {
        self.configs.len() > 1
    }

    /// The name of a member.
    pub fn name_of(&self, id: NodeId) -> Option<&str> {
        self.nodes.get(&id).map(|n| n.name.as_str())
    }

    /// Whether the peers for which `yes` holds form a majority of every configuration in force.
    /// An empty membership has no quorum.
    pub fn quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        !self.configs.is_empty()
            && self
                .configs
                .iter()
                .all(|c| c.iter().filter(|id| yes(**id)).count() > c.len() / 2)
    }
}

/// The name of member `id` in the membership a peer's metrics show.
pub fn member_name(m: &RaftMetrics, id: NodeId) -> Option<String> {
    name_in(&m.membership_config, id)
}

/// The name of member `id` in `membership`.
pub fn name_in(
    membership: &openraft::StoredMembership<NodeId, PeerNode>,
    id: NodeId,
) -> Option<String> {
    membership
        .membership()
        .get_node(&id)
        .map(|n| n.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> PeerNode {
        PeerNode {
            name: name.into(),
            addr: format!("{name}:1"),
        }
    }

    fn members(configs: &[&[NodeId]], learners: &[NodeId]) -> Members {
        let configs: Vec<BTreeSet<NodeId>> = configs
            .iter()
            .map(|c| c.iter().copied().collect())
            .collect();
        let nodes = configs
            .iter()
            .flatten()
            .chain(learners)
            .map(|id| (*id, node(&format!("p{id}"))))
            .collect();
        Members {
            configs,
            nodes,
            index: Some(1),
        }
    }

    #[test]
    fn a_joint_quorum_needs_a_majority_of_each_half() {
        let m = members(&[&[1, 2, 3], &[1, 4, 5]], &[]);
        assert!(m.joint());
        assert!(!m.quorum(|id| [1, 2, 3].contains(&id)), "old half only");
        assert!(!m.quorum(|id| [1, 4, 5].contains(&id)), "new half only");
        assert!(m.quorum(|id| [1, 2, 4].contains(&id)));
    }

    #[test]
    fn a_member_is_being_removed_when_the_configuration_moved_to_leaves_it_out() {
        let joint = members(&[&[1, 2, 3], &[1, 3]], &[]);
        assert!(joint.removing(2), "left out of the new half");
        assert!(!joint.removing(1));
        let after = members(&[&[1, 3]], &[]);
        assert!(after.removing(2), "the final configuration appended");
        assert!(!members(&[&[1, 2, 3]], &[]).removing(2));
        assert!(!Members::default().removing(2), "nothing in force yet");
    }

    #[test]
    fn learners_are_members_without_a_vote() {
        let m = members(&[&[1, 2, 3]], &[7]);
        assert_eq!(m.standing(7), Standing::Learner);
        assert_eq!(m.standing(2), Standing::Voter);
        assert_eq!(m.standing(9), Standing::Outside);
        assert_eq!(m.learners().into_iter().collect::<Vec<_>>(), [7]);
        assert!(
            !m.quorum(|id| id == 1 || id == 7),
            "a learner never counts towards a quorum"
        );
        assert_eq!(m.name_of(7), Some("p7"));
    }

    #[test]
    fn an_empty_membership_has_no_quorum() {
        assert!(!Members::default().quorum(|_| true));
    }
}
