//! The application API's view of the running peer: openraft's metrics, the lease and the
//! member names, read at the moment of each request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::watch;

use crate::api::view::{BoxFuture, NodeView, Observation, Resigned, Role};
use crate::config::Config;
use crate::leadership::{Handoff, Leadership};
use crate::metrics::Metrics;
use crate::raft::{NodeId, RaftMetrics, RaftStatus};

/// The real view: openraft's metrics, the lease state and the peer names.
pub struct RaftView {
    pub raft_metrics: watch::Receiver<RaftMetrics>,
    pub handoff: Handoff,
    pub leadership: Arc<Leadership>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
}

impl RaftView {
    fn name(&self, id: NodeId) -> String {
        self.config.name_of(id).unwrap_or_default().to_string()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl NodeView for RaftView {
    fn observe(&self) -> Observation {
        let now = Instant::now();
        let status = RaftStatus::from_metrics(&self.raft_metrics.borrow());
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
        };
        if cfg!(feature = "testing-skip-lease") {
            // Test-only build: answers from Raft's state alone, with no lease and no freshness
            // check, so that the fault-injection checker can be shown to catch the result.
            obs.name = status.leader.map(|id| self.name(id)).unwrap_or_default();
            obs.is_leader = status.raft_leader();
        } else if status.elected(me) {
            if let Some(left) = self.leadership.lease_remaining(term, now) {
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

    fn resign(&self) -> BoxFuture<'_, Resigned> {
        Box::pin(self.handoff.resign(self.config.shutdown_timeout))
    }
}
