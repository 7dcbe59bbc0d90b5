//! The measurements, one module per section of the report, and what they share: the cluster
//! of raft-elector processes (the test kit's, testkit/) and the settle time between trials.
//! Each trial waits a random extra bit, so that trials do not lock to the heartbeat.

mod api;
mod claims;
mod coldstart;
mod disk;
mod etcd;
mod failover;
mod footprint;
mod membership;
mod notify;
mod partition;
mod throttled;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use serde_json::Value;
use testkit::{Agreed, Ask, Cluster, Spec};

use crate::cli::Args;
use crate::stats::Summary;

/// Every section, in the order a run measures them.
pub(crate) const SECTIONS: &[&str] = &[
    "failover",
    "handoff",
    "coldstart",
    "partition",
    "membership",
    "notify",
    "claims",
    "api",
    "footprint",
    "disk",
    "etcd",
    "etcd-elect",
    "throttled",
];

/// A duration in milliseconds.
/// Three containers of `image` for election `election`, found as a StatefulSet's pods, each
/// asked with a 1 s timeout (a throttled peer answers late: a late answer is still one).
fn image_spec(image: &str, election: &str, log_filter: &str) -> testkit::docker::Spec {
    testkit::docker::Spec {
        image: image.to_string(),
        peers: 3,
        election: election.into(),
        discovery: testkit::docker::Discovery::StatefulSet,
        log_filter: log_filter.into(),
        clients_network: false,
        ask_timeout: Duration::from_secs(1),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` peers of `exe` (not started) with `flags`, asked every 5 ms; with `proxied`, behind
/// fault proxies so that links can be cut. Peers die with the benchmark.
fn cluster(exe: &Path, n: usize, flags: &[&str], proxied: bool) -> Cluster {
    cluster_with(exe, n, flags, proxied, false)
}

/// [`cluster`], its peers speaking mutual TLS when `tls` (certificates made by the kit).
fn cluster_with(exe: &Path, n: usize, flags: &[&str], proxied: bool, tls: bool) -> Cluster {
    let mut spec = Spec::new(exe, n);
    spec.tls = tls;
    spec.election = "bench".into();
    spec.flags = flags.iter().map(|f| f.to_string()).collect();
    spec.sender_header = proxied.then(|| "x-raft-elector-from".into());
    spec.ask_timeout = Duration::from_millis(300);
    spec.poll = Duration::from_millis(5);
    spec.dir_prefix = "raft-elector-bench-".into();
    spec.die_with_parent = true;
    Cluster::new(spec)
}

/// [`cluster`], started, once its peers agree on a first leader (within 30 s).
async fn started(
    exe: &Path,
    n: usize,
    flags: &[&str],
    proxied: bool,
) -> Result<(Cluster, Agreed), String> {
    started_cluster(cluster(exe, n, flags, proxied)).await
}

/// Starts the peers of `c`, once they agree on a first leader (within 30 s).
async fn started_cluster(mut c: Cluster) -> Result<(Cluster, Agreed), String> {
    let n = c.len();
    c.spawn_all();
    match c.agreed(&c.all(), Duration::from_secs(30)).await {
        Some(first) => Ok((c, first)),
        None => Err(format!(
            "{n} peers: no leader at start\n{}",
            c.log_tail(0, 20)
        )),
    }
}

/// Pause before each trial, so that the previous one has settled.
const SETTLE: Duration = Duration::from_millis(300);

/// One failover trial ([`stop_leader`]): the leader stopped, the agreement before, when the
/// signal went, and the survivors' agreement on another leader in a higher term, if within
/// 10 s.
struct Stopped {
    before: Agreed,
    t0: Instant,
    after: Option<Agreed>,
}

/// Waits (up to 10 s) for every peer of `c` to agree, stops that leader (kill -9, or SIGTERM
/// when `graceful`) and waits up to 10 s for the others to agree on another one in a higher
/// term. `None` when the peers did not agree before.
async fn stop_leader(c: &mut Cluster, graceful: bool) -> Option<Stopped> {
    let before = c.agreed(&c.all(), Duration::from_secs(10)).await?;
    let l = before.leader;
    let survivors = c.all_but(l);
    let t0 = Instant::now();
    if graceful {
        c.signal(l, Signal::SIGTERM);
    } else {
        c.kill(l);
    }
    let after = c
        .agreed_where(&survivors, Duration::from_secs(10), |leader, term| {
            leader != l && term > before.term
        })
        .await
        .ok();
    Some(Stopped { before, t0, after })
}

impl Stopped {
    /// Adds the time to the new leader (or a failure) and the term increase.
    fn record(&self, times: &mut Summary, bumps: &mut Vec<u64>) {
        match &self.after {
            Some(a) => {
                times.push(ms(a.at - self.t0));
                bumps.push(a.term - self.before.term);
            }
            None => times.failed += 1,
        }
    }

    /// "195 ms, term +1", or that no leader came.
    fn outcome(&self) -> String {
        self.after
            .as_ref()
            .map(|a| {
                format!(
                    "{:.0} ms, term +{}",
                    ms(a.at - self.t0),
                    a.term - self.before.term
                )
            })
            .unwrap_or_else(|| "no new leader within 10 s".into())
    }
}

/// Measures one section (a name from [`SECTIONS`]) against the binary `exe`.
pub(crate) async fn measure(name: &str, exe: &Path, args: &Args) -> Result<Value, String> {
    match name {
        "failover" => failover::failovers(exe, args, false).await,
        "handoff" => failover::failovers(exe, args, true).await,
        "coldstart" => coldstart::cold_starts(exe, args).await,
        "partition" => partition::partitions(exe, args).await,
        "membership" => membership::membership(exe, args).await,
        "notify" => notify::notify(exe, args).await,
        "claims" => claims::claims(exe, args).await,
        "api" => api::api(exe, args).await,
        "footprint" => footprint::footprint(exe, args).await,
        "disk" => disk::disk(exe, args).await,
        "etcd" => etcd::etcd_failovers(args).await,
        "etcd-elect" => etcd::etcd_elect(args).await,
        "throttled" => throttled::throttled(args).await,
        _ => Err(format!("unknown section {name:?}")),
    }
}
