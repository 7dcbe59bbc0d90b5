//! 3, 5, 9 and 25 members: a first cluster of 3, the others started at once to join it (beyond
//! `--max-voters`, 5 by default, they stay learners). How long until every member lists the
//! final membership and all agree on a leader, the idle CPU of the leader and of the others,
//! and crash failover of the leader.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use testkit::{Ask, Cluster, Members, Rng};

use super::{listed, settle, shown, FIRST};
use crate::cli::Args;
use crate::sections::footprint::idle_usage;
use crate::sections::{cluster, ms, stop_leader};
use crate::stats::{self, Summary};

/// Every size, `trials` crash failovers each.
pub(super) async fn sizes(exe: &Path, args: &Args, trials: usize, rng: &mut Rng) -> Value {
    let mut out = Map::new();
    for n in [3usize, 5, 9, 25] {
        out.insert(n.to_string(), size(exe, n, args, trials, rng).await);
    }
    Value::Object(out)
}

/// The mean of the finite values (NaN when there is none).
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// One cluster of `n` members.
async fn size(exe: &Path, n: usize, args: &Args, trials: usize, rng: &mut Rng) -> Value {
    let voters = n.min(5);
    let mut c = cluster(exe, n, &[], false);
    c.first_cluster(&FIRST);
    for i in 3..n {
        c.join_later(i, &FIRST);
    }
    for i in FIRST {
        c.spawn(i);
    }
    let all: Vec<usize> = (0..n).collect();
    let fail = |what: &str| json!({ "members": n, "error": format!("{n} members: {what}") });
    if c.agreed(&FIRST, Duration::from_secs(30)).await.is_none() {
        return fail("the first three elected no leader");
    }
    let t0 = Instant::now();
    for i in 3..n {
        c.spawn(i);
    }
    let shape = |m: &Members| m.voters.len() == voters && m.learners.len() == n - voters;
    if listed(&c, &all, Duration::from_secs(60), shape)
        .await
        .is_none()
    {
        return fail(&format!("not all listed {voters} voters within 60 s"));
    }
    let Some(first) = c.agreed(&all, Duration::from_secs(20)).await else {
        return fail("no leader agreed on by all");
    };
    let joined = (n > 3).then(|| first.at - t0);
    eprintln!(
        "bench: membership {n} members: all list {voters} voters and {} learners and agree on a leader {} after the joiners started",
        n - voters,
        shown(joined, "–")
    );
    // Let start-up work finish, then measure with nobody asking anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let secs = args.idle_secs.min(10);
    let pids: Vec<Option<u32>> = all.iter().map(|&i| c.pid(i)).collect();
    let mut usage = idle_usage(&pids, secs).await;
    let Some(cur) = c.agreed(&all, Duration::from_secs(10)).await else {
        return fail("no leader after the idle period");
    };
    let m = c.members(cur.leader).await.unwrap_or_default();
    let role = |i: usize| {
        let name = &c.peers[i].name;
        if i == cur.leader {
            "leader"
        } else if m.learners.contains(name) {
            "learner"
        } else {
            "voter"
        }
    };
    for (i, u) in usage.iter_mut().enumerate() {
        u["role"] = json!(role(i));
    }
    let cpu = |pick: &dyn Fn(usize) -> bool| {
        mean(
            all.iter()
                .filter(|&&i| pick(i))
                .map(|&i| usage[i]["cpu_percent_of_core"].as_f64().unwrap_or(f64::NAN)),
        )
    };
    let leader_cpu = cpu(&|i| i == cur.leader);
    let followers = cpu(&|i| i != cur.leader);
    let voter_followers = cpu(&|i| role(i) == "voter");
    let learners = cpu(&|i| role(i) == "learner");
    eprintln!(
        "bench: membership {n} members idle {secs} s: leader {leader_cpu:.2} % of a core, followers {followers:.2} % (voters {voter_followers:.2}, learners {learners:.2})"
    );
    let (failover, bumps, error) = crash_failovers(&mut c, n, trials, rng).await;
    let mut fo = failover.to_json();
    fo["term_increase"] = json!(bumps);
    let mut v = json!({
        "members": n,
        "voters": voters,
        "learners": n - voters,
        "joined_ms": joined.map(|d| stats::round(ms(d))),
        "idle_secs": secs,
        "same_leader_throughout": cur.leader == first.leader && cur.term == first.term,
        "leader_cpu_percent_of_core": stats::round3(leader_cpu),
        "followers_cpu_mean": stats::round3(followers),
        "voter_followers_cpu_mean": stats::round3(voter_followers),
        "learners_cpu_mean": stats::round3(learners),
        "leader_rss_kib": usage[cur.leader]["rss_kib"],
        "peers": usage,
        "failover": fo,
    });
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    v
}

/// kill -9 of the leader, until every other member agrees on a new one in a higher term; the
/// killed peer is restarted with its data before the next trial.
async fn crash_failovers(
    c: &mut Cluster,
    n: usize,
    trials: usize,
    rng: &mut Rng,
) -> (Summary, Vec<u64>, Option<String>) {
    let all = c.all();
    let mut times = Summary::default();
    let mut bumps = Vec::new();
    for trial in 0..trials {
        settle(rng).await;
        let Some(stopped) = stop_leader(c, false).await else {
            return (times, bumps, Some(format!("trial {trial}: did not settle")));
        };
        let l = stopped.before.leader;
        stopped.record(&mut times, &mut bumps);
        eprintln!(
            "bench: membership {n} members crash trial {trial}: {}",
            stopped.outcome()
        );
        c.spawn(l);
        if c.agreed(&all, Duration::from_secs(30)).await.is_none() {
            let e = format!("trial {trial}: the restarted peer did not rejoin");
            return (times, bumps, Some(e));
        }
    }
    (times, bumps, None)
}
