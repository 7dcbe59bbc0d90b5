//! Starting openraft the way the rest of this module needs it: the Raft settings derived from
//! the configuration, elections off until a pre-vote allows them, and nothing answered before
//! openraft has published the term it loaded from disk.

use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftLogStorage;

use super::network::NetworkFactory;
use crate::config::{Config, Timing};
use crate::raft::{vote_term, NodeId, Raft};
use crate::store::{LogStore, StateMachine};

/// Why Raft could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid Raft configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("cannot start Raft: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
}

/// Raft settings derived from the configuration.
fn raft_config(config: &Config) -> Result<openraft::Config, openraft::ConfigError> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    openraft::Config {
        cluster_name: config.election.clone(),
        heartbeat_interval: ms(config.timing.heartbeat),
        election_timeout_min: ms(config.timing.election_min),
        election_timeout_max: ms(config.timing.election_max),
        // Each election adds one blank entry; snapshot and purge often so that the log, and
        // the disk it uses, stays flat however many elections happen.
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_logs),
        max_in_snapshot_log_to_keep: config.snapshot_logs.min(20),
        purge_batch_size: config.snapshot_logs.min(20),
        snapshot_max_chunk_size: 256 * 1024,
        install_snapshot_timeout: ms(config.timing.election_max * 4),
        ..Default::default()
    }
    .validate()
}

/// Whether openraft's tick (every 1.5 × `heartbeat_interval`, whole milliseconds as openraft
/// counts them), and so the heartbeats, go on the beat's grid: when the rounded period still
/// leaves the lease room for a round trip, at most 3/4 of the lease (128 ms of 180 at the
/// defaults, leaving 52 ms). Otherwise (short timings) they keep openraft's own period;
/// docs/DESIGN.md, "Wake-ups of an idle peer".
fn raft_on_grid(timing: &Timing) -> bool {
    let heartbeat = u64::try_from(timing.heartbeat.as_millis()).unwrap_or(u64::MAX);
    let tick = Duration::from_millis(heartbeat.saturating_mul(3) / 2);
    crate::beat::grid_period(tick) * 4 <= timing.leader_lease() * 3
}

/// Switches openraft's elections, and tells its runtime whether its tick has an election
/// timer to check ([`crate::beat::raft_elections`]).
pub fn set_elections(raft: &Raft, on: bool) {
    raft.runtime_config().elect(on);
    crate::beat::raft_elections(on);
}

/// Starts Raft over the store, with elections switched off (see [`super::prevote`]).
pub async fn start_raft(
    config: &Config,
    network: NetworkFactory,
    log_store: LogStore,
    state_machine: StateMachine,
) -> Result<Raft, StartError> {
    // A storage error here is Raft::new's to report: it reads the same vote.
    let stored_vote = log_store.clone().read_vote().await.ok().flatten();
    let raft_config = raft_config(config)?;
    let on_grid = raft_on_grid(&config.timing);
    crate::beat::put_raft_on_grid(on_grid);
    tracing::debug!(on_grid, "openraft's tick and timeouts on the beat's grid");
    let raft = Raft::new(
        config.me.id,
        Arc::new(raft_config),
        network,
        log_store,
        state_machine,
    )
    .await?;
    set_elections(&raft, false);
    // openraft's metrics show the state it loaded only once its core runs; until then they
    // read term 0. Nothing is served before they show the stored vote: a restarted peer would
    // otherwise answer term 0 once (its fencing token going back, as the fault-injection suite
    // saw), and tell a bootstrapping peer that it has no state.
    if let Some(vote) = stored_vote {
        let term = vote_term(&vote);
        let loaded = raft
            .wait(Some(config.timing.election_max * 10))
            .metrics(|m| m.current_term >= term, "stored vote loaded")
            .await;
        if let Err(e) = loaded {
            tracing::warn!(error = %e, term, "Raft has not published its stored term yet");
        }
    }
    Ok(raft)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(heartbeat: u64, min: u64, max: u64) -> Timing {
        Timing {
            heartbeat: Duration::from_millis(heartbeat),
            election_min: Duration::from_millis(min),
            election_max: Duration::from_millis(max),
        }
    }

    #[test]
    fn the_default_heartbeat_goes_on_the_grid_every_128_ms() {
        let t = Timing::default();
        assert!(raft_on_grid(&t));
        assert_eq!(
            crate::beat::grid_period(t.heartbeat * 3 / 2),
            Duration::from_millis(128)
        );
    }

    #[test]
    fn a_rounded_period_over_three_quarters_of_the_lease_keeps_openrafts_own() {
        // Lease 180 ms: 128 ms fits up to a heartbeat of 85 ms (tick 127), 192 ms does not.
        assert!(raft_on_grid(&timing(85, 160, 240)));
        assert!(!raft_on_grid(&timing(86, 160, 240)));
        // The old defaults: every 64 ms, as before.
        assert!(raft_on_grid(&timing(30, 100, 200)));
        // A 60 ms lease: no grid period fits.
        assert!(!raft_on_grid(&timing(10, 40, 80)));
    }
}
