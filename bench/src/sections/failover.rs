//! Crash failover (SIGKILL) and graceful hand-off (SIGTERM) of the leader.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Map, Value};
use testkit::{Ask, Rng};

use super::{ms, started, SETTLE};
use crate::cli::Args;
use crate::stats::Summary;

/// Crash failover (SIGKILL) or graceful hand-off (SIGTERM) of the leader, 3 and 5 peers.
pub(super) async fn failovers(exe: &Path, args: &Args, graceful: bool) -> Result<Value, String> {
    let mut out = Map::new();
    let mut rng = Rng::fresh();
    for n in [3usize, 5] {
        let (mut c, _) = started(exe, n, &[], false).await?;
        let all = c.all();
        let mut times = Summary::default();
        let mut exits = Summary::default();
        let mut bumps = Vec::new();
        let mut exit_codes = Vec::new();
        for trial in 0..args.trials {
            tokio::time::sleep(SETTLE + rng.up_to(Duration::from_millis(30))).await;
            let Some(cur) = c.agreed(&all, Duration::from_secs(10)).await else {
                return Err(format!("{n} peers, trial {trial}: cluster did not settle"));
            };
            let l = cur.leader;
            let survivors = c.all_but(l);
            let t0 = Instant::now();
            if graceful {
                c.signal(l, Signal::SIGTERM);
            } else {
                c.kill(l);
            }
            let got = c
                .agreed_where(&survivors, Duration::from_secs(10), |leader, term| {
                    leader != l && term > cur.term
                })
                .await
                .ok();
            match got {
                Some(a) => {
                    times.push(ms(a.at - t0));
                    bumps.push(a.term - cur.term);
                }
                None => times.failed += 1,
            }
            if graceful {
                let status = c.wait_exit(l, Duration::from_secs(10)).await;
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
            if c.agreed(&all, Duration::from_secs(20)).await.is_none() {
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
