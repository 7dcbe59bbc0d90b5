//! The command `while-leader` runs: in a process group of its own (so that a shell wrapper's
//! children are signalled with it), killed with SIGKILL if `while-leader` itself dies
//! (PR_SET_PDEATHSIG), stopped with SIGTERM to the whole group and SIGKILL after the grace.

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child as Process, Command};

/// A running command.
pub struct Child {
    process: Process,
    /// Its process group (its own pid).
    group: Pid,
}

/// How a stop ended.
pub struct Stopped {
    pub status: Option<ExitStatus>,
    /// The grace ran out: the group got SIGKILL.
    pub killed: bool,
}

impl Child {
    /// Starts `argv` with the leadership's term (the fencing token) and leader in its
    /// environment.
    pub fn start(argv: &[String], term: u64, leader: &str) -> std::io::Result<Child> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("no command"))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("RAFT_ELECTOR_TERM", term.to_string())
            .env("RAFT_ELECTOR_LEADER", leader)
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let process = cmd.spawn()?;
        let pid = process
            .id()
            .ok_or_else(|| std::io::Error::other("the command exited at once"))?;
        Ok(Child {
            process,
            group: Pid::from_raw(pid as i32),
        })
    }

    pub fn pid(&self) -> i32 {
        self.group.as_raw()
    }

    /// Waits for the command to end by itself; then kills what is left of its group.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.process.wait().await;
        self.kill_group();
        status
    }

    /// SIGTERM to the group, SIGKILL to it after `grace`; what is left of the group is killed
    /// once the command has exited.
    pub async fn stop(mut self, grace: Duration) -> Stopped {
        let _ = killpg(self.group, Signal::SIGTERM);
        let (status, killed) = match tokio::time::timeout(grace, self.process.wait()).await {
            Ok(status) => (status.ok(), false),
            Err(_) => {
                let _ = killpg(self.group, Signal::SIGKILL);
                (self.process.wait().await.ok(), true)
            }
        };
        self.kill_group();
        Stopped { status, killed }
    }

    /// SIGKILL to whatever is left of the group (grandchildren of a shell wrapper).
    fn kill_group(&self) {
        let _ = killpg(self.group, Signal::SIGKILL);
    }
}
