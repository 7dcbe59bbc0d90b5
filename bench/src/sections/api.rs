//! Application API throughput: wrk against raft-elector and against a bare axum handler.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use testkit::procs::Procs;
use testkit::{free_addr, http};

use super::started;
use crate::cli::Args;
use crate::{load, sys};

/// The bare axum handler (this benchmark's binary, re-executed) with `workers` workers (0:
/// one thread, as raft-elector's API), started and answering; it dies with the returned set.
async fn start_bare(workers: usize) -> Result<(Procs, SocketAddr), String> {
    let addr = free_addr();
    let mut bare = Procs::new("raft-elector-bench-bare-", vec!["bare-axum".into()]);
    bare.die_with_parent = true;
    let mut cmd = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.arg("bare-axum")
        .arg(addr.to_string())
        .arg(workers.to_string());
    bare.spawn(0, cmd);
    let client = http::client(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if http::get(&client, addr, "/").await.is_some() {
            return Ok((bare, addr));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!(
        "the bare axum server did not start:\n{}",
        bare.log_tail(0, 20)
    ))
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
pub(super) async fn api(exe: &Path, args: &Args) -> Result<Value, String> {
    let (c, cur) = started(exe, 3, &[], false).await?;
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
    drop((bare, bare2));
    Ok(json!({
        "runs": rows,
        "wrk_secs": args.wrk_secs,
        "wrk_reps": args.wrk_reps,
        "leader_rss_kib_after_load": leader_mem.map(|m| m.0),
        "leader_peak_rss_kib_after_load": leader_mem.map(|m| m.1),
    }))
}
