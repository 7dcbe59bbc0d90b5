//! etcd measured the same way: crash failover of its leader, and `etcdctl elect`.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use testkit::Rng;

use super::footprint::idle_usage;
use super::{ms, SETTLE};
use crate::cli::Args;
use crate::etcd;
use crate::stats::Summary;

/// etcd, 3 members: SIGKILL of the leader with default timings and with raft-elector's.
pub(super) async fn etcd_failovers(args: &Args) -> Result<Value, String> {
    let mut out = Map::new();
    let mut rng = Rng::fresh();
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
            tokio::time::sleep(SETTLE + rng.up_to(Duration::from_millis(hb))).await;
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
pub(super) async fn etcd_elect(args: &Args) -> Result<Value, String> {
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
