//! Crash failover (SIGKILL) and graceful hand-off (SIGTERM) of the leader.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};
use testkit::{Ask, Rng};

use super::{ms, started, stop_leader, SETTLE};
use crate::cli::Args;
use crate::stats::Summary;

/// Crash failover (SIGKILL) or graceful hand-off (SIGTERM) of the leader, 3 and 5 peers at
/// the defaults; crash failover also with 3 peers at the slower timings whose idle cost the
/// footprint section reports, so that the trade-off between the two is measured in one run.
pub(super) async fn failovers(exe: &Path, args: &Args, graceful: bool) -> Result<Value, String> {
    let mut out = Map::new();
    let mut rng = Rng::fresh();
    for n in [3usize, 5] {
        let v = trials(exe, args, n, &[], graceful, &mut rng).await?;
        out.insert(n.to_string(), v);
    }
    if !graceful {
        for (key, flags) in SLOWER {
            let mut v = trials(exe, args, 3, flags, graceful, &mut rng).await?;
            v["flags"] = json!(flags.join(" "));
            out.insert(key.to_string(), v);
        }
    }
    Ok(Value::Object(out))
}

/// Slower timings, whose idle cost the footprint section measures and whose crash failover
/// this one does: the key in the results, the flags.
pub(super) const SLOWER: [(&str, &[&str]); 2] = [
    (
        "3 at heartbeat 50 ms",
        &[
            "--heartbeat",
            "50ms",
            "--election-timeout-min",
            "167ms",
            "--election-timeout-max",
            "333ms",
        ],
    ),
    (
        "3 at heartbeat 100 ms",
        &[
            "--heartbeat",
            "100ms",
            "--election-timeout-min",
            "333ms",
            "--election-timeout-max",
            "667ms",
        ],
    ),
];

/// `args.trials` crashes (or hand-offs) of the leader of an `n`-peer cluster started with
/// `flags`: the times until the survivors agreed on a new leader, and the term increases.
async fn trials(
    exe: &Path,
    args: &Args,
    n: usize,
    flags: &[&str],
    graceful: bool,
    rng: &mut Rng,
) -> Result<Value, String> {
    let (mut c, _) = started(exe, n, flags, false).await?;
    let all = c.all();
    let mut times = Summary::default();
    let mut exits = Summary::default();
    let mut bumps = Vec::new();
    let mut exit_codes = Vec::new();
    for trial in 0..args.trials {
        tokio::time::sleep(SETTLE + rng.up_to(Duration::from_millis(30))).await;
        let Some(stopped) = stop_leader(&mut c, graceful).await else {
            return Err(format!("{n} peers, trial {trial}: cluster did not settle"));
        };
        let l = stopped.before.leader;
        stopped.record(&mut times, &mut bumps);
        if graceful {
            let status = c.wait_exit(l, Duration::from_secs(10)).await;
            exits.push(ms(stopped.t0.elapsed()));
            exit_codes.push(status.and_then(|s| s.code()).unwrap_or(-1));
        }
        eprintln!(
            "bench: {} {n} peers trial {trial}: {}",
            if graceful { "hand-off" } else { "crash" },
            stopped.outcome()
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
    Ok(v)
}
