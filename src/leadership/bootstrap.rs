//! Forming the cluster with no manual step, and never a second one: a peer with a fresh data
//! directory asks the others for their status and initializes only when a quorum is fresh and
//! everyone agrees on the member list; when a cluster exists, it joins it instead (`docs/DESIGN.md`, "Bootstrap"). Unreachable peers (not
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
            Ok(s) if s.initialized => c.existing.push((peer.name.clone(), s.term)),
            Ok(s) if s.members_digest != config.members_digest() => {
                c.mismatched.push(peer.name.clone())
            }
            Ok(_) => c.fresh += 1,
            Err(e) => {
                tracing::debug!(peer = %peer.name, error = %e, "bootstrap: peer not reachable yet");
                c.unreachable.push(peer.name.clone());
            }
        }
    }
    c
}

/// Runs until this peer belongs to a cluster, finds one to join, or `cancel` fires. A peer
/// that is not one of the first cluster's (a StatefulSet pod beyond `--replicas`) never
/// bootstraps: it joins ([`super::membership::agent`]).
pub async fn run(config: Arc<Config>, raft: Raft, client: PeerClient, cancel: CancellationToken) {
    if !config.bootstraps() {
        tracing::info!("this peer is not one of the first cluster's: it joins the cluster");
        return;
    }
    if config.membership.witness {
        // openraft's initialize campaigns at once: a witness never leads, so it lets the
        // others initialize (it counts as fresh in their census) and follows.
        tracing::info!("a witness does not initialize the cluster: the application peers do");
        return;
    }
    let quorum = config.peers.len() / 2 + 1;
    let mut metrics = raft.metrics();
    let mut backoff = Duration::from_millis(50);
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
        if let Some((peer, term)) = c.existing.first() {
            tracing::info!(
                data_dir = %config.data_dir.display(),
                peer = %peer,
                term,
                "election {:?} has a cluster already: not bootstrapping a second one; this peer joins it \
                 (if it ran before with this name, its earlier state was lost)",
                config.election
            );
            return;
        } else if !c.mismatched.is_empty() {
            if rounds % 20 != 1 {
                // Logged on the first round and every 20th.
            } else {
                tracing::error!(
                peers = ?c.mismatched,
                "these peers were started with a different peer list; not bootstrapping until every peer has the same --peers/--replicas"
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
            biased;
            _ = cancel.cancelled() => return,
            // Raft stopped (the peer is shutting down): nothing left to bootstrap.
            changed = metrics.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
