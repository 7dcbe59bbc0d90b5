//! Graceful hand-off: what a leader does on SIGTERM before it exits.
//!
//! The lease is given up first (the peer stops answering that it leads at once), heartbeats
//! and elections are switched off, then the most up-to-date follower is asked to campaign.
//! The old leader grants it its vote, so with 3 peers the new leader is elected in about one
//! round trip. With 5 peers the other followers refuse until their lease on the old leader
//! runs out (one `election_max` after its last heartbeat), which bounds the hand-off there.

use std::time::{Duration, Instant};

use openraft::ServerState;

use crate::config::Config;
use crate::leadership::Leadership;
use crate::metrics::Metrics;
use crate::raft::network::PeerClient;
use crate::raft::{NodeId, Raft};

/// Stops claiming leadership and, if this peer leads, hands it to a follower within `budget`.
pub async fn hand_over(
    raft: &Raft,
    config: &Config,
    client: &PeerClient,
    leadership: &Leadership,
    metrics: &Metrics,
    budget: Duration,
) {
    leadership.relinquish();
    raft.runtime_config().elect(false);
    let m = raft.metrics().borrow().clone();
    if m.state != ServerState::Leader {
        return;
    }
    raft.runtime_config().heartbeat(false);
    metrics.handoffs.inc();
    let started = Instant::now();
    let term = m.current_term;
    let me = config.me.id;
    // Most up-to-date followers first: they can win the election.
    let mut targets: Vec<(NodeId, Option<u64>)> = m
        .replication
        .iter()
        .flat_map(|r| r.iter())
        .filter(|(id, _)| **id != me)
        .map(|(id, matched)| (*id, matched.map(|l| l.index)))
        .collect();
    targets.sort_by(|a, b| b.1.cmp(&a.1));
    let wait = config.timing.election_max * 2;
    let deadline = started + budget;
    for (target, _) in targets.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let Some(peer) = config.peers.iter().find(|p| p.id == *target) else {
            continue;
        };
        if let Err(e) = client.handoff(&peer.addr, config.timing.election_max).await {
            tracing::warn!(to = %peer.name, error = %e, "hand-off request failed; trying another peer");
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now()).min(wait);
        let moved = raft
            .wait(Some(left))
            .metrics(
                |m| m.current_term > term && m.current_leader.is_some_and(|l| l != me),
                "new leader",
            )
            .await;
        if let Ok(m) = moved {
            let new = m
                .current_leader
                .and_then(|id| config.name_of(id))
                .unwrap_or("?");
            tracing::info!(to = %new, term = m.current_term, elapsed_ms = started.elapsed().as_millis() as u64, "leadership handed over");
            return;
        }
    }
    tracing::warn!("hand-off did not complete in time; the other peers will elect after their election timeout");
}
