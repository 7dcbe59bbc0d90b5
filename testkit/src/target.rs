//! What a fault injector (the nemesis) can do to a cluster, whatever runs it: processes on
//! loopback behind fault proxies ([`crate::cluster`]) or containers on Docker networks
//! ([`crate::docker`]), each implemented here.
//!
//! A fault that could not be injected (a command that failed or could not run) is an `Err`
//! naming the command and what it printed, never a warning: a fault recorded as injected must
//! have been injected. A peer asked to stop with SIGTERM reports how it ended ([`Exit`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use crate::cluster::Cluster;
use crate::docker;
use crate::proxy::Mode;

/// A fault that could not be made (or repaired): the command and why.
pub type FaultResult<T> = Result<T, String>;

/// How a peer asked to stop with SIGTERM ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub peer: usize,
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i64>,
    /// How long after the SIGTERM its process ended; `None` when it still ran at the deadline
    /// and was killed.
    pub took: Option<Duration>,
    /// What happened, for a report: "exit code 0 after 35 ms", "killed by signal 6 after ...",
    /// "still running after 6 s: killed".
    pub how: String,
}

impl Exit {
    /// Whether it exited with code 0 within `bound` of the SIGTERM.
    pub fn clean(&self, bound: Duration) -> bool {
        self.code == Some(0) && self.took.is_some_and(|t| t <= bound)
    }

    /// From a child's status (`None`: killed at the deadline `limit`).
    pub fn of_process(
        peer: usize,
        status: Option<ExitStatus>,
        took: Duration,
        limit: Duration,
    ) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        let Some(status) = status else {
            return Exit {
                peer,
                code: None,
                took: None,
                how: format!("still running {limit:?} after SIGTERM: killed"),
            };
        };
        let how = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit code {c} after {took:?}"),
            (None, Some(s)) => format!("ended by signal {s} after {took:?}"),
            (None, None) => format!("ended ({status}) after {took:?}"),
        };
        Exit {
            peer,
            code: status.code().map(i64::from),
            took: Some(took),
            how,
        }
    }
}

#[allow(async_fn_in_trait)]
pub trait Target {
    /// Number of peers.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The peer names, as they answer.
    fn names(&self) -> Vec<String>;
    /// Where each peer's application API answers.
    fn http(&self) -> Vec<SocketAddr>;
    /// Whether [`Target::slow`] works here (known once the peers run).
    fn can_slow(&self) -> bool;
    /// How the target is described in a summary.
    fn describe(&self) -> String;

    /// Starts (or restarts, with its data) peer `i`.
    async fn start(&mut self, i: usize);
    /// kill -9; `Err` if the peer still runs afterwards.
    async fn kill(&mut self, i: usize) -> FaultResult<()>;
    /// SIGSTOP (or the cgroup freezer).
    async fn pause(&mut self, i: usize);
    async fn resume(&mut self, i: usize);
    /// SIGTERM and wait for the exit, up to `timeout` (then kill -9): how it ended.
    async fn terminate(&mut self, i: usize, timeout: Duration) -> Exit;
    /// SIGTERM to every running peer at once, then wait (kill -9 at `timeout`).
    async fn terminate_all(&mut self, timeout: Duration) -> Vec<Exit>;
    /// SIGTERM to peer `i` without waiting for its end, so that other faults can be made
    /// while it stops; [`Target::wait_stopped`] then waits for it.
    async fn signal_stop(&mut self, i: usize) -> FaultResult<()>;
    /// Waits for peer `i`, sent SIGTERM at `since` by [`Target::signal_stop`], to exit, up to
    /// `timeout` after `since` (then kill -9): how it ended.
    async fn wait_stopped(&mut self, i: usize, since: Instant, timeout: Duration) -> Exit;
    /// Cuts every link between `a` and `b`, both ways. Returns how it was done.
    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> FaultResult<String>;
    /// Cuts peer `i` off every other peer. Returns how it was done.
    async fn isolate(&mut self, i: usize, mode: Mode) -> FaultResult<String> {
        let others: Vec<usize> = (0..self.len()).filter(|&j| j != i).collect();
        self.cut(&[i], &others, mode).await
    }
    /// Delays the packets of peer `i`.
    async fn slow(&mut self, i: usize, delay: Duration) -> FaultResult<()>;
    /// Repairs every network fault.
    async fn heal(&mut self) -> FaultResult<()>;
    /// The last lines of every peer's log.
    async fn log_tails(&mut self, lines: usize) -> String;
    /// Keeps logs (and data where possible) of a failed run; returns where.
    async fn keep(&mut self) -> Option<PathBuf>;
    /// Stops and removes everything.
    async fn shutdown(&mut self);
}

impl Target for Cluster {
    fn len(&self) -> usize {
        self.peers.len()
    }

    fn names(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.name.clone()).collect()
    }

    fn http(&self) -> Vec<SocketAddr> {
        self.peers.iter().map(|p| p.http).collect()
    }

    fn can_slow(&self) -> bool {
        self.net.is_some()
    }

    fn describe(&self) -> String {
        format!(
            "processes on loopback behind fault proxies{} ({})",
            if self.spec.tls { ", peer TLS" } else { "" },
            self.spec.exe.display()
        )
    }

    async fn start(&mut self, i: usize) {
        self.spawn(i);
    }

    async fn kill(&mut self, i: usize) -> FaultResult<()> {
        self.procs.kill(i);
        Ok(())
    }

    async fn pause(&mut self, i: usize) {
        self.procs.pause(i);
    }

    async fn resume(&mut self, i: usize) {
        self.procs.resume(i);
    }

    async fn terminate(&mut self, i: usize, timeout: Duration) -> Exit {
        let t0 = Instant::now();
        let status = self.procs.terminate(i, timeout).await;
        Exit::of_process(i, status, t0.elapsed(), timeout)
    }

    async fn terminate_all(&mut self, timeout: Duration) -> Vec<Exit> {
        self.procs
            .terminate_all(timeout)
            .await
            .into_iter()
            .map(|e| Exit::of_process(e.slot, e.status, e.after, timeout))
            .collect()
    }

    async fn signal_stop(&mut self, i: usize) -> FaultResult<()> {
        self.procs.resume(i);
        self.procs.signal(i, nix::sys::signal::Signal::SIGTERM);
        Ok(())
    }

    async fn wait_stopped(&mut self, i: usize, since: Instant, timeout: Duration) -> Exit {
        let left = (since + timeout).saturating_duration_since(Instant::now());
        let status = self.procs.wait_exit(i, left).await;
        Exit::of_process(i, status, since.elapsed(), timeout)
    }

    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> FaultResult<String> {
        self.proxies().cut(a, b, mode);
        Ok(format!("proxies, {mode:?}"))
    }

    async fn slow(&mut self, i: usize, delay: Duration) -> FaultResult<()> {
        self.proxies().slow(i, delay);
        Ok(())
    }

    async fn heal(&mut self) -> FaultResult<()> {
        self.proxies().heal();
        Ok(())
    }

    async fn log_tails(&mut self, lines: usize) -> String {
        self.procs.log_tails(lines)
    }

    async fn keep(&mut self) -> Option<PathBuf> {
        Some(self.procs.keep())
    }

    async fn shutdown(&mut self) {
        self.procs.kill_all();
    }
}

/// How container `i` ended after a `docker stop` issued at `since`: Docker's exit code and
/// the time of the exit it recorded.
async fn container_exit(c: &docker::Cluster, i: usize, since: SystemTime) -> Exit {
    let code = c.exit_code(i).await;
    let took = c.exited_after(i, since).await;
    let how = match took {
        Some(t) => format!("exit code {code} after {t:?} (docker stop)"),
        None => format!("exit code {code}, exit time unknown (docker stop)"),
    };
    Exit {
        peer: i,
        code: Some(code),
        took,
        how,
    }
}

impl Target for docker::Cluster {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn http(&self) -> Vec<SocketAddr> {
        (0..self.nodes.len())
            .map(|i| {
                self.probe
                    .addr(i)
                    .expect("the nemesis asks peers on their `clients` network")
            })
            .collect()
    }

    fn can_slow(&self) -> bool {
        self.netem == Some(true)
    }

    fn describe(&self) -> String {
        format!(
            "containers of image {} on Docker networks {} and {}{}",
            self.image,
            self.network,
            self.clients_network.as_deref().unwrap_or("(none)"),
            if self.can_slow() {
                ""
            } else {
                " (no netem in this kernel: no slow peer)"
            }
        )
    }

    async fn start(&mut self, i: usize) {
        self.start_peer(i).await;
        if self.netem.is_none() {
            self.netem = Some(self.netem_works(i).await);
        }
    }

    async fn kill(&mut self, i: usize) -> FaultResult<()> {
        docker::Cluster::kill(self, i).await;
        match self.inspect(i, "{{.State.Running}}").await.as_str() {
            "true" => Err(format!(
                "docker kill --signal KILL {}: the container still runs",
                self.nodes[i].container
            )),
            _ => Ok(()),
        }
    }

    async fn pause(&mut self, i: usize) {
        docker::Cluster::pause(self, i).await;
    }

    async fn resume(&mut self, i: usize) {
        self.unpause(i).await;
    }

    async fn terminate(&mut self, i: usize, timeout: Duration) -> Exit {
        let since = SystemTime::now();
        self.stop_within(i, timeout).await;
        container_exit(self, i, since).await
    }

    async fn terminate_all(&mut self, timeout: Duration) -> Vec<Exit> {
        let since = SystemTime::now();
        self.stop_all(timeout).await;
        let mut out = Vec::new();
        for i in 0..self.len() {
            out.push(container_exit(self, i, since).await);
        }
        out
    }

    async fn signal_stop(&mut self, i: usize) -> FaultResult<()> {
        Err(format!(
            "SIGTERM to {} without waiting: not made for containers yet (docker stop waits)",
            self.nodes[i].container
        ))
    }

    async fn wait_stopped(&mut self, i: usize, since: Instant, timeout: Duration) -> Exit {
        let _ = since;
        self.terminate(i, timeout).await
    }

    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> FaultResult<String> {
        docker::Cluster::cut(self, a, b, mode).await
    }

    async fn isolate(&mut self, i: usize, _mode: Mode) -> FaultResult<String> {
        self.disconnect(i).await;
        Ok("docker network disconnect".into())
    }

    async fn slow(&mut self, i: usize, delay: Duration) -> FaultResult<()> {
        docker::Cluster::slow(self, i, delay).await
    }

    async fn heal(&mut self) -> FaultResult<()> {
        docker::Cluster::heal(self).await
    }

    async fn log_tails(&mut self, lines: usize) -> String {
        docker::Cluster::log_tails(self, lines).await
    }

    async fn keep(&mut self) -> Option<PathBuf> {
        self.keep_logs().await
    }

    async fn shutdown(&mut self) {
        self.remove().await;
    }
}
