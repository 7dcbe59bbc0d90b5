//! Forming the cluster with no manual step, and never a second one: a peer with a fresh data
//! directory asks the others for their status and initializes only when a quorum is fresh and
//! everyone agrees on the member list (`docs/DESIGN.md`, "Bootstrap"). Unreachable peers (not
//! yet scheduled, DNS not yet published) are retried with a backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::peer::client::PeerClient;
use crate::raft::{has_state, Raft};

/// What one round of asking the peers found.
#[derive(Debug, Default)]
struct Census {
    fresh: usize,
    existing: Vec<(String, u64)>,
    mismatched: Vec<String>,
    unreachable: Vec<String>,
}

async fn census(config: &Config, client: &PeerClient, timeout: Duration) -> Census {
    let others = config.others();
    let answers = futures::future::join_all(others.iter().map(|p| client.status(p, timeout))).await;
    let mut c = Census {
        fresh: 1,
        ..Census::default()
    };
    for (peer, answer) in others.iter().zip(answers) {
        match answer {
            Ok(s) if s.members_digest != config.members_digest() => {
                c.mismatched.push(peer.name.clone())
            }
            Ok(s) if s.initialized => c.existing.push((peer.name.clone(), s.term)),
            Ok(_) => c.fresh += 1,
            Err(e) => {
                tracing::debug!(peer = %peer.name, error = %e, "bootstrap: peer not reachable yet");
                c.unreachable.push(peer.name.clone());
            }
        }
    }
    c
}

/// Runs until this peer belongs to a cluster or `cancel` fires.
pub async fn run(config: Arc<Config>, raft: Raft, client: PeerClient, cancel: CancellationToken) {
    let quorum = config.peers.len() / 2 + 1;
    let mut metrics = raft.metrics();
    let mut backoff = Duration::from_millis(50);
    let mut warned_existing = false;
    let mut rounds: u64 = 0;
    loop {
        if has_state(&metrics.borrow()) {
            tracing::info!("this peer has joined the cluster");
            return;
        }
        let c = census(
            &config,
            &client,
            config.timing.election_max.max(Duration::from_millis(500)),
        )
        .await;
        rounds += 1;
        if !c.mismatched.is_empty() {
            tracing::error!(
                peers = ?c.mismatched,
                "these peers were started with a different peer list; not bootstrapping until every peer has the same --peers/--replicas"
            );
        } else if let Some((peer, term)) = c.existing.first() {
            if !warned_existing {
                warned_existing = true;
                tracing::warn!(
                    data_dir = %config.data_dir.display(),
                    peer = %peer,
                    term,
                    "the data directory is empty but election {:?} already has a cluster: not bootstrapping a second one; \
                     waiting for its leader to bring this peer up to date (if this peer ran before, its earlier state was lost)",
                    config.election
                );
            }
        } else if c.fresh >= quorum {
            match raft.initialize(config.members()).await {
                Ok(()) => {
                    tracing::info!(peers = config.peers.len(), "bootstrapped a new cluster");
                    return;
                }
                Err(e) => match e.api_error() {
                    Some(openraft::error::InitializeError::NotAllowed(_)) => {
                        tracing::info!("cluster already initialized");
                        return;
                    }
                    _ => tracing::warn!(error = %e, "bootstrap: initialize failed; retrying"),
                },
            }
        } else if rounds % 20 == 1 {
            tracing::info!(
                fresh = c.fresh,
                needed = quorum,
                unreachable = ?c.unreachable,
                "waiting for a quorum of peers to bootstrap the cluster"
            );
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = metrics.changed() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
