//! Membership: how long a join and a leave take (3 → 4 → 3, 3 → 5 → 3, 5 → 1 at once), and
//! what 3, 5, 9 and 25 members cost at idle and how fast they fail over (sizes.rs).
//!
//! A spare is a peer outside the first cluster (`--peers` naming the first three and itself):
//! started, it joins; sent SIGTERM, it leaves (`--leave-on-shutdown`, on by default). Its data
//! directory is emptied before each start, so every trial measures a new member catching up
//! from nothing.

mod sizes;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};
use testkit::{agreement, Ask, Cluster, Members, Rng};

use super::{cluster, ms, started, SETTLE};
use crate::cli::Args;
use crate::stats::Summary;

/// The first cluster of the join and leave measurements.
const FIRST: [usize; 3] = [0, 1, 2];
/// Deadline of one join or leave (the shutdown timeout is 5 s).
const STEP: Duration = Duration::from_secs(20);
/// Pause between two rounds of `/v1/members` questions.
const POLL: Duration = Duration::from_millis(5);

/// Joins and leaves of spares, 5 → 1, and the cluster sizes.
pub(super) async fn membership(exe: &Path, args: &Args) -> Result<Value, String> {
    let trials = args.trials.clamp(1, 8);
    let few = args.trials.clamp(1, 3);
    let mut rng = Rng::fresh();
    Ok(json!({
        "trials": trials,
        "spare_data": "emptied before each start",
        "one_spare": spares(exe, 1, trials, &mut rng).await,
        "two_spares": spares(exe, 2, trials, &mut rng).await,
        "five_to_one": five_to_one(exe, few, &mut rng).await,
        "sizes": sizes::sizes(exe, args, few, &mut rng).await,
    }))
}

/// The names of the peers `of`, sorted as [`Members`] lists them.
fn names(c: &Cluster, of: &[usize]) -> Vec<String> {
    let mut v: Vec<String> = of.iter().map(|&i| c.peers[i].name.clone()).collect();
    v.sort();
    v
}

/// What the peers `of` list in `/v1/members`, asked at once.
async fn members_of(c: &Cluster, of: &[usize]) -> Vec<Option<Members>> {
    futures::future::join_all(of.iter().map(|&i| c.members(i))).await
}

/// Asks the peers `of` every [`POLL`] until each lists members that `ok` takes: when that was
/// seen; `None` at the deadline.
async fn listed(
    c: &Cluster,
    of: &[usize],
    timeout: Duration,
    ok: impl Fn(&Members) -> bool,
) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = members_of(c, of).await;
        let at = Instant::now();
        if seen.iter().all(|m| m.as_ref().is_some_and(&ok)) {
            return Some(at);
        }
        if at >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Reaps peer `i` if its process has exited: its exit code (-1 for a signal).
fn exited(c: &mut Cluster, i: usize) -> Option<i32> {
    let child = c.procs.slots[i].child.as_mut()?;
    let status = child.try_wait().ok().flatten()?;
    c.procs.slots[i].child = None;
    Some(status.code().unwrap_or(-1))
}

/// How a leave went, from the SIGTERM.
struct Left {
    /// Until the staying peers listed the membership without the leaving ones.
    listed: Option<Duration>,
    /// Each leaving process's exit: when, and its code; `None` if killed at the deadline.
    exits: Vec<Option<(Duration, i32)>>,
}

impl Left {
    /// When the last leaving process had exited, if all did.
    fn last_exit(&self) -> Option<Duration> {
        self.exits
            .iter()
            .map(|e| e.map(|e| e.0))
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max())
    }

    fn codes(&self) -> Vec<i32> {
        self.exits.iter().map(|e| e.map_or(-9, |e| e.1)).collect()
    }
}

/// SIGTERM to all of `leaving` at once, then polls until the peers `stay` list members that
/// `ok` takes (and, with `lead`, agree on a leader among themselves) and every leaving process
/// has exited; at the deadline the ones still running get kill -9.
async fn leave(
    c: &mut Cluster,
    leaving: &[usize],
    stay: &[usize],
    ok: impl Fn(&Members) -> bool,
    lead: bool,
) -> Left {
    let t0 = Instant::now();
    for &i in leaving {
        c.signal(i, Signal::SIGTERM);
    }
    let names = c.names();
    let mut exits = vec![None; leaving.len()];
    let mut listed = None;
    loop {
        for (k, &i) in leaving.iter().enumerate() {
            if exits[k].is_none() {
                exits[k] = exited(c, i).map(|code| (t0.elapsed(), code));
            }
        }
        if listed.is_none() {
            let seen = members_of(c, stay).await;
            let mut done = seen.iter().all(|m| m.as_ref().is_some_and(&ok));
            if done && lead {
                done = agreement(&names, stay, &c.ask_all(stay).await).is_some();
            }
            if done {
                listed = Some(t0.elapsed());
            }
        }
        let gone = exits.iter().all(Option::is_some);
        if (listed.is_some() && gone) || t0.elapsed() >= STEP {
            for (k, &i) in leaving.iter().enumerate() {
                if exits[k].is_none() {
                    c.kill(i);
                }
            }
            return Left { listed, exits };
        }
        tokio::time::sleep(POLL).await;
    }
}

/// "1234 ms", or what did not happen.
fn shown(d: Option<Duration>, missing: &str) -> String {
    d.map_or_else(|| missing.to_string(), |d| format!("{:.0} ms", ms(d)))
}

/// A settle pause with a random extra bit.
async fn settle(rng: &mut Rng) {
    tokio::time::sleep(SETTLE + rng.up_to(Duration::from_millis(30))).await;
}

/// `k` spares join a first cluster of 3 at once and leave it at once, `trials` times.
async fn spares(exe: &Path, k: usize, trials: usize, rng: &mut Rng) -> Value {
    let n = 3 + k;
    let mut c = cluster(exe, n, &[], false);
    c.first_cluster(&FIRST);
    let spare: Vec<usize> = (3..n).collect();
    for &s in &spare {
        c.join_later(s, &FIRST);
    }
    for i in FIRST {
        c.spawn(i);
    }
    let all: Vec<usize> = (0..n).collect();
    let (big, small) = (names(&c, &all), names(&c, &FIRST));
    let (mut join, mut left, mut exit) =
        (Summary::default(), Summary::default(), Summary::default());
    let mut codes = Vec::new();
    let mut error = None;
    for trial in 0..trials {
        settle(rng).await;
        let three = |m: &Members| m.voters == small && m.learners.is_empty();
        let calm = listed(&c, &FIRST, Duration::from_secs(10), three).await;
        if calm.is_none() || c.agreed(&FIRST, Duration::from_secs(10)).await.is_none() {
            error = Some(format!(
                "trial {trial}: the first three did not settle\n{}",
                c.log_tail(0, 20)
            ));
            break;
        }
        for &s in &spare {
            let _ = std::fs::remove_dir_all(c.data_dir(s));
        }
        let t0 = Instant::now();
        for &s in &spare {
            c.spawn(s);
        }
        let joined = listed(&c, &all, STEP, |m| m.voters == big)
            .await
            .map(|at| at - t0);
        match joined {
            Some(d) => join.push(ms(d)),
            None => join.failed += 1,
        }
        settle(rng).await;
        let l = leave(&mut c, &spare, &FIRST, three, false).await;
        match l.listed {
            Some(d) => left.push(ms(d)),
            None => left.failed += 1,
        }
        match l.last_exit() {
            Some(d) => exit.push(ms(d)),
            None => exit.failed += 1,
        }
        codes.extend(l.codes());
        eprintln!(
            "bench: membership 3 -> {n} -> 3 trial {trial}: join {}, leave {}, exit {} (codes {:?})",
            shown(joined, "not within 20 s"),
            shown(l.listed, "not within 20 s"),
            shown(l.last_exit(), "killed at 20 s"),
            l.codes()
        );
    }
    let mut v = json!({
        "join": join.to_json(),
        "leave": left.to_json(),
        "exit": exit.to_json(),
        "exit_codes": codes,
    });
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    v
}

/// A cluster of 5 stopped down to 1 at once (SIGTERM to 4, the leader among them), on a new
/// cluster each trial.
async fn five_to_one(exe: &Path, trials: usize, rng: &mut Rng) -> Value {
    let (mut alone, mut exit) = (Summary::default(), Summary::default());
    let mut codes = Vec::new();
    let mut error = None;
    let all: Vec<usize> = (0..5).collect();
    for trial in 0..trials {
        let c = started(exe, 5, &[], false).await;
        let Ok((mut c, _)) = c else {
            error = c.err();
            break;
        };
        let five = |m: &Members| m.voters.len() == 5;
        let calm = listed(&c, &all, Duration::from_secs(10), five).await;
        settle(rng).await;
        let Some(cur) = c
            .agreed(&all, Duration::from_secs(10))
            .await
            .filter(|_| calm.is_some())
        else {
            error = Some(format!("trial {trial}: 5 peers did not settle"));
            break;
        };
        let keep = (cur.leader + 1) % 5;
        let gone: Vec<usize> = c.all_but(keep);
        let me = names(&c, &[keep]);
        let only = |m: &Members| m.voters == me && m.learners.is_empty();
        let l = leave(&mut c, &gone, &[keep], only, true).await;
        match l.listed {
            Some(d) => alone.push(ms(d)),
            None => alone.failed += 1,
        }
        match l.last_exit() {
            Some(d) => exit.push(ms(d)),
            None => exit.failed += 1,
        }
        codes.extend(l.codes());
        eprintln!(
            "bench: membership 5 -> 1 trial {trial}: the survivor leads alone after {}, last exit {} (codes {:?})",
            shown(l.listed, "not within 20 s"),
            shown(l.last_exit(), "killed at 20 s"),
            l.codes()
        );
        if l.listed.is_none() {
            eprintln!("{}", c.log_tail(keep, 15));
        }
    }
    let mut v = json!({
        "alone": alone.to_json(),
        "exit": exit.to_json(),
        "exit_codes": codes,
    });
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    v
}
