//! Leadership that follows the application's health (`--app-health URL`): this peer checks
//! its own application every `--app-health-interval`; after `--app-health-failures`
//! consecutive failures the application is unhealthy, after one success healthy again.
//!
//! * An unhealthy peer does not campaign (see [`super::campaign`]) and refuses a hand-off.
//! * A leader whose application is unhealthy asks the other voters for their application's
//!   health (`GET /raft/v1/app-health`) and hands leadership to one whose application is
//!   healthy. When none is, it stays leader and says so (`/v1/leader` `"app_healthy": false`,
//!   metric `raft_elector_app_healthy 0`).
//! * At start-up the application counts as healthy until it has failed
//!   `--app-health-failures` checks: a cluster whose applications start slower than their
//!   sidecars still elects at once, and a leader whose application never comes up hands over
//!   after `interval × failures`.
//!
//! The pure part is [`Tracker::step`]; [`run`] is the loop around it. Why and what could go
//! wrong: docs/DESIGN.md, "Application health".

use tokio_util::sync::CancellationToken;

pub use super::app_health::AppHealth;
use super::handoff::{Handoff, Outcome};
use crate::config::AppHealthCheck;
use crate::members::Members;
use crate::raft::NodeId;

/// Consecutive check results into healthy / unhealthy.
#[derive(Debug, Clone)]
pub struct Tracker {
    failures: u32,
    needed: u32,
    healthy: bool,
}

impl Tracker {
    /// Healthy until `needed` consecutive failures (at least one).
    pub fn new(needed: u32) -> Self {
        Tracker {
            failures: 0,
            needed: needed.max(1),
            healthy: true,
        }
    }

    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// One check's result; `Some(healthy)` when the state changes.
    pub fn step(&mut self, ok: bool) -> Option<bool> {
        self.failures = if ok { 0 } else { self.failures + 1 };
        let healthy = if ok {
            true
        } else if self.failures >= self.needed {
            false
        } else {
            self.healthy
        };
        (healthy != self.healthy).then(|| {
            self.healthy = healthy;
            healthy
        })
    }
}

/// Checks the application once: a 2xx within the check's timeout.
async fn check(http: &reqwest::Client, c: &AppHealthCheck) -> Result<(), String> {
    let resp = http
        .get(&c.url)
        .timeout(c.timeout)
        .send()
        .await
        .map_err(|e| crate::errors::chain(&e))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("status {}", resp.status()))
    }
}

/// The voters, witnesses and this peer left out, whose application is healthy (or which
/// check none: they run without `--app-health`). A peer that does not answer is left out.
pub(crate) async fn healthy_peers(h: &Handoff) -> Vec<NodeId> {
    let m = h.raft.metrics().borrow().clone();
    let members = Members::from_metrics(&m);
    let me = h.config.me.id;
    let witnesses = h.changes.witnesses();
    let others: Vec<_> = members
        .voters()
        .into_iter()
        .filter(|id| *id != me && !witnesses.contains(id))
        .filter_map(|id| Some((id, members.nodes.get(&id)?.clone())))
        .collect();
    let timeout = h.config.timing.election_min;
    let asks = others.iter().map(|(_, p)| h.client.app_health(p, timeout));
    let answers = futures::future::join_all(asks).await;
    others
        .iter()
        .zip(answers)
        .filter(|(_, a)| matches!(a, Ok(r) if r.healthy != Some(false)))
        .map(|((id, _), _)| *id)
        .collect()
}

/// Checks the application until `stop`; while it is unhealthy and this peer leads, hands
/// leadership to a peer whose application is healthy.
pub async fn run(check_cfg: AppHealthCheck, handoff: Handoff, stop: CancellationToken) {
    let http = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the application health client; health is not checked");
            return;
        }
    };
    let health = handoff.leadership.app();
    let metrics = handoff.metrics.clone();
    let mut tracker = Tracker::new(check_cfg.failures);
    health.set(true);
    metrics.app_healthy.set(1);
    let mut tick = tokio::time::interval(check_cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Said once per unhealthy stretch, not at every check.
    let mut stayed = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let result = check(&http, &check_cfg).await;
        if let Some(healthy) = tracker.step(result.is_ok()) {
            health.set(healthy);
            metrics.app_healthy.set(i64::from(healthy));
            match &result {
                Ok(()) => tracing::info!(url = %check_cfg.url, "the application is healthy again"),
                Err(why) => {
                    tracing::warn!(url = %check_cfg.url, failures = check_cfg.failures, error = %why, "the application is unhealthy: this peer will not lead")
                }
            }
            stayed = false;
        }
        if tracker.healthy() || !handoff.leading() {
            continue;
        }
        let targets = healthy_peers(&handoff).await;
        if targets.is_empty() {
            if !stayed {
                tracing::warn!("no other peer's application is healthy: this leader stays");
                stayed = true;
            }
            continue;
        }
        let budget = handoff.config.timing.election_max * 5;
        match handoff.resign_to(budget, &targets).await {
            Outcome::HandedOver { to, term, .. } => {
                tracing::info!(to = %to, term, "handed leadership to a peer whose application is healthy")
            }
            other => {
                tracing::warn!(outcome = ?other, "could not hand leadership to a peer whose application is healthy; trying again at the next check")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_after_the_configured_failures_in_a_row_and_healthy_after_one_success() {
        let mut t = Tracker::new(3);
        assert!(t.healthy(), "healthy until checks fail");
        assert_eq!(t.step(false), None);
        assert_eq!(t.step(false), None);
        assert_eq!(t.step(true), None, "a success resets the count");
        assert_eq!(t.step(false), None);
        assert_eq!(t.step(false), None);
        assert_eq!(t.step(false), Some(false));
        assert_eq!(t.step(false), None);
        assert_eq!(t.step(true), Some(true));
    }

    #[test]
    fn without_checks_a_peer_may_lead_and_reports_nothing() {
        let h = AppHealth::default();
        assert_eq!(h.reported(), None);
        assert!(h.may_lead());
        h.set(false);
        assert_eq!(h.reported(), Some(false));
        assert!(!h.may_lead());
        h.set(true);
        assert!(h.may_lead());
    }
}
