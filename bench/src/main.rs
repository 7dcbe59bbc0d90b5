//! raft-elector's benchmark: failover, hand-off, cold start, partition heal, application API
//! throughput and footprint, side by side with etcd and a bare axum handler, in one run.
//!
//! ```sh
//! scripts/bench.sh            # installs wrk and etcd when absent, builds, runs everything
//! cargo run --release -p raft-elector-bench -- --quick --only failover
//! ```
//!
//! Writes `docs/bench/results.json`, `docs/bench/results.md` and the SVG charts shown in
//! `docs/BENCHMARKS.md`. Not part of the test suite.

mod elector;
mod etcd;
mod load;
mod proxy;
mod report;
mod stats;
mod svg;
mod sys;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::Signal;
use serde_json::{json, Map, Value};

use elector::Cluster;
use stats::Summary;

const SECTIONS: &[&str] = &[
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

#[derive(Parser, Debug, Clone)]
#[command(about = "raft-elector benchmark (see docs/BENCHMARKS.md)")]
struct Args {
    /// The raft-elector binary (default: raft-elector next to this benchmark's binary).
    #[arg(long)]
    exe: Option<PathBuf>,
    /// Where results.json, results.md and the charts go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bench"))]
    out: PathBuf,
    /// Trials per failover / hand-off / cold start / partition measurement.
    #[arg(long, default_value_t = 30)]
    trials: usize,
    /// Concurrent `etcdctl elect` failovers (each waits for a 60 s session TTL).
    #[arg(long, default_value_t = 20)]
    elect_trials: usize,
    /// Elections for the disk measurement.
    #[arg(long, default_value_t = 10_000)]
    elections: u64,
    /// Upper bound on the disk measurement.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    elections_deadline: Duration,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 5)]
    wrk_secs: u32,
    /// wrk runs per configuration and target (alternating targets).
    #[arg(long, default_value_t = 3)]
    wrk_reps: u32,
    /// Seconds of idle CPU measurement.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
    /// Docker image whose size to report.
    #[arg(long)]
    image: Option<String>,
    /// Small trial counts for a smoke run (3 trials, 300 elections, 1 s wrk runs, no
    /// `etcdctl elect` unless named in --only).
    #[arg(long)]
    quick: bool,
    /// Comma-separated sections to run (default: all): failover, handoff, coldstart,
    /// partition, api, footprint, disk, etcd, etcd-elect. Results of other sections already
    /// in results.json are kept.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Before starting, wait (bounded by --wait-quiet) until the 1-minute load average is at
    /// most this.
    #[arg(long, default_value_t = 0.5)]
    max_load: f64,
    /// Only rewrite results.md and the charts from the existing results.json.
    #[arg(long)]
    report_only: bool,
    /// How long at most to wait for a quiet machine (0: do not wait).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    wait_quiet: Duration,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("bare-axum") {
        let addr: SocketAddr = argv
            .get(2)
            .and_then(|a| a.parse().ok())
            .expect("bare-axum ADDR [WORKERS]");
        let workers = argv.get(3).and_then(|w| w.parse().ok()).unwrap_or(0);
        if let Err(e) = load::serve_bare(addr, workers) {
            eprintln!("bare-axum: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut args = Args::parse();
    if args.quick {
        args.trials = args.trials.min(3);
        args.elect_trials = args.elect_trials.min(2);
        args.elections = args.elections.min(300);
        args.wrk_secs = 1;
        args.wrk_reps = 1;
        args.idle_secs = args.idle_secs.min(5);
    }
    for s in &args.only {
        if !SECTIONS.contains(&s.as_str()) {
            eprintln!(
                "bench: unknown section {s:?}; known: {}",
                SECTIONS.join(", ")
            );
            std::process::exit(2);
        }
    }
    // One thread: the bench's own polling and proxies stay off the second core as much as
    // possible, and every child is forked from the main thread (so PR_SET_PDEATHSIG holds).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn exe_path(args: &Args) -> Result<PathBuf, String> {
    let exe = match &args.exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .map(|d| d.join("raft-elector"))
            .ok_or("cannot locate raft-elector")?,
    };
    if !exe.is_file() {
        return Err(format!(
            "{} not found: build it first (cargo build --release) or pass --exe",
            exe.display()
        ));
    }
    Ok(exe)
}

/// The default heartbeat and election timeouts (ms) as the binary under test states them in
/// its `--help` (`[default: 50ms]` under each option); null where it does not say.
fn default_timings(exe: &Path) -> [Value; 3] {
    let help = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    [
        "--heartbeat",
        "--election-timeout-min",
        "--election-timeout-max",
    ]
    .map(|flag| match parse_default_ms(&help, flag) {
        Some(v) if v.fract() == 0.0 => json!(v as u64),
        Some(v) => json!(v),
        None => Value::Null,
    })
}

/// The `[default: ...]` of `flag` in clap's long help, in milliseconds. The binary parses
/// its durations with humantime, so the same parser reads its defaults back.
fn parse_default_ms(help: &str, flag: &str) -> Option<f64> {
    let start = help.find(&format!("{flag} "))?;
    let rest = &help[start..];
    // The option's own block ends where the next option starts.
    let block = &rest[..rest[2..].find("\n      -").map_or(rest.len(), |i| i + 2)];
    let d = block.split("[default: ").nth(1)?.split(']').next()?.trim();
    let d = humantime::parse_duration(d).ok()?;
    Some(d.as_nanos() as f64 / 1e6)
}

fn wanted(args: &Args, section: &str) -> bool {
    if args.only.is_empty() {
        // etcdctl elect waits a minute per trial: not in a quick run unless asked for.
        !(args.quick && section == "etcd-elect")
    } else {
        args.only.iter().any(|s| s == section)
    }
}

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

async fn wait_quiet(args: &Args) -> Value {
    let started = Instant::now();
    let deadline = started + args.wait_quiet;
    let mut samples = Vec::new();
    loop {
        let l = sys::loadavg()[0];
        samples.push(l);
        if l <= args.max_load || Instant::now() >= deadline {
            break;
        }
        eprintln!(
            "bench: load average {l:.2} > {:.2}; waiting (up to {:?} more)",
            args.max_load,
            deadline.saturating_duration_since(Instant::now())
        );
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    json!({
        "max_load": args.max_load,
        "waited_s": started.elapsed().as_secs(),
        "quiet": samples.last().is_some_and(|&l| l <= args.max_load),
        "load_samples": samples,
    })
}

async fn run(args: Args) -> Result<(), String> {
    if args.report_only {
        let path = args.out.join("results.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let results: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        return report::write_all(&args.out, &results);
    }
    let exe = exe_path(&args)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let results_path = args.out.join("results.json");
    let mut results: Map<String, Value> = if args.only.is_empty() {
        Map::new()
    } else {
        std::fs::read_to_string(&results_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    };
    let quiet = wait_quiet(&args).await;
    let started = Instant::now();
    results.insert("date".into(), json!(sys::utc_now()));
    results.insert("machine".into(), sys::machine());
    results.insert("quiet_wait".into(), quiet);
    results.insert("load_at_start".into(), sys::load_json());
    let defaults = default_timings(&exe);
    results.insert(
        "settings".into(),
        json!({
            "heartbeat_ms": defaults[0], "election_timeout_min_ms": defaults[1],
            "election_timeout_max_ms": defaults[2], "defaults_from": "raft-elector --help",
            "trials": args.trials, "elect_trials": args.elect_trials, "quick": args.quick,
            "poll_interval_ms": 5,
        }),
    );
    let mut sections: Map<String, Value> = results
        .get("sections")
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();

    for name in SECTIONS {
        if !wanted(&args, name) {
            continue;
        }
        eprintln!("bench: == {name} ==");
        let load_before = sys::load_json();
        let t = Instant::now();
        let value = match *name {
            "failover" => failovers(&exe, &args, false).await,
            "handoff" => failovers(&exe, &args, true).await,
            "coldstart" => cold_starts(&exe, &args).await,
            "partition" => partitions(&exe, &args).await,
            "api" => api(&exe, &args).await,
            "footprint" => footprint(&exe, &args).await,
            "disk" => disk(&exe, &args).await,
            "etcd" => etcd_failovers(&args).await,
            "etcd-elect" => etcd_elect(&args).await,
            _ => unreachable!(),
        };
        let mut value = value.unwrap_or_else(|e| {
            eprintln!("bench: {name} failed: {e}");
            json!({ "error": e })
        });
        if let Some(obj) = value.as_object_mut() {
            obj.insert("load_before".into(), load_before);
            obj.insert("load_after".into(), sys::load_json());
            obj.insert("seconds".into(), json!(t.elapsed().as_secs()));
            obj.insert("date".into(), json!(sys::utc_now()));
            // A run with --only keeps the other sections: each says what it measured.
            let commit = results
                .get("machine")
                .map_or(Value::Null, |m| m["commit"].clone());
            obj.insert("commit".into(), commit);
        }
        sections.insert(name.to_string(), value);
        // Save after every section: a long run that fails late keeps what it measured.
        results.insert("sections".into(), Value::Object(sections.clone()));
        write_json(&results_path, &results)?;
    }
    results.insert("load_at_end".into(), sys::load_json());
    results.insert("run_seconds".into(), json!(started.elapsed().as_secs()));
    results.insert("sections".into(), Value::Object(sections));
    write_json(&results_path, &results)?;
    let results = Value::Object(results);
    report::write_all(&args.out, &results)?;
    eprintln!(
        "bench: wrote {} and results.md + charts in {}",
        results_path.display(),
        args.out.display()
    );
    Ok(())
}

fn write_json(path: &Path, v: &Map<String, Value>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())? + "\n";
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

const SETTLE: Duration = Duration::from_millis(300);

/// Crash failover (SIGKILL) or graceful hand-off (SIGTERM) of the leader, 3 and 5 peers.
async fn failovers(exe: &Path, args: &Args, graceful: bool) -> Result<Value, String> {
    let mut out = Map::new();
    for n in [3usize, 5] {
        let mut c = Cluster::new(exe, n, &[], false).await;
        c.spawn_all();
        let all: Vec<usize> = (0..n).collect();
        c.agreed(&all, None, 0, Duration::from_secs(30))
            .await
            .ok_or_else(|| format!("{n} peers: no leader at start\n{}", c.log_tail(0, 20)))?;
        let mut times = Summary::default();
        let mut exits = Summary::default();
        let mut bumps = Vec::new();
        let mut exit_codes = Vec::new();
        for trial in 0..args.trials {
            tokio::time::sleep(SETTLE + jitter(Duration::from_millis(30))).await;
            let Some(cur) = c.agreed(&all, None, 0, Duration::from_secs(10)).await else {
                return Err(format!("{n} peers, trial {trial}: cluster did not settle"));
            };
            let l = cur.leader;
            let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != l).collect();
            let t0 = Instant::now();
            if graceful {
                c.signal(l, Signal::SIGTERM);
            } else {
                c.kill9(l);
            }
            let got = c
                .agreed(&survivors, Some(l), cur.term, Duration::from_secs(10))
                .await;
            match got {
                Some(a) => {
                    times.push(ms(a.at - t0));
                    bumps.push(a.term - cur.term);
                }
                None => times.failed += 1,
            }
            if graceful {
                let mut child = c.peers[l].child.take().expect("running");
                let status = sys::wait_exit(&mut child, Duration::from_secs(10)).await;
                exits.push(ms(t0.elapsed()));
                exit_codes.push(status.and_then(|s| s.code()).unwrap_or(-1));
            }
            eprintln!(
                "bench: {} {n} peers trial {trial}: {}",
                if graceful { "hand-off" } else { "crash" },
                got.map(|a| format!("{:.0} ms, term +{}", ms(a.at - t0), a.term - cur.term))
                    .unwrap_or_else(|| "no new leader within 10 s".into())
            );
            c.spawn(l);
            if c.agreed(&all, None, 0, Duration::from_secs(20))
                .await
                .is_none()
            {
                return Err(format!(
                    "{n} peers, trial {trial}: the restarted peer did not rejoin\n{}",
                    c.log_tail(l, 20)
                ));
            }
        }
        let mut v = times.to_json();
        v["term_increase"] = json!(bumps);
        if graceful {
            v["process_exit"] = exits.to_json();
            v["exit_codes"] = json!(exit_codes);
        }
        out.insert(n.to_string(), v);
    }
    Ok(Value::Object(out))
}

/// All peers started at once with empty data directories, until all name one leader.
async fn cold_starts(exe: &Path, args: &Args) -> Result<Value, String> {
    let mut out = Map::new();
    for n in [3usize, 5] {
        let mut times = Summary::default();
        for trial in 0..args.trials {
            let mut c = Cluster::new(exe, n, &[], false).await;
            let all: Vec<usize> = (0..n).collect();
            let t0 = Instant::now();
            c.spawn_all();
            match c.agreed(&all, None, 0, Duration::from_secs(20)).await {
                Some(a) => times.push(ms(a.at - t0)),
                None => times.failed += 1,
            }
            eprintln!(
                "bench: cold start {n} peers trial {trial}: {:?} ms",
                times.samples.last()
            );
        }
        out.insert(n.to_string(), times.to_json());
    }
    Ok(Value::Object(out))
}

/// A follower is cut off from every other peer, then the link heals: does the leader change?
async fn partitions(exe: &Path, args: &Args) -> Result<Value, String> {
    const ISOLATION: Duration = Duration::from_millis(1500);
    const OBSERVE: Duration = Duration::from_millis(2000);
    let mut out = Map::new();
    for n in [3usize, 5] {
        let mut c = Cluster::new(exe, n, &[], true).await;
        c.spawn_all();
        let all: Vec<usize> = (0..n).collect();
        c.agreed(&all, None, 0, Duration::from_secs(30))
            .await
            .ok_or_else(|| format!("{n} peers: no leader at start\n{}", c.log_tail(0, 20)))?;
        let mut rejoin = Summary::default();
        let mut disruption = Summary::default();
        let (mut changed, mut majority_changed_during_cut, mut term_bumps) = (0u32, 0u32, 0u64);
        let mut isolated_term_rise = Vec::new();
        let mut disruption_kinds = std::collections::BTreeMap::new();
        for trial in 0..args.trials {
            tokio::time::sleep(SETTLE + jitter(Duration::from_millis(30))).await;
            let Some(cur) = c.agreed(&all, None, 0, Duration::from_secs(10)).await else {
                return Err(format!("{n} peers, trial {trial}: cluster did not settle"));
            };
            let (l, term) = (cur.leader, cur.term);
            let f = (l + 1 + trial % (n - 1)) % n;
            let leader_name = c.peers[l].name.clone();
            let is_stable = |a: &Option<elector::Answer>| {
                a.as_ref()
                    .is_some_and(|a| a.name == leader_name && a.term == term)
            };
            // Cut.
            c.isolate(f, true);
            let cut_end = Instant::now() + ISOLATION;
            let mut f_max_term = term;
            let mut majority_moved = false;
            while Instant::now() < cut_end {
                let answers = c.ask_all(&all).await;
                for (&i, a) in all.iter().zip(&answers) {
                    if i == f {
                        if let Some(a) = a {
                            f_max_term = f_max_term.max(a.term);
                        }
                    } else if !is_stable(a) {
                        majority_moved = true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Heal, and watch every peer.
            c.isolate(f, false);
            let healed = Instant::now();
            let mut rejoined: Option<Duration> = None;
            let mut last_disruption: Option<Duration> = None;
            while healed.elapsed() < OBSERVE {
                let answers = c.ask_all(&all).await;
                let now = healed.elapsed();
                for (&i, a) in all.iter().zip(&answers) {
                    if i != f && !is_stable(a) {
                        last_disruption = Some(now);
                        // What a non-isolated peer said instead of the old leader and term.
                        let kind = match a {
                            None => "no answer",
                            Some(a) if a.name.is_empty() => "unknown",
                            Some(a) if a.term != term => "other term",
                            Some(_) => "other leader",
                        };
                        *disruption_kinds.entry(kind).or_insert(0u32) += 1;
                    }
                }
                if rejoined.is_none() && answers.iter().all(is_stable) {
                    rejoined = Some(now);
                }
                tokio::time::sleep(c.poll).await;
            }
            let fin = c.agreed(&all, None, 0, Duration::from_secs(10)).await;
            let moved = fin.is_none_or(|a| a.leader != l || a.term != term);
            if moved {
                changed += 1;
            }
            if majority_moved {
                majority_changed_during_cut += 1;
            }
            if let Some(a) = fin {
                term_bumps += a.term.saturating_sub(term);
            }
            isolated_term_rise.push(f_max_term - term);
            match rejoined {
                Some(d) => rejoin.push(ms(d)),
                None => rejoin.failed += 1,
            }
            disruption.push(last_disruption.map_or(0.0, ms));
            eprintln!(
                "bench: partition {n} peers trial {trial}: leader changed: {moved}, rejoined after {:?}, isolated peer's term +{}",
                rejoined.map(ms),
                f_max_term - term
            );
        }
        out.insert(
            n.to_string(),
            json!({
                "trials": args.trials,
                "isolation_ms": ms(ISOLATION),
                "leader_changed_after_heal": changed,
                "majority_lost_leader_during_cut": majority_changed_during_cut,
                "term_increase_total": term_bumps,
                "isolated_peer_term_rise": isolated_term_rise,
                "rejoin": rejoin.to_json(),
                "majority_disruption": disruption.to_json(),
                "majority_disruption_answers": disruption_kinds,
            }),
        );
    }
    Ok(Value::Object(out))
}

/// Spawns the bare axum handler (this benchmark's binary, re-executed) and waits until it answers.
async fn start_bare(workers: usize) -> Result<(std::process::Child, SocketAddr), String> {
    let addr = sys::free_addr();
    let mut cmd = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.arg("bare-axum")
        .arg(addr.to_string())
        .arg(workers.to_string())
        .stdin(std::process::Stdio::null());
    sys::die_with_parent(&mut cmd);
    let child = cmd.spawn().map_err(|e| format!("bare-axum: {e}"))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if client.get(format!("http://{addr}/")).send().await.is_ok() {
            return Ok((child, addr));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sys::kill9(child);
    Err("the bare axum server did not start".into())
}

fn avg(rs: &[load::WrkResult]) -> load::WrkResult {
    let n = rs.len().max(1) as f64;
    load::WrkResult {
        rps: rs.iter().map(|r| r.rps).sum::<f64>() / n,
        p50_ms: rs.iter().map(|r| r.p50_ms).sum::<f64>() / n,
        p90_ms: rs.iter().map(|r| r.p90_ms).sum::<f64>() / n,
        p99_ms: rs.iter().map(|r| r.p99_ms).sum::<f64>() / n,
        requests: rs.iter().map(|r| r.requests).sum(),
        non_2xx: rs.iter().map(|r| r.non_2xx).sum(),
        socket_errors: rs.iter().map(|r| r.socket_errors).sum(),
    }
}

/// wrk against the leader's (and a follower's) application API and the bare handler.
async fn api(exe: &Path, args: &Args) -> Result<Value, String> {
    let mut c = Cluster::new(exe, 3, &[], false).await;
    c.spawn_all();
    let all = [0, 1, 2];
    let cur = c
        .agreed(&all, None, 0, Duration::from_secs(30))
        .await
        .ok_or("no leader at start")?;
    let follower = (cur.leader + 1) % 3;
    // Same shape as raft-elector's application API (one thread, current-thread runtime), and
    // for reference the same handler on a 2-worker runtime.
    let (bare, bare_addr) = start_bare(0).await?;
    let (bare2, bare2_addr) = start_bare(2).await?;
    let mut configs = Vec::new();
    for path in ["/", "/v1/leader"] {
        for threads in [1u32, 2] {
            for conns in [64u32, 256] {
                configs.push((path, threads, conns, "leader", cur.leader));
            }
        }
        configs.push((path, 2, 256, "follower", follower));
    }
    let mut rows = Vec::new();
    for (k, &(path, threads, conns, role, peer)) in configs.iter().enumerate() {
        let elector_url = format!("http://{}{path}", c.peers[peer].http);
        let bare_url = format!("http://{bare_addr}{path}");
        let (mut b, mut e) = (Vec::new(), Vec::new());
        for rep in 0..args.wrk_reps {
            // Alternate the order, so that neither side always runs second.
            let bare_first = (k as u32 + rep) % 2 == 0;
            for side in [bare_first, !bare_first] {
                let url = if side { &bare_url } else { &elector_url };
                let r = load::wrk(url, threads, conns, args.wrk_secs).await?;
                if side {
                    b.push(r);
                } else {
                    e.push(r);
                }
            }
        }
        let b2 = load::wrk(
            &format!("http://{bare2_addr}{path}"),
            threads,
            conns,
            args.wrk_secs,
        )
        .await?;
        let (b, e) = (avg(&b), avg(&e));
        let ratio = e.rps / b.rps;
        eprintln!(
            "bench: api {path} t{threads} c{conns} ({role}): raft-elector {:.0} req/s, bare axum {:.0} req/s, ratio {ratio:.3}",
            e.rps, b.rps
        );
        rows.push(json!({
            "path": path, "threads": threads, "connections": conns, "target": role,
            "raft_elector": e.to_json(), "bare_axum": b.to_json(),
            "bare_axum_2_workers": b2.to_json(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
        }));
    }
    let leader_mem = c.pid(cur.leader).and_then(sys::rss_kib);
    sys::kill9(bare);
    sys::kill9(bare2);
    Ok(json!({
        "runs": rows,
        "wrk_secs": args.wrk_secs,
        "wrk_reps": args.wrk_reps,
        "leader_rss_kib_after_load": leader_mem.map(|m| m.0),
        "leader_peak_rss_kib_after_load": leader_mem.map(|m| m.1),
    }))
}

/// Idle RSS and CPU of 3 peers with default settings; binary and image size; loopback RTT.
async fn footprint(exe: &Path, args: &Args) -> Result<Value, String> {
    let mut c = Cluster::new(exe, 3, &[], false).await;
    c.spawn_all();
    let all = [0, 1, 2];
    let cur = c
        .agreed(&all, None, 0, Duration::from_secs(30))
        .await
        .ok_or("no leader at start")?;
    // Let start-up work finish, then measure with nobody asking anything.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let peers = idle_usage(&all.map(|i| c.pid(i)), args.idle_secs).await;
    let after = c
        .agreed(&all, None, 0, Duration::from_secs(5))
        .await
        .ok_or("no leader after the idle period")?;
    let peers: Vec<Value> = peers
        .into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            v["role"] = json!(if i == after.leader {
                "leader"
            } else {
                "follower"
            });
            v
        })
        .collect();
    let rtt = loopback_rtt(&c, cur.leader).await;
    drop(c);
    // What the idle cost depends on: the heartbeat rate, and peer authentication.
    let mut variants = Vec::new();
    for (label, flags) in [
        (
            "heartbeat 50 ms, election timeout 167-333 ms",
            &[
                "--heartbeat",
                "50ms",
                "--election-timeout-min",
                "167ms",
                "--election-timeout-max",
                "333ms",
            ][..],
        ),
        (
            "heartbeat 100 ms, election timeout 333-667 ms",
            &[
                "--heartbeat",
                "100ms",
                "--election-timeout-min",
                "333ms",
                "--election-timeout-max",
                "667ms",
            ][..],
        ),
        (
            "defaults with a peer secret (HMAC on every peer request)",
            &["--peer-secret", "bench-secret-0123456789abcdef"][..],
        ),
    ] {
        let mut c = Cluster::new(exe, 3, flags, false).await;
        c.spawn_all();
        let Some(cur) = c.agreed(&all, None, 0, Duration::from_secs(30)).await else {
            variants.push(json!({ "label": label, "error": "no leader" }));
            continue;
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut peers = idle_usage(&all.map(|i| c.pid(i)), args.idle_secs.div_ceil(2)).await;
        for (i, p) in peers.iter_mut().enumerate() {
            p["role"] = json!(if i == cur.leader {
                "leader"
            } else {
                "follower"
            });
        }
        variants.push(json!({ "label": label, "flags": flags.join(" "), "peers": peers }));
    }
    let binary = std::fs::metadata(exe).map(|m| m.len()).unwrap_or(0);
    let stripped = stripped_size(exe);
    let image = args.image.as_deref().and_then(image_size);
    Ok(json!({
        "peers": peers,
        "idle_secs": args.idle_secs,
        "variants": variants,
        "same_leader_throughout": after.leader == cur.leader && after.term == cur.term,
        "loopback_http_rtt_ms": stats::round3(rtt),
        "binary_bytes": binary,
        "binary_stripped_bytes": stripped,
        "image": args.image,
        "image_bytes": image,
    }))
}

/// RSS and CPU share of processes over an idle period.
async fn idle_usage(pids: &[Option<u32>], secs: u64) -> Vec<Value> {
    let hz = sys::clock_ticks_per_sec();
    let t0: Vec<Option<u64>> = pids.iter().map(|p| p.and_then(sys::cpu_ticks)).collect();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = start.elapsed().as_secs_f64();
    pids.iter()
        .zip(t0)
        .map(|(p, t0)| {
            let t1 = p.and_then(sys::cpu_ticks);
            let cpu = match (t0, t1) {
                (Some(a), Some(b)) => (b - a) as f64 / hz / elapsed * 100.0,
                _ => f64::NAN,
            };
            let mem = p.and_then(sys::rss_kib);
            json!({
                "rss_kib": mem.map(|m| m.0),
                "peak_rss_kib": mem.map(|m| m.1),
                "cpu_percent_of_core": stats::round3(cpu),
            })
        })
        .collect()
}

/// Median of 200 sequential `GET /healthz` round trips on a kept-alive connection.
async fn loopback_rtt(c: &Cluster, i: usize) -> f64 {
    let url = format!("http://{}/healthz", c.peers[i].http);
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        if let Ok(r) = c.client.get(&url).send().await {
            let _ = r.bytes().await;
            samples.push(ms(t.elapsed()));
        }
    }
    samples.sort_by(f64::total_cmp);
    stats::median(&samples)
}

fn stripped_size(exe: &Path) -> Option<u64> {
    let dir = tempfile::tempdir().ok()?;
    let copy = dir.path().join("raft-elector");
    std::fs::copy(exe, &copy).ok()?;
    let ok = std::process::Command::new("strip")
        .arg(&copy)
        .status()
        .ok()?
        .success();
    ok.then(|| std::fs::metadata(&copy).ok().map(|m| m.len()))
        .flatten()
}

fn image_size(image: &str) -> Option<u64> {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", image])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Disk used by the data directories while elections are forced one after another.
async fn disk(exe: &Path, args: &Args) -> Result<Value, String> {
    // Fast timings so that 10 000 elections take minutes, not an hour: the disk use depends
    // on the number of elections (votes, blank entries, snapshots), not on the timings.
    let flags = [
        "--heartbeat",
        "5ms",
        "--election-timeout-min",
        "10ms",
        "--election-timeout-max",
        "20ms",
        // A hand-off that fails (the old leader won the next election itself) waits out the
        // whole budget; keep that short.
        "--shutdown-timeout",
        "1s",
    ];
    let mut c = Cluster::new(exe, 3, &flags, false).await;
    c.spawn_all();
    let all = [0usize, 1, 2];
    let cur = c
        .agreed(&all, None, 0, Duration::from_secs(30))
        .await
        .ok_or("no leader at start")?;
    let resign_client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let term0 = cur.term;
    let mut leader = cur.leader;
    let mut term = term0;
    let step = (args.elections / 20).max(1);
    let mut next = 0;
    let mut series = Vec::new();
    let mut resigns = 0u64;
    let mut failed_resigns = 0u64;
    let started = Instant::now();
    let deadline = started + args.elections_deadline;
    loop {
        let done = term - term0;
        if done >= next {
            let mut peers = Vec::new();
            for i in all {
                let (alloc, apparent) = sys::disk_usage(&c.peers[i].data_dir);
                peers.push(json!({
                    "allocated_bytes": alloc, "apparent_bytes": apparent,
                    "last_log_index": c.metric(i, "raft_elector_last_log_index").await,
                    "purged_index": c.metric(i, "raft_elector_purged_index").await,
                }));
            }
            eprintln!(
                "bench: disk after {done} elections ({:.0} s): {:?} KiB",
                started.elapsed().as_secs_f64(),
                peers
                    .iter()
                    .map(|p| p["allocated_bytes"].as_u64().unwrap_or(0) / 1024)
                    .collect::<Vec<_>>()
            );
            series.push(json!({ "elections": done, "seconds": started.elapsed().as_secs(), "peers": peers }));
            next += step;
        }
        if done >= args.elections || Instant::now() >= deadline {
            break;
        }
        let url = format!("http://{}/v1/resign", c.peers[leader].http);
        let answer: Option<Value> = match resign_client.post(url).send().await {
            Ok(r) if r.status().is_success() => r.json().await.ok(),
            _ => None,
        };
        resigns += 1;
        match answer.as_ref().and_then(|a| {
            let to = a["leader"].as_str()?;
            Some((
                c.peers.iter().position(|p| p.name == to)?,
                a["term"].as_u64()?,
            ))
        }) {
            Some((to, t)) => {
                leader = to;
                term = term.max(t);
                // openraft refuses every vote for election_timeout_max after an election; a
                // hand-off asked for inside that window makes the old leader step down and
                // can stall for the whole --shutdown-timeout (see docs/BENCHMARKS.md).
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            None => {
                failed_resigns += 1;
                // Not the leader any more, or no hand-over in time: find the leader again.
                if let Some(a) = c.agreed(&all, None, 0, Duration::from_secs(10)).await {
                    leader = a.leader;
                    term = term.max(a.term);
                }
            }
        }
    }
    let elections = term - term0;
    let index = |p: &Value| p["peers"][0]["last_log_index"].as_f64().unwrap_or(0.0);
    let leaders_elected = match (series.first(), series.last()) {
        (Some(a), Some(b)) => index(b) - index(a),
        _ => 0.0,
    };
    Ok(json!({
        "leaders_elected": leaders_elected as u64,
        "flags": flags.join(" "),
        "snapshot_logs": 100,
        "elections": elections,
        "resign_requests": resigns,
        "resign_requests_failed": failed_resigns,
        "elections_per_second": (elections as f64 / started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "series": series,
    }))
}

/// etcd, 3 members: SIGKILL of the leader with default timings and with raft-elector's.
async fn etcd_failovers(args: &Args) -> Result<Value, String> {
    let mut out = Map::new();
    for (label, hb, et) in [("default", 100u64, 1000u64), ("matched", 20, 100)] {
        let mut c = etcd::Cluster::new(3, hb, et);
        c.spawn_all();
        let all = [0usize, 1, 2];
        c.agreed(&all, 0, Duration::from_secs(30))
            .await
            .ok_or_else(|| format!("etcd ({label}): no leader at start\n{}", c.log_tail(0, 20)))?;
        let mut idle = Value::Null;
        if label == "default" {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let pids: Vec<Option<u32>> = all.iter().map(|&i| c.pid(i)).collect();
            idle = json!(idle_usage(&pids, args.idle_secs).await);
        }
        let mut times = Summary::default();
        let mut bumps = Vec::new();
        for trial in 0..args.trials {
            tokio::time::sleep(SETTLE + jitter(Duration::from_millis(hb))).await;
            let Some((l, term, _)) = c.agreed(&all, 0, Duration::from_secs(20)).await else {
                return Err(format!(
                    "etcd ({label}), trial {trial}: cluster did not settle"
                ));
            };
            let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != l).collect();
            let t0 = Instant::now();
            c.kill9(l);
            let got = c.agreed(&survivors, term, Duration::from_secs(30)).await;
            match got {
                Some((_, t, at)) => {
                    times.push(ms(at - t0));
                    bumps.push(t - term);
                }
                None => times.failed += 1,
            }
            eprintln!(
                "bench: etcd ({label}) trial {trial}: {:?}",
                got.map(|(_, _, at)| format!("{:.0} ms", ms(at - t0)))
            );
            c.spawn(l);
            if c.agreed(&all, 0, Duration::from_secs(30)).await.is_none() {
                return Err(format!(
                    "etcd ({label}), trial {trial}: the restarted member did not rejoin\n{}",
                    c.log_tail(l, 20)
                ));
            }
        }
        let mut v = times.to_json();
        v["heartbeat_ms"] = json!(hb);
        v["election_timeout_ms"] = json!(et);
        v["term_increase"] = json!(bumps);
        if !idle.is_null() {
            v["idle"] = idle;
        }
        out.insert(label.to_string(), v);
    }
    Ok(Value::Object(out))
}

/// `etcdctl elect`: the holder dies (SIGKILL), a waiting campaigner takes over once the
/// holder's session lease expires. Trials run concurrently (each takes up to a minute), with
/// kill times spread over the session's keep-alive period.
async fn etcd_elect(args: &Args) -> Result<Value, String> {
    let mut c = etcd::Cluster::new(3, 100, 1000);
    c.spawn_all();
    c.agreed(&[0, 1, 2], 0, Duration::from_secs(30))
        .await
        .ok_or("etcd: no leader at start")?;
    let endpoint = format!("http://{}", c.members[0].client);
    let n = args.elect_trials;
    let trials = (0..n).map(|k| {
        let endpoint = endpoint.clone();
        async move {
            // Spread the kills over 20 s, the keep-alive period of a 60 s session.
            let hold =
                Duration::from_secs(1) + Duration::from_secs(20).mul_f64(k as f64 / n as f64);
            etcd::elect_failover(
                &endpoint,
                &format!("bench-{k}"),
                hold,
                Duration::from_secs(120),
            )
            .await
        }
    });
    let results = futures::future::join_all(trials).await;
    let mut times = Summary::default();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => times.push(v),
            Err(e) => {
                times.failed += 1;
                errors.push(e);
            }
        }
    }
    eprintln!(
        "bench: etcdctl elect: median {:.0} ms, max {:.0} ms, {} failed",
        times.median(),
        times.max(),
        times.failed
    );
    let mut v = times.to_json();
    v["session_ttl_s"] = json!(60);
    v["errors"] = json!(errors);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::parse_default_ms;

    #[test]
    fn default_timings_from_clap_help() {
        let help = "Options:\n      --heartbeat <DURATION>\n          Interval between leader heartbeats\n          \n          [env: RAFT_ELECTOR_HEARTBEAT=]\n          [default: 50ms]\n\n      --election-timeout-min <DURATION>\n          Lower bound\n          [default: 0.1s]\n\n      --election-timeout-max <DURATION>\n          Upper bound; the lease is 3/4 of it\n\n      --log <FILTER>\n          [default: info]\n";
        assert_eq!(parse_default_ms(help, "--heartbeat"), Some(50.0));
        assert_eq!(
            parse_default_ms(help, "--election-timeout-min"),
            Some(100.0)
        );
        // No default of its own: the next option's must not be taken.
        assert_eq!(parse_default_ms(help, "--election-timeout-max"), None);
        assert_eq!(parse_default_ms(help, "--missing"), None);
    }
}
