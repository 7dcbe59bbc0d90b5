//! The measurements, one module per section of the report, and what they share: the settle
//! time between trials and the jitter that keeps trials from locking to the heartbeat.

mod api;
mod coldstart;
mod disk;
mod etcd;
mod failover;
mod footprint;
mod partition;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::cli::Args;

/// Every section, in the order a run measures them.
pub(crate) const SECTIONS: &[&str] = &[
    "failover",
    "handoff",
    "coldstart",
    "partition",
    "api",
    "footprint",
    "disk",
    "etcd",
    "etcd-elect",
];

/// A duration in milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A small xorshift for jitter; no need for a random crate.
fn jitter(max: Duration) -> Duration {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    max.mul_f64((x % 10_000) as f64 / 10_000.0)
}

/// Pause before each trial, so that the previous one has settled.
const SETTLE: Duration = Duration::from_millis(300);

/// Measures one section (a name from [`SECTIONS`]) against the binary `exe`.
pub(crate) async fn measure(name: &str, exe: &Path, args: &Args) -> Result<Value, String> {
    match name {
        "failover" => failover::failovers(exe, args, false).await,
        "handoff" => failover::failovers(exe, args, true).await,
        "coldstart" => coldstart::cold_starts(exe, args).await,
        "partition" => partition::partitions(exe, args).await,
        "api" => api::api(exe, args).await,
        "footprint" => footprint::footprint(exe, args).await,
        "disk" => disk::disk(exe, args).await,
        "etcd" => etcd::etcd_failovers(args).await,
        "etcd-elect" => etcd::etcd_elect(args).await,
        _ => Err(format!("unknown section {name:?}")),
    }
}
