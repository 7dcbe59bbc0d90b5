//! Moving leadership to another peer: on SIGTERM before exiting ([`Handoff::before_exit`]),
//! or when the application asks this peer to resign ([`Handoff::resign`]). The steps, and
//! why the wait after an election, are in `docs/DESIGN.md`, "Hand-off".

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lease::Leadership;
use super::membership::Changes;
use crate::config::Config;
use crate::members::Members;
use crate::metrics::Metrics;
use crate::peer::client::PeerClient;
use crate::raft::{NodeId, Raft, RaftMetrics, RaftStatus};

/// How a hand-off ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This peer did not lead: nothing to hand over.
    NotLeader,
    /// Another peer leads now.
    HandedOver {
        to: String,
        term: u64,
        elapsed: Duration,
    },
    /// No other peer took over within the budget.
    TimedOut,
    /// The cluster has a single peer: there is nobody to hand over to.
    Alone,
}

/// Whether a hand-off silences this leader's heartbeats (on shutdown) or not (on resign: if
/// nobody takes over, this peer leads on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heartbeats {
    StopWhenAsking,
    Keep,
}

/// Lets this peer claim leadership again when a resignation ends, however it ends (the API's
/// handler timeout may drop the request half-way).
struct ClaimAgain<'a>(&'a Leadership);

impl Drop for ClaimAgain<'_> {
    fn drop(&mut self) {
        self.0.resign_term(0);
    }
}

/// Everything a hand-off needs.
#[derive(Clone)]
pub struct Handoff {
    pub raft: Raft,
    pub config: Arc<Config>,
    pub client: PeerClient,
    pub leadership: Arc<Leadership>,
    pub metrics: Arc<Metrics>,
    /// The members known to be witnesses, which are never handed leadership.
    pub changes: Arc<Changes>,
}

impl Handoff {
    /// Shutdown: never claim again, stop campaigning, and hand over if leading.
    pub async fn before_exit(&self, budget: Duration) -> Outcome {
        self.leadership.relinquish();
        super::start::set_elections(&self.raft, false);
        if !self.leading() {
            return Outcome::NotLeader;
        }
        // Claims and reports begun before the shutdown end first (each within its 2 s).
        let started = Instant::now();
        self.leadership.quiesce(budget / 3).await;
        let left = budget.saturating_sub(started.elapsed());
        self.transfer(left, Heartbeats::StopWhenAsking).await
    }

    /// Resign on request: stop claiming and hand over. If nobody takes over, this peer
    /// claims again; also when the caller gives up on the hand-off (the API's handler
    /// timeout drops this future before a budget over 10 s runs out).
    pub async fn resign(&self, budget: Duration) -> Outcome {
        if !self.leading() {
            return Outcome::NotLeader;
        }
        self.leadership.resign_term(u64::MAX);
        let _resume = ClaimAgain(&self.leadership);
        self.transfer(budget, Heartbeats::Keep).await
    }

    /// Resign in favour of one of `targets` only (peers whose application is healthy), as
    /// [`Handoff::resign`] otherwise.
    pub async fn resign_to(&self, budget: Duration, targets: &[NodeId]) -> Outcome {
        if !self.leading() {
            return Outcome::NotLeader;
        }
        self.leadership.resign_term(u64::MAX);
        let _resume = ClaimAgain(&self.leadership);
        self.transfer_to(budget, Heartbeats::Keep, Some(targets))
            .await
    }

    /// Whether this peer leads, as openraft reports it.
    pub fn leading(&self) -> bool {
        RaftStatus::of(&self.raft).reported_leader(self.config.me.id)
    }

    async fn transfer(&self, budget: Duration, heartbeats: Heartbeats) -> Outcome {
        self.transfer_to(budget, heartbeats, None).await
    }

    /// Hands over to a voter (of `only`, when given).
    async fn transfer_to(
        &self,
        budget: Duration,
        heartbeats: Heartbeats,
        only: Option<&[NodeId]>,
    ) -> Outcome {
        let m = self.raft.metrics().borrow().clone();
        let members = Members::from_metrics(&m);
        let me = self.config.me.id;
        let witnesses = self.changes.witnesses();
        // Voters only (a learner cannot win), never a witness.
        let voters = members.voters();
        if voters.iter().all(|id| *id == me) {
            return Outcome::Alone;
        }
        self.metrics.handoffs.inc();
        let started = Instant::now();
        let mut term = m.current_term;
        let timing = self.config.timing;
        let deadline = started + budget;
        // Most up-to-date followers first: they can win the election.
        let mut targets: Vec<(NodeId, Option<u64>)> = m
            .replication
            .iter()
            .flat_map(|r| r.iter())
            .filter(|(id, _)| **id != me && voters.contains(id) && !witnesses.contains(id))
            .filter(|(id, _)| only.is_none_or(|only| only.contains(id)))
            .map(|(id, matched)| (*id, matched.map(|l| l.index)))
            .collect();
        if targets.is_empty() {
            tracing::warn!("no voter that may lead is known to hand leadership to");
            return Outcome::TimedOut;
        }
        targets.sort_by_key(|t| std::cmp::Reverse(t.1));
        for (target, _) in targets.iter().cycle() {
            // Another peer may have won a later round, or an ordinary election, while the last
            // request failed or its wait ran out: then the hand-off is done, whoever was asked.
            let now = self.raft.metrics().borrow().clone();
            if let Some(done) = handed_over(&now, me, term, started) {
                return done;
            }
            // openraft refuses every vote, this leader's own included, for election_timeout_max
            // after it was elected: a campaign asked for earlier would fail and only make this
            // leader step down. Wait that out first (bounded by the budget).
            if let Some(since) = self.leadership.leading_since(term) {
                let ready = (since + timing.election_max + timing.heartbeat / 5).min(deadline);
                tokio::time::sleep_until(ready.into()).await;
            }
            if Instant::now() >= deadline {
                break;
            }
            let Some(peer) = members.nodes.get(target) else {
                continue;
            };
            // The target wins only with a log as long as every voter's: wait (briefly) until
            // a membership change under way has ended (a shutting-down leader starts none) and
            // the target holds this leader's last entry.
            let caught_up = self
                .raft
                .wait(Some(
                    timing
                        .election_max
                        .min(deadline.saturating_duration_since(Instant::now())),
                ))
                .metrics(
                    |m| {
                        let last = m.last_log_index;
                        let uniform =
                            m.membership_config.membership().get_joint_config().len() == 1;
                        uniform
                            && m.replication.as_ref().is_some_and(|r| {
                                r.get(target).copied().flatten().map(|l| l.index) >= last
                            })
                    },
                    "hand-off target caught up",
                )
                .await;
            if caught_up.is_err() {
                tracing::debug!(to = %peer.name, "hand-off target has not caught up; asking it anyway");
            }
            if heartbeats == Heartbeats::StopWhenAsking {
                // The followers' leases on this peer then run out as early as possible (with
                // 5+ peers the others vote only after that). Not before the wait above: while
                // this leader waits out its first election timeout, silent heartbeats would
                // let an ordinary election race the hand-off.
                self.raft.runtime_config().heartbeat(false);
            }
            if let Err(e) = self.client.handoff(peer, timing.election_max).await {
                tracing::warn!(to = %peer.name, error = %crate::errors::chain(&e), "hand-off request failed; trying another peer");
                tokio::time::sleep(timing.heartbeat).await;
                continue;
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(timing.election_max * 2);
            let moved = self
                .raft
                .wait(Some(left))
                .metrics(
                    |m| m.current_term > term && m.current_leader.is_some(),
                    "new leader",
                )
                .await;
            match moved {
                Ok(m) if m.current_leader == Some(me) => {
                    // This peer stepped down and won the new term itself: try again from there.
                    term = m.current_term;
                }
                Ok(m) => {
                    if let Some(done) = handed_over(&m, me, term, started) {
                        return done;
                    }
                }
                Err(_) => {}
            }
        }
        tracing::warn!("hand-off did not complete in time; the other peers will elect after their election timeout");
        Outcome::TimedOut
    }
}

/// The outcome when `m` shows another peer leading a term after `term`.
fn handed_over(m: &RaftMetrics, me: NodeId, term: u64, started: Instant) -> Option<Outcome> {
    let leader = m.current_leader.filter(|l| *l != me)?;
    if m.current_term <= term {
        return None;
    }
    let to = crate::members::member_name(m, leader).unwrap_or_else(|| "?".into());
    let elapsed = started.elapsed();
    tracing::info!(to = %to, term = m.current_term, elapsed_ms = elapsed.as_millis() as u64, "leadership handed over");
    Some(Outcome::HandedOver {
        to,
        term: m.current_term,
        elapsed,
    })
}
