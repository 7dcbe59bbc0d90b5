//! `raft-elector while-leader` on every peer of a 3-peer cluster, each running a shell command
//! that logs its start and stop (wall-clock nanoseconds, one shared file) and keeps a
//! grandchild (`sleep`). Under kill -9, SIGSTOP and SIGTERM of leader peers: the command runs
//! on the leader's pod only, is stopped within the lease it last saw (plus a margin) when its
//! peer dies or freezes, two commands never run at once beyond the grace, and no grandchild
//! outlives a stop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use testkit::{Ask, Cluster};

use crate::{spec, EXE};

const GRACE: Duration = Duration::from_secs(2);

/// The command each `while-leader` runs.
const SCRIPT: &str = r#"
echo "start $ID $RAFT_ELECTOR_TERM $(date +%s%N)" >> "$DIR/log"
sleep 1000 &
echo "$!" > "$DIR/grandchild-$ID-$RAFT_ELECTOR_TERM"
trap 'echo "stop $ID $RAFT_ELECTOR_TERM $(date +%s%N)" >> "$DIR/log"; exit 0' TERM
wait
"#;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// One run of the command: on which peer, for which term, from when to when (ns).
#[derive(Debug, Clone)]
struct Run {
    peer: usize,
    term: u64,
    start: u128,
    stop: Option<u128>,
}

fn runs(dir: &Path) -> Vec<Run> {
    let text = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let mut by: BTreeMap<(usize, u64), Run> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [what, peer, term, at] = f[..] else {
            continue;
        };
        let (Ok(peer), Ok(term), Ok(at)) = (peer.parse(), term.parse(), at.parse::<u128>()) else {
            continue;
        };
        match what {
            "start" => {
                by.insert(
                    (peer, term),
                    Run {
                        peer,
                        term,
                        start: at,
                        stop: None,
                    },
                );
            }
            "stop" => {
                if let Some(r) = by.get_mut(&(peer, term)) {
                    r.stop = Some(at);
                }
            }
            _ => {}
        }
    }
    by.into_values().collect()
}

/// `while-leader` processes, one per peer; stopped with SIGTERM when dropped.
struct Supervisors {
    procs: Vec<Child>,
    dir: PathBuf,
}

impl Supervisors {
    fn start(c: &Cluster, dir: &Path) -> Supervisors {
        let procs = c
            .all()
            .into_iter()
            .map(|i| {
                let log = std::fs::File::create(dir.join(format!("while-leader-{i}.log")))
                    .expect("log file");
                Command::new(EXE)
                    .args(["while-leader", "--http", &c.peers[i].http.to_string()])
                    .args(["--grace", "2s", "--", "sh", "-c", SCRIPT])
                    .env("ID", i.to_string())
                    .env("DIR", dir)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("start while-leader")
            })
            .collect();
        Supervisors {
            procs,
            dir: dir.to_path_buf(),
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("while-leader-{i}.log"))).unwrap_or_default()
    }
}

impl Drop for Supervisors {
    fn drop(&mut self) {
        for p in &self.procs {
            let _ = kill(Pid::from_raw(p.id() as i32), Signal::SIGTERM);
        }
        for p in &mut self.procs {
            let _ = p.wait();
        }
    }
}

/// Waits until `check` holds on the runs; panics after `within` with them.
async fn until(dir: &Path, within: Duration, what: &str, check: impl Fn(&[Run]) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let r = runs(dir);
        if check(&r) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; runs: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The run of `peer` for `term`, once started.
fn running(r: &[Run], peer: usize, term: u64) -> bool {
    r.iter()
        .any(|x| x.peer == peer && x.term == term && x.stop.is_none())
}

fn grandchild_alive(dir: &Path, peer: usize, term: u64) -> bool {
    let pid = std::fs::read_to_string(dir.join(format!("grandchild-{peer}-{term}")))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    // A zombie (state Z in /proc/PID/stat, after the command's name in parentheses) is dead:
    // it only waits to be reaped by whoever inherited it.
    pid.is_some_and(|p| {
        std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            !state.is_some_and(|s| s.starts_with('Z') || s.starts_with('X'))
        })
    })
}

/// Whether the grandchild of `peer`'s run for `term` is gone within `within` (the group's
/// SIGTERM reaches it with its parent's, but it may take a moment to act on it).
async fn grandchild_gone(dir: &Path, peer: usize, term: u64, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while grandchild_alive(dir, peer, term) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// How long after `from_ns` the run of `peer` for `term` was stopped.
fn stopped_after(r: &[Run], peer: usize, term: u64, from_ns: u128) -> Option<Duration> {
    let stop = r.iter().find(|x| x.peer == peer && x.term == term)?.stop?;
    Some(Duration::from_nanos(stop.saturating_sub(from_ns) as u64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_follows_the_leader_through_kill_9_sigstop_and_sigterm_never_two_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = Cluster::start(spec(3));
    let (l1, t1) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    let sup = Supervisors::start(&c, dir.path());
    until(
        dir.path(),
        Duration::from_secs(5),
        "the leader's command starts",
        |r| running(r, l1, t1),
    )
    .await;
    // Only the leader's: the others stay idle while it leads.
    let r = runs(dir.path());
    assert_eq!(r.len(), 1, "commands on followers: {r:?}");

    // kill -9 of the leader peer: its command is stopped when its last lease runs out.
    let killed = now_ns();
    c.kill(l1);
    let (l2, t2) = c
        .new_leader(&c.all_but(l1), Duration::from_secs(5), t1)
        .await;
    until(
        dir.path(),
        Duration::from_secs(5),
        "the new leader's command starts",
        |r| running(r, l2, t2),
    )
    .await;
    let r = runs(dir.path());
    let after_kill = stopped_after(&r, l1, t1, killed).expect("the killed peer's command stopped");
    eprintln!("kill -9: the dead peer's command stopped {after_kill:?} after the kill");
    assert!(
        after_kill <= Duration::from_millis(1000),
        "the command outlived its peer's lease by far: {after_kill:?}\n{}",
        sup.log(l1)
    );
    assert!(
        grandchild_gone(dir.path(), l1, t1, Duration::from_secs(2)).await,
        "a grandchild survived the stop by 2 s"
    );
    c.spawn(l1);
    c.agreed_leader(&c.all(), Duration::from_secs(10)).await;

    // SIGSTOP of the leader peer: its while-leader (not paused) stops the command.
    let paused = now_ns();
    c.signal(l2, Signal::SIGSTOP);
    let (l3, t3) = c
        .new_leader(&c.all_but(l2), Duration::from_secs(5), t2)
        .await;
    until(
        dir.path(),
        Duration::from_secs(5),
        "the next leader's command starts",
        |r| running(r, l3, t3),
    )
    .await;
    let r = runs(dir.path());
    let after_pause = stopped_after(&r, l2, t2, paused).expect("the paused peer's command stopped");
    eprintln!("SIGSTOP: the frozen peer's command stopped {after_pause:?} after the pause");
    assert!(
        after_pause <= Duration::from_millis(1000),
        "the command outlived its frozen peer's lease by far: {after_pause:?}\n{}",
        sup.log(l2)
    );
    c.signal(l2, Signal::SIGCONT);
    c.agreed_leader(&c.all(), Duration::from_secs(10)).await;

    // SIGTERM of the leader peer: hand-off; the command moves with it.
    c.signal(l3, Signal::SIGTERM);
    let (l4, t4) = c
        .new_leader(&c.all_but(l3), Duration::from_secs(5), t3)
        .await;
    until(
        dir.path(),
        Duration::from_secs(5),
        "the command moves on hand-off",
        |r| running(r, l4, t4) && !running(r, l3, t3),
    )
    .await;

    // Never two commands at once (beyond the grace), across everything above.
    let r = runs(dir.path());
    let mut worst = 0i128;
    for a in &r {
        for b in &r {
            if a.peer == b.peer && a.term == b.term {
                continue;
            }
            let (a_end, b_end) = (a.stop.unwrap_or(u128::MAX), b.stop.unwrap_or(u128::MAX));
            let overlap = a_end.min(b_end) as i128 - a.start.max(b.start) as i128;
            worst = worst.max(overlap);
        }
    }
    eprintln!(
        "runs: {:?}; largest overlap of two commands: {} ms",
        r.iter()
            .map(|x| (x.peer, x.term, x.stop.is_some()))
            .collect::<Vec<_>>(),
        worst / 1_000_000
    );
    assert!(
        worst <= GRACE.as_nanos() as i128,
        "two commands ran at once for {} ms: {r:?}",
        worst / 1_000_000
    );
    for x in r.iter().filter(|x| x.stop.is_some()) {
        assert!(
            grandchild_gone(dir.path(), x.peer, x.term, Duration::from_secs(2)).await,
            "a grandchild of peer {} term {} survived",
            x.peer,
            x.term
        );
    }
    drop(sup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_with_the_commands_status_and_bad_flags_are_refused() {
    let c = Cluster::start(spec(1));
    c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    let out = Command::new(EXE)
        .args([
            "while-leader",
            "--once",
            "--http",
            &c.peers[0].http.to_string(),
        ])
        .args([
            "--",
            "sh",
            "-c",
            "test \"$RAFT_ELECTOR_TERM\" -ge 1 && exit 7",
        ])
        .output()
        .expect("run while-leader --once");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (flags, says) in [
        (vec!["while-leader"], "COMMAND"),
        (
            vec!["while-leader", "--grace", "soon", "--", "true"],
            "--grace",
        ),
    ] {
        let out = Command::new(EXE).args(&flags).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}
