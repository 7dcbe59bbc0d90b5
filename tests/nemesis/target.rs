//! What the nemesis can do to a cluster, whatever runs it: processes on loopback behind fault
//! proxies ([`crate::cluster`]) or containers on a Docker network ([`crate::containers`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::history::FaultKind;
use crate::proxy::Mode;

#[allow(async_fn_in_trait)]
pub trait Target {
    /// Number of peers.
    fn len(&self) -> usize;
    /// The peer names, as they answer.
    fn names(&self) -> Vec<String>;
    /// Where each peer's application API answers.
    fn http(&self) -> Vec<SocketAddr>;
    /// Whether this kind of fault can be injected here.
    fn supports(&self, kind: FaultKind) -> bool;
    /// How the target is described in the summary.
    fn describe(&self) -> String;

    /// Starts (or restarts, with its data) peer `i`.
    async fn start(&mut self, i: usize);
    /// kill -9.
    async fn kill(&mut self, i: usize);
    /// SIGSTOP (or the cgroup freezer).
    async fn pause(&mut self, i: usize);
    async fn resume(&mut self, i: usize);
    /// SIGTERM and wait for the exit; whether it exited by itself within `timeout`.
    async fn terminate(&mut self, i: usize, timeout: Duration) -> bool;
    /// SIGTERM to all at once, then wait.
    async fn terminate_all(&mut self, timeout: Duration);
    /// Cuts every link between `a` and `b`, both ways. Returns how it was done.
    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> String;
    /// Cuts peer `i` off every other peer. Returns how it was done.
    async fn isolate(&mut self, i: usize, mode: Mode) -> String {
        let others: Vec<usize> = (0..self.len()).filter(|&j| j != i).collect();
        self.cut(&[i], &others, mode).await
    }
    /// Delays every packet to and from peer `i`.
    async fn slow(&mut self, i: usize, delay: Duration);
    /// Repairs every network fault.
    async fn heal(&mut self);
    /// The last lines of every peer's log.
    async fn log_tails(&mut self, lines: usize) -> String;
    /// Keeps logs (and data where possible) of a failed run; returns where.
    async fn keep(&mut self) -> Option<PathBuf>;
    /// Stops and removes everything.
    async fn shutdown(&mut self);
}
