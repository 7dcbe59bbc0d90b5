//! The child processes of one test or benchmark step: each with a name, a data directory and a
//! log file in one temporary directory; started, signalled, paused, killed and reaped by index.
//!
//! Dropping the set kills every process it started (paused ones too). When the test is
//! failing, the tail of every log is printed first; the directory is kept (and its place
//! printed) when the set was told so ([`Procs::keep_failed`], `RAFT_ELECTOR_KEEP_LOGS`) or
//! [`Procs::keep`] was called.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::logs;

/// Set to keep the logs and data of a failing test for a post-mortem.
pub const KEEP_LOGS_ENV: &str = "RAFT_ELECTOR_KEEP_LOGS";

/// How a process asked to stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub slot: usize,
    /// Its status; `None` when it still ran at the deadline and was killed.
    pub status: Option<ExitStatus>,
    /// When it was reaped, after the signal.
    pub after: Duration,
}

/// One process slot.
pub struct Proc {
    pub name: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// The process, from its start until it is reaped.
    pub child: Option<Child>,
    pub paused: bool,
}

pub struct Procs {
    dir: Option<tempfile::TempDir>,
    pub slots: Vec<Proc>,
    /// Keep the directory of a failing test (always, not only with `RAFT_ELECTOR_KEEP_LOGS`).
    pub keep_failed: bool,
    /// Children get SIGKILL when the thread that started them ends, even by SIGKILL.
    pub die_with_parent: bool,
    kept: bool,
}

impl Procs {
    /// Slots named `names` in a new temporary directory whose name starts with `prefix`;
    /// nothing started yet.
    pub fn new(prefix: &str, names: Vec<String>) -> Procs {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("temp dir");
        let slots = names
            .into_iter()
            .map(|name| Proc {
                data_dir: dir.path().join(&name),
                log: dir.path().join(format!("{name}.log")),
                name,
                child: None,
                paused: false,
            })
            .collect();
        Procs {
            dir: Some(dir),
            slots,
            keep_failed: false,
            die_with_parent: false,
            kept: false,
        }
    }

    /// The temporary directory.
    pub fn dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Starts `cmd` in slot `i`, its stdout and stderr appended to the slot's log.
    pub fn spawn(&mut self, i: usize, mut cmd: Command) {
        let slot = &mut self.slots[i];
        assert!(slot.child.is_none(), "{} is running", slot.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&slot.log)
            .expect("open log");
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if self.die_with_parent {
            die_with_parent(&mut cmd);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", slot.name));
        slot.child = Some(child);
        slot.paused = false;
    }

    /// Whether slot `i` holds a process not yet reaped (it may have exited by itself).
    pub fn started(&self, i: usize) -> bool {
        self.slots[i].child.is_some()
    }

    /// Whether slot `i`'s process still runs; reaps it if it exited.
    pub fn alive(&mut self, i: usize) -> bool {
        let Some(child) = self.slots[i].child.as_mut() else {
            return false;
        };
        if child.try_wait().ok().flatten().is_some() {
            self.slots[i].child = None;
            return false;
        }
        true
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.slots[i].child.as_ref().map(Child::id)
    }

    /// Sends `sig` to slot `i`'s process, if there is one.
    pub fn signal(&self, i: usize, sig: Signal) {
        if let Some(pid) = self.pid(i) {
            let _ = kill(Pid::from_raw(pid as i32), sig);
        }
    }

    /// kill -9 and reap.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.slots[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.slots[i].paused = false;
    }

    /// SIGSTOP.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, Signal::SIGSTOP);
        self.slots[i].paused = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self, i: usize) {
        self.signal(i, Signal::SIGCONT);
        self.slots[i].paused = false;
    }

    /// Waits (up to `timeout`) for slot `i`'s process to exit and reaps it; kills it at the
    /// deadline and returns `None`.
    pub async fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.slots[i].child.take()?;
        self.slots[i].paused = false;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM (after SIGCONT, should it be paused), then [`Procs::wait_exit`].
    pub async fn terminate(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        self.resume(i);
        self.signal(i, Signal::SIGTERM);
        self.wait_exit(i, timeout).await
    }

    /// SIGTERM to every started process at once, then waits for all, polling each (kill -9 at
    /// `timeout`): how each ended and how long after the SIGTERM.
    pub async fn terminate_all(&mut self, timeout: Duration) -> Vec<Ended> {
        let t0 = Instant::now();
        let mut left: Vec<usize> = (0..self.len()).filter(|&i| self.started(i)).collect();
        for &i in &left {
            self.resume(i);
            self.signal(i, Signal::SIGTERM);
        }
        let mut ended = Vec::new();
        while !left.is_empty() {
            let expired = t0.elapsed() >= timeout;
            left.retain(|&slot| {
                let child = self.slots[slot].child.as_mut();
                let status = child.and_then(|c| c.try_wait().ok().flatten());
                if status.is_none() && !expired {
                    return true;
                }
                if let Some(mut child) = self.slots[slot].child.take() {
                    if status.is_none() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                }
                ended.push(Ended {
                    slot,
                    status,
                    after: t0.elapsed(),
                });
                false
            });
            if !left.is_empty() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        ended
    }

    /// Kills every process (paused ones too).
    pub fn kill_all(&mut self) {
        for i in 0..self.len() {
            self.signal(i, Signal::SIGCONT);
            self.kill(i);
        }
    }

    /// Everything slot `i` logged, over all its starts.
    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(&self.slots[i].log).unwrap_or_default()
    }

    /// The last `lines` lines of slot `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        logs::tail_of_file(&self.slots[i].log, lines)
    }

    /// The last `lines` lines of every log, each under its heading.
    pub fn log_tails(&self, lines: usize) -> String {
        self.slots
            .iter()
            .map(|p| {
                let place = p.log.display().to_string();
                logs::headed(&p.name, &place, &logs::tail_of_file(&p.log, lines))
            })
            .collect()
    }

    /// Keeps the directory (logs and data) after the drop; returns where it is.
    pub fn keep(&mut self) -> PathBuf {
        self.kept = true;
        self.dir()
    }

    /// Moves the directory out of the temporary one's reach, so that it outlives the drop.
    fn persist(&mut self) -> Option<PathBuf> {
        let path = self.dir.take()?.keep();
        for p in &mut self.slots {
            let file = |f: &Path| path.join(f.file_name().unwrap_or_default());
            p.log = file(&p.log);
            p.data_dir = file(&p.data_dir);
        }
        Some(path)
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        let keep_env = std::env::var_os(KEEP_LOGS_ENV).is_some();
        if self.kept || (failing && (self.keep_failed || keep_env)) {
            if let Some(path) = self.persist() {
                eprintln!("logs and data kept in {}", path.display());
            }
        }
        if failing {
            eprint!("{}", self.log_tails(40));
        }
        self.kill_all();
    }
}

/// Makes the child get SIGKILL when the thread that started it ends, even when the parent is
/// killed with SIGKILL.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn sleeper() -> Command {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        cmd
    }

    #[tokio::test]
    async fn starts_signals_and_reaps_real_processes() {
        let mut p = Procs::new("testkit-procs-", vec!["a".into(), "b".into()]);
        p.spawn(0, sleeper());
        let mut sh = Command::new("sh");
        sh.args(["-c", "echo hello; echo oops >&2; exit 3"]);
        p.spawn(1, sh);
        let status = p
            .wait_exit(1, Duration::from_secs(5))
            .await
            .expect("exited");
        assert_eq!(status.code(), Some(3));
        assert_eq!(p.log_text(1), "hello\noops\n");
        assert!(p.log_tails(1).contains("----- last lines of b"));

        assert!(p.alive(0));
        let status = p
            .terminate(0, Duration::from_secs(5))
            .await
            .expect("exited");
        assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
        assert!(!p.started(0));

        // A paused process still ends on terminate (SIGCONT first).
        p.spawn(0, sleeper());
        p.pause(0);
        assert!(p.terminate(0, Duration::from_secs(5)).await.is_some());
    }

    #[tokio::test]
    async fn terminate_all_reports_how_each_process_ended() {
        let names = vec!["clean".into(), "signalled".into(), "stubborn".into()];
        let mut p = Procs::new("testkit-procs-", names);
        let shell = |script: &str| {
            let mut sh = Command::new("sh");
            sh.args(["-c", script]);
            sh
        };
        p.spawn(0, shell("trap 'exit 0' TERM; while :; do sleep 0.01; done"));
        p.spawn(1, sleeper());
        p.spawn(2, shell("trap '' TERM; while :; do sleep 0.01; done"));
        // Let the shells install their traps.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut ended = p.terminate_all(Duration::from_millis(700)).await;
        ended.sort_by_key(|e| e.slot);
        let codes: Vec<_> = ended.iter().map(|e| e.status.map(|s| s.code())).collect();
        assert_eq!(codes, vec![Some(Some(0)), Some(None), None], "{ended:?}");
        assert_eq!(
            ended[1].status.and_then(|s| s.signal()),
            Some(Signal::SIGTERM as i32)
        );
        assert!(ended[0].after < Duration::from_millis(500), "{ended:?}");
        assert!(ended[2].after >= Duration::from_millis(700), "{ended:?}");
        assert!(!p.started(2), "the stubborn one was killed and reaped");
    }

    #[tokio::test]
    async fn wait_exit_kills_at_the_deadline_and_drop_kills_everything() {
        let mut p = Procs::new("testkit-procs-", vec!["a".into()]);
        p.spawn(0, sleeper());
        assert_eq!(p.wait_exit(0, Duration::from_millis(50)).await, None);
        p.spawn(0, sleeper());
        let pid = Pid::from_raw(p.pid(0).expect("pid") as i32);
        let dir = p.dir();
        drop(p);
        assert!(kill(pid, None).is_err(), "still running after the drop");
        assert!(!dir.exists(), "the directory outlived the drop");
    }
}
