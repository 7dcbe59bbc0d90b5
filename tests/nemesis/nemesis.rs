//! The nemesis: injects one fault at a time, holds it, repairs it, and records what it did.

use std::time::Duration;

use testkit::{FaultResult, Mode, Rng, Target};

use crate::client::Recorder;
use crate::history::{Clock, Fault, FaultKind, Held, Micros, Stop};
use crate::run::Plan;

/// How long faults are held, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Holds {
    /// A killed peer stays down this long before it is started again.
    pub down: (u64, u64),
    /// SIGSTOP to SIGCONT.
    pub pause: (u64, u64),
    /// Partitions and bridges.
    pub partition: (u64, u64),
    /// A slow peer.
    pub slow: (u64, u64),
    /// One-way delay of a slow peer.
    pub delay: (u64, u64),
}

impl Default for Holds {
    fn default() -> Self {
        Holds {
            down: (300, 3000),
            pause: (500, 5000),
            // Longer than the outage bound at times, so that a cluster that cannot recover
            // while a majority is healthy is caught.
            partition: (500, 6000),
            slow: (1000, 6000),
            // A round trip of up to 100 ms by default; NEMESIS_DELAY_MS=MIN-MAX (or one value)
            // overrides it, e.g. to show that a leader whose round trip exceeds the 180 ms
            // lease is replaced (docs/NEMESIS.md).
            delay: delay_from_env().unwrap_or((5, 50)),
        }
    }
}

/// NEMESIS_DELAY_MS as (min, max) milliseconds; a value that does not parse stops the run,
/// like the other NEMESIS_* variables, rather than silently falling back to the default.
fn delay_from_env() -> Option<(u64, u64)> {
    let v = std::env::var("NEMESIS_DELAY_MS").ok()?;
    let (a, b) = v.split_once('-').unwrap_or((&v, &v));
    let ms = |s: &str| -> u64 {
        s.trim().parse().unwrap_or_else(|_| {
            panic!("NEMESIS_DELAY_MS must be MIN-MAX or one value in ms, not {v:?}")
        })
    };
    Some((ms(a), ms(b)))
}

/// A schedule of `count` faults drawn from `kinds`, every kind about as often as the others.
pub fn schedule(kinds: &[FaultKind], count: usize, rng: &mut Rng) -> Vec<FaultKind> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut round = kinds.to_vec();
        rng.shuffle(&mut round);
        out.extend(round);
    }
    out.truncate(count);
    out
}

/// The peer that claims leadership with the highest term in the newest answers, waiting up to
/// two seconds for one.
pub async fn leader(rec: &Recorder) -> Option<usize> {
    for _ in 0..200 {
        let found = rec
            .latest()
            .iter()
            .flatten()
            .filter(|a| a.is_leader)
            .max_by_key(|a| a.term)
            .map(|a| a.peer);
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The leader if one is known, else a random peer; with a note for the record.
async fn leader_or_random(rec: &Recorder, n: usize, rng: &mut Rng) -> (usize, &'static str) {
    match leader(rec).await {
        Some(l) => (l, "leader"),
        None => (rng.below(n), "no leader known, random peer"),
    }
}

fn names<C: Target>(c: &C, peers: &[usize]) -> String {
    let all = c.names();
    let list: Vec<&str> = peers.iter().map(|&i| all[i].as_str()).collect();
    format!("{{{}}}", list.join(","))
}

/// Drop (silent) or Reject (reset), at even odds.
pub fn drop_or_reject(rng: &mut Rng) -> Mode {
    if rng.chance(1, 2) {
        Mode::Drop
    } else {
        Mode::Reject
    }
}

/// Cuts side `a` from side `b` (the mode, then the hold in `hold_ms`, drawn from `rng`), holds,
/// heals: when it began, how it was done and how long it lasted (ms).
async fn cut_for_a_while<C: Target>(
    c: &mut C,
    clock: Clock,
    rng: &mut Rng,
    hold_ms: (u64, u64),
    (a, b): (&[usize], &[usize]),
) -> FaultResult<(Micros, String, u128)> {
    let mode = drop_or_reject(rng);
    let d = rng.millis(hold_ms.0, hold_ms.1);
    let start = clock.now();
    let how = c.cut(a, b, mode).await?;
    tokio::time::sleep(d).await;
    c.heal().await?;
    Ok((start, how, d.as_millis()))
}

/// Half of the time the leader (or a random peer if none is known), else any peer.
async fn leader_or_any(rec: &Recorder, n: usize, rng: &mut Rng) -> (usize, &'static str) {
    if rng.chance(1, 2) {
        leader_or_random(rec, n, rng).await
    } else {
        (rng.below(n), "random peer")
    }
}

/// One fault as it was made: the record, and the peers it stopped with SIGTERM.
pub struct Injected {
    pub fault: Fault,
    pub stops: Vec<Stop>,
}

/// The ends of the peers stopped with SIGTERM at `at`, for the record.
fn stops(exits: Vec<testkit::Exit>, at: Micros, why: &str) -> Vec<Stop> {
    exits
        .into_iter()
        .map(|exit| Stop {
            at,
            why: why.to_string(),
            exit,
        })
        .collect()
}

/// Injects one fault of `kind`, holds it, repairs it; returns the record. `Err` when the
/// target could not make or repair the fault (the command and why).
pub async fn inject<C: Target>(
    kind: FaultKind,
    c: &mut C,
    rec: &Recorder,
    rng: &mut Rng,
    plan: &Plan,
) -> FaultResult<Injected> {
    if kind == FaultKind::Scale {
        return crate::scale::inject(c, rec, rng, plan).await;
    }
    if kind.membership() {
        return crate::changes::inject(kind, c, rec, rng, plan).await;
    }
    // The first cluster; the spare peers (beyond it) are for the membership faults.
    let n = plan.peers;
    let name = c.names();
    let clock = rec.clock;
    let holds = &plan.holds;
    let exit_within = Duration::from_micros(plan.rules.shutdown_bound);
    let hold = |r: (u64, u64), rng: &mut Rng| rng.millis(r.0, r.1);
    let mut majority_healthy = true;
    let mut held = Vec::new();
    let mut stopped = Vec::new();
    let (start, detail) = match kind {
        FaultKind::KillLeader | FaultKind::KillRandom => {
            let (t, why) = if kind == FaultKind::KillLeader {
                leader_or_random(rec, n, rng).await
            } else {
                (rng.below(n), "random peer")
            };
            let down = hold(holds.down, rng);
            let start = clock.now();
            c.kill(t).await?;
            tokio::time::sleep(down).await;
            c.start(t).await;
            let ms = down.as_millis();
            (
                start,
                format!("{} ({why}) killed, restarted {ms} ms later", name[t]),
            )
        }
        FaultKind::PauseLeader => {
            let (t, why) = leader_or_random(rec, n, rng).await;
            let pause = hold(holds.pause, rng);
            let start = clock.now();
            held.push(Held::Paused(t));
            c.pause(t).await;
            tokio::time::sleep(pause).await;
            c.resume(t).await;
            let ms = pause.as_millis();
            (start, format!("{} ({why}) stopped for {ms} ms", name[t]))
        }
        FaultKind::IsolateLeader => {
            let (t, why) = leader_or_random(rec, n, rng).await;
            let mode = drop_or_reject(rng);
            let d = hold(holds.partition, rng);
            let start = clock.now();
            held.push(Held::Cut(vec![t], (0..n).filter(|&j| j != t).collect()));
            let how = c.isolate(t, mode).await?;
            tokio::time::sleep(d).await;
            c.heal().await?;
            let ms = d.as_millis();
            (
                start,
                format!("{} ({why}) isolated ({how}) for {ms} ms", name[t]),
            )
        }
        FaultKind::Split => {
            let mut all: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut all);
            let (minority, majority) = all.split_at((n - 1) / 2);
            let lead = leader(rec).await;
            let sides = (minority, majority);
            let (start, how, ms) = cut_for_a_while(c, clock, rng, holds.partition, sides).await?;
            held.push(Held::Cut(minority.to_vec(), majority.to_vec()));
            let side = match lead {
                Some(l) if minority.contains(&l) => "leader in the minority",
                Some(_) => "leader in the majority",
                None => "no leader known",
            };
            (
                start,
                format!(
                    "{}/{} split {} | {} ({how}, {side}) for {} ms",
                    majority.len(),
                    minority.len(),
                    names(c, majority),
                    names(c, minority),
                    ms
                ),
            )
        }
        FaultKind::Bridge => {
            let mut all: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut all);
            let (bridge, rest) = (all[0], &all[1..]);
            let (left, right) = rest.split_at(rest.len() / 2);
            let (start, how, ms) =
                cut_for_a_while(c, clock, rng, holds.partition, (left, right)).await?;
            held.push(Held::Cut(left.to_vec(), right.to_vec()));
            (
                start,
                format!(
                    "{} | {} | {} bridged by {} ({how}) for {} ms",
                    names(c, left),
                    names(c, &[bridge]),
                    names(c, right),
                    name[bridge],
                    ms
                ),
            )
        }
        FaultKind::Restart => {
            let (t, why) = leader_or_any(rec, n, rng).await;
            let gap = rng.millis(0, 1000);
            let start = clock.now();
            let exit = c.terminate(t, exit_within).await;
            let how = exit.how.clone();
            stopped = stops(vec![exit], start, "restart");
            tokio::time::sleep(gap).await;
            c.start(t).await;
            let ms = gap.as_millis();
            (
                start,
                format!(
                    "{} ({why}) stopped with SIGTERM ({how}), started {ms} ms later",
                    name[t]
                ),
            )
        }
        FaultKind::RestartAll => {
            majority_healthy = false;
            let graceful = rng.chance(1, 2);
            let down = hold(holds.down, rng);
            let start = clock.now();
            if graceful {
                let exits = c.terminate_all(exit_within).await;
                stopped = stops(exits, start, "restart all");
            } else {
                for i in 0..n {
                    c.kill(i).await?;
                }
            }
            tokio::time::sleep(down).await;
            for i in 0..n {
                c.start(i).await;
            }
            let how = if graceful {
                "stopped with SIGTERM"
            } else {
                "killed"
            };
            let ms = down.as_millis();
            (
                start,
                format!("all peers {how}, started again {ms} ms later"),
            )
        }
        FaultKind::SlowPeer => {
            let (t, why) = leader_or_any(rec, n, rng).await;
            let delay = hold(holds.delay, rng);
            let d = hold(holds.slow, rng);
            let start = clock.now();
            let micros = delay.as_micros() as Micros;
            held.push(Held::Slowed {
                peer: t,
                delay: micros,
            });
            c.slow(t, delay).await?;
            tokio::time::sleep(d).await;
            c.heal().await?;
            (
                start,
                format!(
                    "{} ({why}) delayed by {} ms each way for {} ms",
                    name[t],
                    delay.as_millis(),
                    d.as_millis()
                ),
            )
        }
        _ => unreachable!("{kind} is a membership fault"),
    };
    let fault = Fault {
        kind,
        detail,
        start,
        healed: clock.now(),
        majority_healthy,
        held,
    };
    Ok(Injected {
        fault,
        stops: stopped,
    })
}
