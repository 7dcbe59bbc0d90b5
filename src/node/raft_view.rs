//! The application API's view of the running peer: openraft's metrics, the lease and the
//! member names, read at the moment of each request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::watch;

use crate::api::view::{
    BoxFuture, Member, MemberRole, MembersAnswer, NodeView, Observation, Published, Resigned, Role,
};
use crate::config::Config;
use crate::leadership::membership::controller::REACHABLE_WITHIN;
use crate::leadership::membership::Changes;
use crate::leadership::{Handoff, Leadership, Outcome};
use crate::members::{member_name, Members, Standing};
use crate::metrics::Metrics;
use crate::peer::contacts::Contacts;
use crate::raft::{NodeId, RaftMetrics, RaftStatus};

/// The real view: openraft's metrics, the lease state and the peer names.
pub struct RaftView {
    pub raft_metrics: watch::Receiver<RaftMetrics>,
    pub handoff: Handoff,
    pub leadership: Arc<Leadership>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    pub changes: Arc<Changes>,
    pub contacts: Arc<Contacts>,
    /// The push source's channel ([`super::watcher`]).
    pub published: watch::Receiver<Published>,
}

impl RaftView {
    fn name(&self, id: NodeId) -> String {
        member_name(&self.raft_metrics.borrow(), id).unwrap_or_default()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl NodeView for RaftView {
    fn observe(&self) -> Observation {
        let now = Instant::now();
        let (status, voters, member) = {
            let m = self.raft_metrics.borrow();
            let membership = m.membership_config.membership();
            let voters = membership.voter_ids().count();
            let me = self.leadership.me();
            (
                RaftStatus::from_metrics(&m),
                voters,
                membership.get_node(&me).is_some(),
            )
        };
        let term = status.term;
        let me = self.leadership.me();
        let role = match status.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Stopped,
        };
        let mut obs = Observation {
            name: String::new(),
            term,
            is_leader: false,
            id: self.config.me.name.clone(),
            election: self.config.election.clone(),
            role,
            valid_ms: 0,
            voters,
            app_healthy: self.leadership.app().reported(),
            awaiting_promotion: status.state == ServerState::Learner
                && member
                && voters < self.config.membership.max_voters,
        };
        if cfg!(feature = "testing-skip-lease") {
            // Test-only build: answers from Raft's state alone, with no lease and no freshness
            // check, so that the fault-injection checker can be shown to catch the result.
            obs.name = status.leader.map(|id| self.name(id)).unwrap_or_default();
            obs.is_leader = status.raft_leader();
        } else if status.elected(me) {
            if let Some(left) = self.leadership.claim_remaining(term, now) {
                obs.name = self.config.me.name.clone();
                obs.is_leader = true;
                obs.valid_ms = millis(left);
            }
        } else if let Some((heard, left)) = self.leadership.fresh_leader(now) {
            if heard.term >= term && heard.leader != me {
                obs.name = self.name(heard.leader);
                obs.term = heard.term;
                obs.valid_ms = millis(left);
            }
        }
        obs
    }

    fn render_metrics(&self) -> String {
        let obs = self.observe();
        let m = &self.metrics;
        {
            let rm = self.raft_metrics.borrow();
            m.term
                .set(i64::try_from(rm.current_term).unwrap_or(i64::MAX));
            let index = |i: Option<u64>| i.map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX));
            m.last_log_index.set(index(rm.last_log_index));
            m.snapshot_index.set(index(rm.snapshot.map(|l| l.index)));
            m.purged_index.set(index(rm.purged.map(|l| l.index)));
        }
        {
            let rm = self.raft_metrics.borrow();
            let members = rm.membership_config.membership();
            let voters = members.voter_ids().count();
            m.voters.set(i64::try_from(voters).unwrap_or(i64::MAX));
            let learners = members.learner_ids().count();
            m.learners.set(i64::try_from(learners).unwrap_or(i64::MAX));
        }
        m.is_leader.set(i64::from(obs.is_leader));
        m.leader_known.set(i64::from(obs.leader_known()));
        let age = match obs.role {
            Role::Leader => self
                .leadership
                .quorum_ack_age(Instant::now())
                .map(|d| d.as_secs_f64()),
            _ => None,
        };
        m.quorum_ack_age_seconds.set(age.unwrap_or(f64::NAN));
        m.render()
    }

    fn members(&self) -> MembersAnswer {
        let (members, applied) = {
            let m = self.raft_metrics.borrow();
            (Members::from_metrics(&m), m.last_applied.map(|l| l.index))
        };
        let witnesses = self.changes.witnesses();
        let me = self.config.me.id;
        let list = members
            .nodes
            .iter()
            .map(|(id, node)| {
                let age = if *id == me {
                    Some(Duration::ZERO)
                } else {
                    self.contacts.age(&node.name)
                };
                let role = match members.standing(*id) {
                    Standing::Voter if witnesses.contains(id) => MemberRole::Witness,
                    Standing::Voter => MemberRole::Voter,
                    _ => MemberRole::Learner,
                };
                Member {
                    id: node.name.clone(),
                    address: node.addr.clone(),
                    role,
                    reachable: age.is_some_and(|a| a <= REACHABLE_WITHIN),
                    last_contact_ms: age.map(millis),
                }
            })
            .collect::<Vec<_>>();
        let mut list = list;
        list.sort_by(|a, b| a.id.cmp(&b.id));
        MembersAnswer {
            index: members.index,
            applied,
            voters: members.voters().len(),
            learners: members.learners().len(),
            joint: members.joint(),
            members: list,
        }
    }

    fn subscribe(&self) -> watch::Receiver<Published> {
        self.published.clone()
    }

    fn resign(&self) -> BoxFuture<'_, Resigned> {
        let budget = self.config.shutdown_timeout;
        Box::pin(async move {
            match self.handoff.resign(budget).await {
                Outcome::NotLeader => Resigned::NotLeader,
                Outcome::HandedOver { to, term, elapsed } => {
                    Resigned::HandedOver { to, term, elapsed }
                }
                Outcome::TimedOut => Resigned::TimedOut,
                Outcome::Alone => Resigned::Alone,
            }
        })
    }
}
