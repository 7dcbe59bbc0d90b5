//! The scripted scale fault: the cluster is scaled as a StatefulSet with Parallel pod
//! management is, `n -> n + spares -> n -> 1 -> n`: every spare started at once (they join),
//! the spares sent SIGTERM at the same moment (they leave), every member but one (the leader
//! among them) sent SIGTERM at the same moment, then those started again with their old data
//! (they join again). A majority of the members the nemesis means to have stays up and
//! connected throughout, so the checker's outage rule (no stretch without an agreed leader
//! longer than [`crate::checker::Rules::outage_bound`]) applies to every step; after every step
//! the membership must settle on the new roster ([`crate::history::History::steps`]).

use std::time::{Duration, Instant};

use testkit::{Rng, Target};

use crate::changes::{settled, took, wait_for};
use crate::client::Recorder;
use crate::history::{Fault, FaultKind, Stop};
use crate::nemesis::{leader, Injected};
use crate::run::Plan;

/// Sends SIGTERM to every peer of `peers` at the same moment (they leave) and waits for each
/// to exit: how each ended.
async fn stop_together<C: Target>(
    c: &mut C,
    rec: &Recorder,
    plan: &Plan,
    peers: &[usize],
    why: &str,
) -> testkit::FaultResult<Vec<Stop>> {
    let exit_within = Duration::from_micros(plan.rules.shutdown_bound);
    let at = rec.clock.now();
    let since = Instant::now();
    for &p in peers {
        rec.enrol(p, false);
        c.signal_stop(p).await?;
    }
    let mut stops = Vec::new();
    for &p in peers {
        let exit = c.wait_stopped(p, since, exit_within).await;
        stops.push(Stop {
            at,
            why: why.to_string(),
            exit,
        });
    }
    Ok(stops)
}

/// Marks the end of a step and waits until every peer of the roster lists exactly the roster:
/// how long that took, for the record (the checker judges it from the history).
async fn step(rec: &Recorder, plan: &Plan, since: Instant) -> String {
    rec.step();
    let bound = Duration::from_micros(plan.rules.members_bound);
    let cap = plan.rules.max_voters;
    let done = wait_for(since, bound, || {
        settled(&rec.latest_members(), &rec.roster(), cap)
    })
    .await;
    took(done, bound)
}

/// Injects one scale fault (needs spares) and returns when the first cluster runs again.
pub async fn inject<C: Target>(
    c: &mut C,
    rec: &Recorder,
    rng: &mut Rng,
    plan: &Plan,
) -> testkit::FaultResult<Injected> {
    let n = plan.peers;
    let all = n + plan.spares;
    let spares: Vec<usize> = (n..all).collect();
    let name = c.names();
    let start = rec.clock.now();
    let mut stops = Vec::new();
    let mut report = Vec::new();

    let t = Instant::now();
    for &s in &spares {
        rec.enrol(s, true);
        c.start(s).await;
    }
    report.push(format!("{n} -> {all} settled {}", step(rec, plan, t).await));

    let t = Instant::now();
    stops.extend(
        stop_together(
            c,
            rec,
            plan,
            &spares,
            "scale down: the spares leave at once",
        )
        .await?,
    );
    report.push(format!("{all} -> {n} settled {}", step(rec, plan, t).await));

    // Down to one: the leader goes, and the witness (which can never lead alone).
    let l = leader(rec).await;
    let keepers: Vec<usize> = (0..n)
        .filter(|p| Some(*p) != l && Some(*p) != plan.witness)
        .collect();
    let keep = keepers[rng.below(keepers.len())];
    let gone: Vec<usize> = (0..n).filter(|p| *p != keep).collect();
    let t = Instant::now();
    stops.extend(
        stop_together(
            c,
            rec,
            plan,
            &gone,
            "scale down to one: members leave at once",
        )
        .await?,
    );
    report.push(format!(
        "{n} -> 1 ({} stays; the leader {} left) settled {}",
        name[keep],
        l.map_or("unknown".to_string(), |l| name[l].clone()),
        step(rec, plan, t).await
    ));

    tokio::time::sleep(rng.millis(0, 1000)).await;
    let t = Instant::now();
    for &p in &gone {
        rec.enrol(p, true);
        c.start(p).await;
    }
    report.push(format!("1 -> {n} settled {}", step(rec, plan, t).await));

    Ok(Injected {
        fault: Fault {
            kind: FaultKind::Scale,
            detail: report.join("; "),
            start,
            healed: rec.clock.now(),
            majority_healthy: true,
            held: Vec::new(),
        },
        stops,
    })
}
