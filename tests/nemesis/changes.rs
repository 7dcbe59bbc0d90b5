//! The membership faults of the nemesis, and the settling of the membership after every fault.
//!
//! The cluster has `plan.peers` members and `plan.spares` spare peers that are not members
//! until started (they join). Every membership fault ends with the same peers running as
//! before it, so that the other faults always find the first cluster:
//!
//! * **join**: a spare is started (it joins as a learner and is promoted), stopped with
//!   SIGTERM later (it leaves);
//! * **leave**: a member (the leader half of the time) is stopped with SIGTERM (it hands over
//!   and leaves), started again later (it joins again);
//! * **leave cut off**: the leaving member, or the leader, is cut off from the others first, so
//!   that the leave may not reach the leader (the peer must still exit in time);
//! * **kill-9 in join**, **kill-9 in leave**: the leader is killed right after a spare was
//!   started, or a member sent SIGTERM, and started again later.
//!
//! A leave that could not be committed (no leader reachable within the peer's shutdown budget)
//! leaves a stopped peer in the membership, by design; [`settle`] then starts that peer and
//! stops it again, as an operator would.

use std::time::{Duration, Instant};

use testkit::{Rng, Target};

use crate::client::Recorder;
use crate::history::{Fault, FaultKind, Held, MembersSample, Role, Stop};
use crate::nemesis::{drop_or_reject, leader, Injected};
use crate::run::Plan;

/// Whether every peer of the roster lists `peer` (as a voter while the roster is within the
/// voters' cap) or, with `listed` false, none lists it.
fn everywhere(rec: &Recorder, plan: &Plan, peer: usize, listed: bool) -> bool {
    let roster = rec.roster();
    let latest = rec.latest_members();
    let cap = roster.len() <= plan.rules.max_voters;
    roster.iter().all(|&p| match &latest[p] {
        Some(m) if listed => match m.role_of(peer) {
            Some(Role::Voter) => true,
            Some(Role::Learner) => !cap,
            None => false,
        },
        Some(m) => m.role_of(peer).is_none(),
        None => false,
    })
}

/// Waits up to `timeout` for `done`; how long after `since` it held.
pub async fn wait_for(
    since: Instant,
    timeout: Duration,
    done: impl Fn() -> bool,
) -> Option<Duration> {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return Some(since.elapsed());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn took(d: Option<Duration>, limit: Duration) -> String {
    match d {
        Some(d) => format!("after {} ms", d.as_millis()),
        None => format!("NOT within {} s", limit.as_secs()),
    }
}

/// How long to wait for a join or a leave to show everywhere, for the record.
const SHOW: Duration = Duration::from_secs(10);

/// The leader if known among the first cluster's members, else a random member.
async fn leader_or_member(rec: &Recorder, n: usize, rng: &mut Rng) -> (usize, &'static str) {
    match leader(rec).await.filter(|&l| l < n) {
        Some(l) => (l, "leader"),
        None => (rng.below(n), "no leader known, random member"),
    }
}

/// A member other than `not`.
fn other(n: usize, not: usize, rng: &mut Rng) -> usize {
    (not + 1 + rng.below(n - 1)) % n
}

/// Injects one membership fault, holds it, repairs it.
pub async fn inject<C: Target>(
    kind: FaultKind,
    c: &mut C,
    rec: &Recorder,
    rng: &mut Rng,
    plan: &Plan,
) -> testkit::FaultResult<Injected> {
    let n = plan.peers;
    let name = c.names();
    let clock = rec.clock;
    let holds = &plan.holds;
    let exit_within = Duration::from_micros(plan.rules.shutdown_bound);
    let spare = n + rng.below(plan.spares.max(1));
    let mut majority_healthy = true;
    let mut held = Vec::new();
    let mut stops = Vec::new();
    let start = clock.now();
    let t0 = Instant::now();
    let stop = |exit: testkit::Exit, at, why: &str| Stop {
        at,
        why: why.to_string(),
        exit,
    };
    let detail = match kind {
        FaultKind::Join | FaultKind::KillInJoin => {
            let s = spare;
            let mut killed = String::new();
            let victim = if kind == FaultKind::KillInJoin {
                majority_healthy = false;
                Some(leader_or_member(rec, n, rng).await)
            } else {
                None
            };
            rec.enrol(s, true);
            c.start(s).await;
            if let Some((l, why)) = victim {
                let delay = rng.millis(0, 600);
                let down = rng.millis(holds.down.0, holds.down.1);
                tokio::time::sleep(delay).await;
                c.kill(l).await?;
                tokio::time::sleep(down).await;
                c.start(l).await;
                killed = format!(
                    "; {} ({why}) killed {} ms after the start, restarted {} ms later",
                    name[l],
                    delay.as_millis(),
                    down.as_millis()
                );
            }
            let member = wait_for(t0, SHOW, || everywhere(rec, plan, s, true)).await;
            tokio::time::sleep(rng.millis(0, 2000)).await;
            let at = clock.now();
            let since = Instant::now();
            rec.enrol(s, false);
            let exit = c.terminate(s, exit_within).await;
            let how = exit.how.clone();
            stops.push(stop(exit, at, "a joined spare leaves"));
            let gone = wait_for(since, SHOW, || everywhere(rec, plan, s, false)).await;
            format!(
                "{} (spare) started: a member everywhere {}{killed}; stopped with SIGTERM ({how}), removed everywhere {}",
                name[s],
                took(member, SHOW),
                took(gone, SHOW)
            )
        }
        FaultKind::Leave => {
            let (m, why) = if rng.chance(1, 2) {
                leader_or_member(rec, n, rng).await
            } else {
                (rng.below(n), "random member")
            };
            let gap = rng.millis(holds.down.0, holds.down.1);
            rec.enrol(m, false);
            let exit = c.terminate(m, exit_within).await;
            let how = exit.how.clone();
            stops.push(stop(exit, start, "leave"));
            let gone = wait_for(t0, SHOW, || everywhere(rec, plan, m, false)).await;
            tokio::time::sleep(gap).await;
            rec.enrol(m, true);
            c.start(m).await;
            format!(
                "{} ({why}) stopped with SIGTERM ({how}), removed everywhere {}, started again {} ms later",
                name[m],
                took(gone, SHOW),
                gap.as_millis()
            )
        }
        FaultKind::LeaveCutOff => {
            let (l, lwhy) = leader_or_member(rec, n, rng).await;
            let cut_leader = rng.chance(1, 2);
            let (m, cut) = if cut_leader {
                majority_healthy = n - 2 > n / 2;
                (other(n, l, rng), l)
            } else if rng.chance(1, 2) {
                (l, l)
            } else {
                let m = rng.below(n);
                (m, m)
            };
            let others: Vec<usize> = (0..n).filter(|&j| j != cut).collect();
            let mode = drop_or_reject(rng);
            held.push(Held::Cut(vec![cut], others.clone()));
            let how_cut = c.cut(&[cut], &others, mode).await?;
            let before = rng.millis(0, 500);
            tokio::time::sleep(before).await;
            let at = clock.now();
            rec.enrol(m, false);
            let exit = c.terminate(m, exit_within).await;
            let how = exit.how.clone();
            stops.push(stop(exit, at, "leave while cut off"));
            tokio::time::sleep(rng.millis(0, 1500)).await;
            c.heal().await?;
            let gap = rng.millis(300, 2000);
            tokio::time::sleep(gap).await;
            rec.enrol(m, true);
            c.start(m).await;
            let who = if cut_leader {
                format!("the leader {} cut off ({how_cut})", name[cut])
            } else {
                format!(
                    "cut off ({how_cut}), {}",
                    if m == l { lwhy } else { "random member" }
                )
            };
            format!(
                "{} ({who}) stopped with SIGTERM {} ms into the cut ({how}); healed, started again {} ms later",
                name[m],
                before.as_millis(),
                gap.as_millis()
            )
        }
        FaultKind::KillInLeave => {
            majority_healthy = false;
            let (l, why) = leader_or_member(rec, n, rng).await;
            let m = other(n, l, rng);
            // A leave is committed some 50 ms after the SIGTERM on loopback: kill within it.
            let delay = rng.millis(0, 100);
            let down = rng.millis(holds.down.0, holds.down.1);
            let gap = rng.millis(300, 2000);
            rec.enrol(m, false);
            let since = Instant::now();
            c.signal_stop(m).await?;
            tokio::time::sleep(delay).await;
            c.kill(l).await?;
            let killed = Instant::now();
            let exit = c.wait_stopped(m, since, exit_within).await;
            let how = exit.how.clone();
            stops.push(stop(exit, start, "leave, leader killed"));
            tokio::time::sleep(down.saturating_sub(killed.elapsed())).await;
            c.start(l).await;
            let down_for = killed.elapsed();
            tokio::time::sleep(gap).await;
            rec.enrol(m, true);
            c.start(m).await;
            format!(
                "{} stopped with SIGTERM ({how}); {} ({why}) killed {} ms later, restarted after {} ms; {} started again {} ms later",
                name[m],
                name[l],
                delay.as_millis(),
                down_for.as_millis(),
                name[m],
                gap.as_millis()
            )
        }
        _ => unreachable!("{kind} is no membership fault"),
    };
    Ok(Injected {
        fault: Fault {
            kind,
            detail,
            start,
            healed: clock.now(),
            majority_healthy,
            held,
        },
        stops,
    })
}

/// Whether every peer of `roster` lists exactly the roster (all voters within the cap), as
/// rule 11 of the checker asks.
pub fn settled(latest: &[Option<MembersSample>], roster: &[usize], max_voters: usize) -> bool {
    let latest: Vec<Option<&MembersSample>> = latest.iter().map(Option::as_ref).collect();
    crate::membership::agreed(&latest, roster, max_voters)
}

/// What [`settle`] found and did.
pub struct Settled {
    /// How long until every member listed exactly the roster (`None`: not within the time).
    pub after: Option<Duration>,
    /// Peers still members after they were stopped, started and stopped again.
    pub repaired: Vec<String>,
    pub stops: Vec<Stop>,
}

/// Waits (up to `patience`, three times) until every peer of the roster lists exactly the
/// roster. A stopped peer still listed (its leave found no leader) is started and stopped
/// again between the attempts.
pub async fn settle<C: Target>(
    c: &mut C,
    rec: &Recorder,
    plan: &Plan,
    patience: Duration,
) -> Settled {
    let t0 = Instant::now();
    let exit_within = Duration::from_micros(plan.rules.shutdown_bound);
    let mut out = Settled {
        after: None,
        repaired: Vec::new(),
        stops: Vec::new(),
    };
    let cap = plan.rules.max_voters;
    let done = || settled(&rec.latest_members(), &rec.roster(), cap);
    for _ in 0..3 {
        out.after = wait_for(t0, patience, done).await;
        if out.after.is_some() {
            return out;
        }
        let roster = rec.roster();
        let latest = rec.latest_members();
        let stale: Vec<usize> = roster
            .iter()
            .filter_map(|&p| latest[p].as_ref())
            .flat_map(MembersSample::names)
            .filter(|p| *p < c.len() && !roster.contains(p))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for p in stale {
            rec.enrol(p, true);
            c.start(p).await;
            // Until it answers with a membership that lists it, then a moment for its join.
            let since = Instant::now();
            let up = wait_for(since, patience, || {
                rec.latest_members()[p]
                    .as_ref()
                    .is_some_and(|m| m.role_of(p).is_some())
            })
            .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let at = rec.clock.now();
            rec.enrol(p, false);
            let exit = c.terminate(p, exit_within).await;
            out.repaired.push(format!(
                "{} (up {}, {})",
                c.names()[p],
                took(up, patience),
                exit.how
            ));
            out.stops.push(Stop {
                at,
                why: "still a member after it was stopped: stopped again".into(),
                exit,
            });
        }
    }
    out
}
