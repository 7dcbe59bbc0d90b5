//! This peer's own side of the membership: joining when it is not a member (a new pod, a pod
//! that left and came back), and leaving on a requested shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::changes::Changes;
use crate::leadership::Leadership;
use crate::members::{Members, Standing};
use crate::peer::protocol::{JoinRequest, LeaveRequest, MembershipAnswer};
use crate::raft::{PeerNode, RaftStatus};

/// With no leader heard for this long, a peer asks again to be a member: it may have been
/// removed while it was away, with a membership of its own that still lists it.
const LOST_FOR: Duration = Duration::from_secs(3);

/// Joins when this peer is not a member, or when it has heard no leader for a while; asks
/// once at start in any case (joins are idempotent), so that a witness is known as one.
pub async fn join(changes: Arc<Changes>, leadership: Arc<Leadership>, stop: CancellationToken) {
    let config = changes.config.clone();
    let me = &config.me;
    let started = Instant::now();
    let mut answered = false;
    let mut last_attempt: Option<Instant> = None;
    let mut backoff = Duration::from_millis(100);
    let mut last_logged: Option<String> = None;
    loop {
        let now = Instant::now();
        let (members, status) = {
            let rx = changes.raft.metrics();
            let m = rx.borrow();
            (Members::from_metrics(&m), RaftStatus::from_metrics(&m))
        };
        let outside = members.standing(me.id) == Standing::Outside;
        let fresh = members.index.is_none();
        let lost = leadership.fresh_leader(now).is_none()
            && !status.raft_leader()
            && now - started > LOST_FOR
            && last_attempt.is_none_or(|t| now - t > LOST_FOR);
        // A fresh peer of the first cluster bootstraps with the others; it joins only once a
        // cluster exists (the bootstrap task sees that).
        let wanted = !answered || (outside && !(fresh && config.bootstraps())) || lost;
        if wanted && !leadership.relinquished() {
            last_attempt = Some(now);
            let asked = tokio::select! {
                _ = stop.cancelled() => return,
                asked = ask_to_join(&changes, &members) => asked,
            };
            match asked {
                Some(MembershipAnswer::Done { standing, index }) => {
                    answered = true;
                    backoff = Duration::from_millis(100);
                    let line = format!("{standing:?}@{index}");
                    if last_logged.as_deref() != Some(&line) {
                        tracing::info!(standing = ?standing, index, "membership: this peer is a member");
                        last_logged = Some(line);
                    }
                }
                Some(MembershipAnswer::Refused { code, reason }) => {
                    let line = format!("refused {code}");
                    if last_logged.as_deref() != Some(&line) {
                        tracing::error!(code = %code, reason = %reason, "the cluster refused this peer's join");
                        last_logged = Some(line);
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Some(MembershipAnswer::Later { reason }) => {
                    tracing::debug!(reason = %reason, "join: not now");
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                None => backoff = (backoff * 2).min(Duration::from_secs(2)),
            }
        } else if !wanted {
            backoff = Duration::from_millis(500);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Every peer this one may ask: the members it knows and the configured peers.
fn targets(changes: &Changes, members: &Members) -> Vec<PeerNode> {
    let me = changes.config.me.id;
    let mut out: Vec<PeerNode> = members
        .nodes
        .iter()
        .filter(|(id, _)| **id != me)
        .map(|(_, n)| n.clone())
        .collect();
    for p in changes.config.others() {
        if !out.iter().any(|n| n.name == p.name) {
            out.push(p);
        }
    }
    out
}

/// Asks the peers one after the other until one gives a final answer (done or refused); the
/// last "later" otherwise, or nothing when none answered.
async fn ask_to_join(changes: &Changes, members: &Members) -> Option<MembershipAnswer> {
    let config = &changes.config;
    let req = JoinRequest {
        name: config.me.name.clone(),
        addr: config.me.addr.clone(),
        witness: config.membership.witness,
    };
    let mut last = None;
    for target in targets(changes, members) {
        match changes
            .client
            .join(&target, &req, config.timing.election_max * 10)
            .await
        {
            Ok(answer @ (MembershipAnswer::Done { .. } | MembershipAnswer::Refused { .. })) => {
                return Some(answer)
            }
            Ok(later) => last = Some(later),
            Err(e) => tracing::debug!(peer = %target.name, error = %e, "join: peer not reachable"),
        }
    }
    last
}

/// How a leave ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// The smaller membership is committed (log index).
    Removed(u64),
    /// Not asked: `--leave-on-shutdown=false`, or this peer is the last voter.
    Stayed(&'static str),
    /// This peer leads (it won an election it had started before the shutdown, e.g. on a
    /// hand-off from a leader that was stopping too): it must hand over first.
    StillLeads,
    Refused(String),
    TimedOut,
}

/// On a requested shutdown, after the hand-off: asks the leader to remove this peer and waits
/// until that is committed, for at most `budget`.
pub async fn leave(changes: &Changes, budget: Duration) -> Left {
    let config = &changes.config;
    if !config.membership.leave_on_shutdown {
        return Left::Stayed("--leave-on-shutdown=false");
    }
    let deadline = Instant::now() + budget;
    let me = &config.me;
    let req = LeaveRequest {
        name: me.name.clone(),
    };
    loop {
        let (members, leader) = {
            let rx = changes.raft.metrics();
            let m = rx.borrow();
            (Members::from_metrics(&m), m.current_leader)
        };
        match members.standing(me.id) {
            Standing::Outside => return Left::Removed(members.index.unwrap_or(0)),
            Standing::Voter if members.voters().len() == 1 => {
                return Left::Stayed("this peer is the last voter")
            }
            _ => {}
        }
        let target = leader
            .filter(|id| *id != me.id)
            .and_then(|id| members.nodes.get(&id).cloned());
        if let Some(target) = target {
            let left = deadline.saturating_duration_since(Instant::now());
            match changes.client.leave(&target, &req, left).await {
                Ok(MembershipAnswer::Done { index, .. }) => return Left::Removed(index),
                Ok(MembershipAnswer::Refused { reason, .. }) => return Left::Refused(reason),
                Ok(MembershipAnswer::Later { reason }) => {
                    tracing::debug!(reason = %reason, "leave: not now")
                }
                Err(e) => tracing::debug!(error = %e, "leave: leader not reachable"),
            }
        } else if leader == Some(me.id) {
            return Left::StillLeads;
        }
        if Instant::now() + Duration::from_millis(50) >= deadline {
            return Left::TimedOut;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
