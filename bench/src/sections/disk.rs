//! Disk use of the data directories while elections are forced one after another.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use testkit::Ask;

use super::started;
use crate::cli::Args;
use crate::sys;

/// Disk used by the data directories while elections are forced one after another.
pub(super) async fn disk(exe: &Path, args: &Args) -> Result<Value, String> {
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
    let (c, cur) = started(exe, 3, &flags, false).await?;
    let all = [0usize, 1, 2];
    let resign_client = testkit::http::client(Duration::from_secs(10));
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
                let (alloc, apparent) = sys::disk_usage(c.data_dir(i));
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
                if let Some(a) = c.agreed(&all, Duration::from_secs(10)).await {
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
