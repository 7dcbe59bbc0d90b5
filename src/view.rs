//! The narrow interface the application API is built on: "who leads, as far as this peer can
//! tell right now" and the metrics text. Handlers see nothing of Raft or sled, so they can be
//! tested against a fake view.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use serde::Serialize;
use tokio::sync::watch;

use crate::handoff::{Handoff, Outcome};
use crate::leadership::Leadership;
use crate::metrics::Metrics;
use crate::raft::{vote_for, NodeId, RaftMetrics};

/// This peer's role as Raft sees it (informational; `is_leader` is what counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Stopped,
}

/// One answer to "who leads?", made at the moment it is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// The leader's name; empty when no leader is known for sure.
    pub name: String,
    /// The term of that leadership (or this peer's current term when none is known): the
    /// fencing token applications can compare.
    pub term: u64,
    /// Whether this peer is the leader, checked against its lease at this moment.
    pub is_leader: bool,
    /// This peer's name.
    pub id: String,
    /// The election this peer belongs to.
    pub election: String,
    /// This peer's Raft role.
    pub role: Role,
    /// For how long, at most, this answer stays true: the leader's remaining lease, or how
    /// long a follower will keep naming the leader without hearing from it again.
    pub valid_ms: u64,
}

impl Observation {
    pub fn leader_known(&self) -> bool {
        !self.name.is_empty()
    }
}

/// A boxed future, so that the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the application API needs from a peer.
pub trait NodeView: Send + Sync + 'static {
    /// Who leads, checked now.
    fn observe(&self) -> Observation;
    /// The Prometheus metrics text.
    fn render_metrics(&self) -> String;
    /// Gives up leadership (if this peer leads) by handing it to another peer.
    fn resign(&self) -> BoxFuture<'_, Outcome>;
}

/// The real view: openraft's metrics, the lease state and the peer names.
pub struct RaftView {
    pub raft_metrics: watch::Receiver<RaftMetrics>,
    pub handoff: Handoff,
    pub leadership: Arc<Leadership>,
    pub metrics: Arc<Metrics>,
    pub names: HashMap<NodeId, String>,
    pub me: String,
    pub election: String,
}

impl RaftView {
    fn name(&self, id: NodeId) -> String {
        self.names.get(&id).cloned().unwrap_or_default()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl NodeView for RaftView {
    fn observe(&self) -> Observation {
        let now = Instant::now();
        let (state, term, vote) = {
            let m = self.raft_metrics.borrow();
            (m.state, m.current_term, m.vote)
        };
        let me = self.leadership.me();
        let role = match state {
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
            id: self.me.clone(),
            election: self.election.clone(),
            role,
            valid_ms: 0,
        };
        if cfg!(feature = "testing-skip-lease") {
            // Test-only build: answers from Raft's state alone, with no lease and no freshness
            // check, so that the fault-injection checker can be shown to catch the result.
            let leader = self.raft_metrics.borrow().current_leader;
            obs.name = leader.map(|id| self.name(id)).unwrap_or_default();
            obs.is_leader = state == ServerState::Leader;
        } else if state == ServerState::Leader && vote.is_committed() && vote_for(&vote) == Some(me)
        {
            if let Some(left) = self.leadership.lease_remaining(term, now) {
                obs.name = self.me.clone();
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

    fn resign(&self) -> BoxFuture<'_, Outcome> {
        let budget = self.handoff.config.shutdown_timeout;
        Box::pin(self.handoff.resign(budget))
    }
}
