//! Job claims (issue 14): how many slot claims per second raft-elector grants, and how long
//! each takes, against PostgreSQL doing the same with fsync on, with 1, 8 and 64 concurrent
//! clients, in one run.
//!
//! Each client claims fresh slots one after the other for `--claim-secs` over its own
//! connection and records every answer and its latency. raft-elector: 3 and 5 peers with the
//! default settings; `POST /v1/jobs/{job}/claims` on the leader (and, with 8 clients, on a
//! follower, which forwards to the leader); a grant is answered once it is committed (on a
//! quorum's disks) and applied. PostgreSQL: a throwaway server ([`crate::postgres`]) and
//! `INSERT ... ON CONFLICT DO NOTHING RETURNING token`, prepared, autocommit.
//!
//! Slot keys are one counter across the clients of a run, zero-padded, so that they sort like
//! the order they were handed out in: a job's ledger remembers its latest `--job-history`
//! (100) slots and refuses (410) a slot key at or below the greatest one it forgot, so keys
//! that did not sort by time would be refused once the first were forgotten. Each run claims
//! under a job of its own.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use testkit::{jobs, Ask, Cluster};

use super::{ms, started, SETTLE};
use crate::cli::Args;
use crate::postgres::Server;
use crate::stats::{median, percentile, round, round3};
use crate::sys;

/// Concurrent clients per run.
pub(crate) const CLIENTS: [usize; 3] = [1, 8, 64];
/// Clients of the run that sends its claims through a follower.
const FOLLOWER_CLIENTS: usize = 8;

/// The ledger table, as an application would keep it in PostgreSQL.
const CREATE_TABLE: &str = "CREATE TABLE claims (job text, slot text, holder text, \
     token bigserial, claimed_at timestamptz default now(), PRIMARY KEY (job, slot))";
/// One claim: a row if the slot was free, none if it was taken.
const INSERT: &str = "INSERT INTO claims (job, slot, holder) VALUES ($1, $2, $3) \
     ON CONFLICT DO NOTHING RETURNING token";

/// What one claim came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// raft-elector's 201, PostgreSQL's row: the slot is the client's.
    Granted,
    /// Any other HTTP status (409 held, 410 forgotten, 503 no quorum in time, ...).
    Status(u16),
    /// PostgreSQL: no row, the slot was taken.
    Taken,
    /// No whole answer (connection error or timeout; PostgreSQL: an error).
    Lost,
}

impl Answer {
    fn label(self) -> String {
        match self {
            Answer::Granted => "granted".into(),
            Answer::Status(s) => s.to_string(),
            Answer::Taken => "taken".into(),
            Answer::Lost => "no answer".into(),
        }
    }
}

/// The key of the `seq`-th slot of a run: zero-padded, so that byte order is claim order.
pub(crate) fn slot_key(seq: u64) -> String {
    format!("{seq:012}")
}

/// One run's figures from every claim's answer and latency (ms) and the run's length:
/// claims/s counts grants only, over the whole run; latencies are the grants'; every other
/// answer is counted by kind.
pub(crate) fn summarise(samples: &[(Answer, f64)], elapsed_s: f64) -> Value {
    let mut granted: Vec<f64> = samples
        .iter()
        .filter(|(a, _)| *a == Answer::Granted)
        .map(|&(_, ms)| ms)
        .collect();
    granted.sort_by(f64::total_cmp);
    let mut others: BTreeMap<String, u64> = BTreeMap::new();
    for (a, _) in samples.iter().filter(|(a, _)| *a != Answer::Granted) {
        *others.entry(a.label()).or_default() += 1;
    }
    let rate = if elapsed_s > 0.0 {
        granted.len() as f64 / elapsed_s
    } else {
        f64::NAN
    };
    let mean = granted.iter().sum::<f64>() / granted.len() as f64;
    json!({
        "requests": samples.len(),
        "granted": granted.len(),
        "claims_per_s": round(rate),
        "median_ms": round3(median(&granted)),
        "p99_ms": round3(percentile(&granted, 0.99)),
        "max_ms": round3(granted.last().copied().unwrap_or(f64::NAN)),
        "mean_ms": round3(mean),
        "other_answers": others,
        "seconds": round3(elapsed_s),
    })
}

/// Something that claims slots, one at a time.
#[allow(async_fn_in_trait)]
trait Claimer {
    async fn claim(&mut self, slot: &str) -> Answer;
}

/// When the clients of a run stop.
#[derive(Clone, Copy)]
enum Until {
    /// Once this much time has passed.
    Time(Duration),
    /// Once this many slots were handed out to claim (the grants may be fewer).
    Slots(u64),
}

/// Every client claims fresh slots one after the other until `until`; every answer with its
/// latency, and how long the run took until the last answer came.
async fn drive<C: Claimer>(claimers: Vec<C>, until: Until) -> (Vec<(Answer, f64)>, f64) {
    let next = Cell::new(0u64);
    let start = Instant::now();
    let more = |seq: u64| match until {
        Until::Time(d) => start.elapsed() < d,
        Until::Slots(n) => seq < n,
    };
    let loops = claimers.into_iter().map(|mut c| {
        let next = &next;
        async move {
            let mut out = Vec::new();
            while more(next.get()) {
                let seq = next.get();
                next.set(seq + 1);
                let slot = slot_key(seq);
                let t = Instant::now();
                let answer = c.claim(&slot).await;
                out.push((answer, ms(t.elapsed())));
                if matches!(answer, Answer::Lost | Answer::Status(503)) {
                    // As an application would: do not hammer a peer that cannot answer.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            out
        }
    });
    let all = futures::future::join_all(loops).await;
    let elapsed = start.elapsed().as_secs_f64();
    (all.into_iter().flatten().collect(), elapsed)
}

/// A client of raft-elector's job API, with a connection of its own.
struct Elector {
    http: reqwest::Client,
    addr: SocketAddr,
    job: String,
}

impl Claimer for Elector {
    async fn claim(&mut self, slot: &str) -> Answer {
        match jobs::claim(&self.http, self.addr, &self.job, slot).await {
            Some(r) if r.status == 201 => Answer::Granted,
            Some(r) => Answer::Status(r.status),
            None => Answer::Lost,
        }
    }
}

/// A PostgreSQL connection with the claim prepared.
struct Pg {
    client: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
    job: String,
    holder: String,
}

impl Claimer for Pg {
    async fn claim(&mut self, slot: &str) -> Answer {
        match self
            .client
            .query_opt(&self.insert, &[&self.job, &slot, &self.holder])
            .await
        {
            Ok(Some(row)) if row.try_get::<_, i64>(0).is_ok() => Answer::Granted,
            Ok(Some(_)) | Err(_) => Answer::Lost,
            Ok(None) => Answer::Taken,
        }
    }
}

/// A connection to the throwaway server; its driver runs as a task of its own.
async fn pg_connect(conninfo: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("bench: PostgreSQL connection: {e}");
        }
    });
    Ok(client)
}

pub(super) async fn claims(exe: &Path, args: &Args) -> Result<Value, String> {
    let duration = Duration::from_secs(args.claim_secs);
    // What one fsync costs here bounds both systems' latency at one client.
    let fsync = sys::fdatasync_probe(500);
    eprintln!("bench: claims, fdatasync on the temporary directory's file system: {fsync}");
    let mut elector = Map::new();
    for n in [3usize, 5] {
        let total = if n == 3 { args.claim_total } else { 0 };
        let v = elector_runs(exe, n, duration, total)
            .await
            .unwrap_or_else(|e| {
                eprintln!("bench: claims, {n} peers: {e}");
                json!({ "error": e })
            });
        elector.insert(n.to_string(), v);
    }
    let postgres = postgres_runs(duration).await.unwrap_or_else(|e| {
        eprintln!("bench: claims, PostgreSQL: {e}");
        json!({ "error": e })
    });
    Ok(json!({
        "seconds_per_run": args.claim_secs,
        "claim_total": args.claim_total,
        "clients": CLIENTS,
        "follower_clients": FOLLOWER_CLIENTS,
        "fdatasync": fsync,
        "raft_elector": elector,
        "postgres": postgres,
    }))
}

/// One run's row: the summary with what it was.
fn row(samples: &[(Answer, f64)], elapsed: f64, clients: usize, target: &str) -> Value {
    let mut v = summarise(samples, elapsed);
    v["clients"] = json!(clients);
    v["target"] = json!(target);
    v
}

/// The runs against a cluster of `n` peers, then (with `total`) claims by 64 clients until
/// `total` slots were granted in all, then the size of its data directories.
async fn elector_runs(
    exe: &Path,
    n: usize,
    duration: Duration,
    total: u64,
) -> Result<Value, String> {
    let (c, first) = started(exe, n, &[], false).await?;
    // The cluster's first claim asks every member whether it supports the ledger: not timed.
    let http = jobs::client();
    let leader = c.peers[first.leader].http;
    match jobs::claim_decided(&http, leader, "bench-warm-up", "0", Duration::from_secs(10)).await {
        Some(r) if r.status == 201 => {}
        other => {
            return Err(format!(
                "{n} peers: the warm-up claim was not granted: {other:?}\n{}",
                c.log_tail(first.leader, 20)
            ))
        }
    }
    let mut granted = 1u64;
    let mut runs = Vec::new();
    let plan = CLIENTS
        .iter()
        .map(|&k| (k, "leader"))
        .chain([(FOLLOWER_CLIENTS, "follower")]);
    for (clients, target) in plan {
        tokio::time::sleep(SETTLE).await;
        let Some(before) = c.agreed(&c.all(), Duration::from_secs(10)).await else {
            return Err(format!(
                "{n} peers: no leader before the {clients}-client run"
            ));
        };
        let peer = match target {
            "leader" => before.leader,
            _ => (before.leader + 1) % n,
        };
        let claimers: Vec<Elector> = (0..clients)
            .map(|_| Elector {
                http: jobs::client(),
                addr: c.peers[peer].http,
                job: format!("bench-{clients}-{target}"),
            })
            .collect();
        let (samples, elapsed) = drive(claimers, Until::Time(duration)).await;
        let after = c.agreed(&c.all(), Duration::from_secs(10)).await;
        let mut v = row(&samples, elapsed, clients, target);
        v["term_before"] = json!(before.term);
        v["term_after"] = json!(after.as_ref().map(|a| a.term));
        v["leader_changed"] = json!(after
            .as_ref()
            .is_none_or(|a| (a.leader, a.term) != (before.leader, before.term)));
        granted += v["granted"].as_u64().unwrap_or(0);
        eprintln!(
            "bench: claims, raft-elector {n} peers, {clients} clients via the {target}: {} claims/s, median {} ms, p99 {} ms, other answers {}",
            v["claims_per_s"], v["median_ms"], v["p99_ms"], v["other_answers"]
        );
        runs.push(v);
    }
    let mut bulk = Value::Null;
    if total > granted {
        let Some(now) = c.agreed(&c.all(), Duration::from_secs(10)).await else {
            return Err(format!("{n} peers: no leader before the bulk run"));
        };
        let claimers: Vec<Elector> = (0..64)
            .map(|_| Elector {
                http: jobs::client(),
                addr: c.peers[now.leader].http,
                job: "bench-bulk".into(),
            })
            .collect();
        let (samples, elapsed) = drive(claimers, Until::Slots(total - granted)).await;
        let v = row(&samples, elapsed, 64, "leader");
        granted += v["granted"].as_u64().unwrap_or(0);
        eprintln!(
            "bench: claims, raft-elector {n} peers, bulk run to {granted} grants: {} claims/s, p99 {} ms, other answers {}",
            v["claims_per_s"], v["p99_ms"], v["other_answers"]
        );
        bulk = v;
    }
    let mut size = elector_size(&c, granted).await;
    size["rss_kib"] = json!((0..c.len())
        .map(|i| c.pid(i).and_then(sys::rss_kib).map(|(rss, _)| rss))
        .collect::<Vec<_>>());
    Ok(json!({ "runs": runs, "bulk": bulk, "size": size }))
}

/// Each peer's data directory and log position after the runs, and the slots the ledger
/// keeps.
async fn elector_size(c: &Cluster, granted: u64) -> Value {
    // Let a snapshot that the last claims started finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut peers = Vec::new();
    for i in 0..c.len() {
        let (allocated, apparent) = sys::disk_usage(c.data_dir(i));
        peers.push(json!({
            "apparent_bytes": apparent,
            "allocated_bytes": allocated,
            "last_log_index": c.metric(i, "raft_elector_last_log_index").await,
            "snapshot_index": c.metric(i, "raft_elector_snapshot_index").await,
            "purged_index": c.metric(i, "raft_elector_purged_index").await,
        }));
    }
    let ledger = match c.get(0, "/v1/jobs").await {
        Some((200, text)) => serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let jobs = ledger["jobs"].as_array().cloned().unwrap_or_default();
    let kept: u64 = jobs.iter().filter_map(|j| j["slots"].as_u64()).sum();
    json!({
        "granted": granted,
        "jobs": jobs.len(),
        "slots_kept": kept,
        "peers": peers,
    })
}

/// The bigint that `sql` answers, if any.
async fn scalar(client: &tokio_postgres::Client, sql: &str) -> Option<i64> {
    client
        .query_one(sql, &[])
        .await
        .and_then(|r| r.try_get::<_, i64>(0))
        .ok()
}

/// The same runs against a throwaway PostgreSQL server, then its size.
async fn postgres_runs(duration: Duration) -> Result<Value, String> {
    let mut server = Server::start()?;
    let conninfo = server.conninfo();
    let admin = pg_connect(&conninfo).await?;
    admin
        .batch_execute(CREATE_TABLE)
        .await
        .map_err(|e| format!("creating the table: {e}"))?;
    let mut settings = Map::new();
    for name in [
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
        "server_version",
    ] {
        let value: String = admin
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| format!("SHOW {name}: {e}"))?;
        settings.insert(name.into(), json!(value));
    }
    let mut runs = Vec::new();
    for clients in CLIENTS {
        tokio::time::sleep(SETTLE).await;
        let job = format!("bench-{clients}");
        let mut claimers = Vec::new();
        for i in 0..clients {
            let client = pg_connect(&conninfo).await?;
            let insert = client
                .prepare(INSERT)
                .await
                .map_err(|e| format!("preparing the claim: {e}"))?;
            claimers.push(Pg {
                client,
                insert,
                job: job.clone(),
                holder: format!("client-{i}"),
            });
        }
        let (samples, elapsed) = drive(claimers, Until::Time(duration)).await;
        let v = row(&samples, elapsed, clients, "server");
        eprintln!(
            "bench: claims, PostgreSQL, {clients} clients: {} claims/s, median {} ms, p99 {} ms, other answers {}",
            v["claims_per_s"], v["median_ms"], v["p99_ms"], v["other_answers"]
        );
        runs.push(v);
    }
    let rows = scalar(&admin, "SELECT count(*) FROM claims").await;
    let table_bytes = scalar(&admin, "SELECT pg_total_relation_size('claims')").await;
    drop(admin);
    server.stop()?;
    let (allocated, apparent) = sys::disk_usage(server.data_dir());
    let (wal_allocated, wal_apparent) = sys::disk_usage(&server.data_dir().join("pg_wal"));
    Ok(json!({
        "version": server.version,
        "settings": settings,
        "runs": runs,
        "size": {
            "rows": rows,
            "table_bytes": table_bytes,
            "apparent_bytes": apparent,
            "allocated_bytes": allocated,
            "wal_apparent_bytes": wal_apparent,
            "wal_allocated_bytes": wal_allocated,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keys_sort_like_the_order_they_were_handed_out_in() {
        let keys: Vec<String> = [0u64, 9, 10, 99, 100, 123_456].map(slot_key).to_vec();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn only_grants_count_as_claims_and_their_rate_is_over_the_whole_run() {
        let mut samples: Vec<(Answer, f64)> =
            (1..=100).map(|i| (Answer::Granted, f64::from(i))).collect();
        samples.push((Answer::Status(503), 2000.0));
        samples.push((Answer::Status(503), 2000.0));
        samples.push((Answer::Lost, 5000.0));
        samples.push((Answer::Taken, 0.5));
        let v = summarise(&samples, 4.0);
        assert_eq!(v["requests"], 104);
        assert_eq!(v["granted"], 100);
        assert_eq!(v["claims_per_s"], 25.0);
        assert_eq!(v["median_ms"], 50.5);
        assert_eq!(v["p99_ms"], 99.0);
        assert_eq!(v["max_ms"], 100.0);
        assert_eq!(v["mean_ms"], 50.5);
        assert_eq!(
            v["other_answers"],
            json!({ "503": 2, "no answer": 1, "taken": 1 })
        );
    }

    #[test]
    fn a_run_without_grants_has_no_latencies() {
        let v = summarise(&[(Answer::Status(503), 2000.0)], 2.0);
        assert_eq!(v["granted"], 0);
        assert_eq!(v["claims_per_s"], 0.0);
        assert!(v["median_ms"].is_null() && v["p99_ms"].is_null() && v["max_ms"].is_null());
    }
}
