//! What a fault injector (the nemesis) can do to a cluster, whatever runs it: processes on
//! loopback behind fault proxies ([`crate::cluster`]) or containers on Docker networks
//! ([`crate::docker`]), each implemented here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::docker;
use crate::proxy::Mode;

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
    /// Delays the packets of peer `i`.
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
            "processes on loopback behind fault proxies ({})",
            self.spec.exe.display()
        )
    }

    async fn start(&mut self, i: usize) {
        self.spawn(i);
    }

    async fn kill(&mut self, i: usize) {
        self.procs.kill(i);
    }

    async fn pause(&mut self, i: usize) {
        self.procs.pause(i);
    }

    async fn resume(&mut self, i: usize) {
        self.procs.resume(i);
    }

    async fn terminate(&mut self, i: usize, timeout: Duration) -> bool {
        !self.started(i) || self.procs.terminate(i, timeout).await.is_some()
    }

    async fn terminate_all(&mut self, timeout: Duration) {
        self.procs.terminate_all(timeout).await;
    }

    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> String {
        self.proxies().cut(a, b, mode);
        format!("proxies, {mode:?}")
    }

    async fn slow(&mut self, i: usize, delay: Duration) {
        self.proxies().slow(i, delay);
    }

    async fn heal(&mut self) {
        self.proxies().heal();
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

    async fn kill(&mut self, i: usize) {
        docker::Cluster::kill(self, i).await;
    }

    async fn pause(&mut self, i: usize) {
        docker::Cluster::pause(self, i).await;
    }

    async fn resume(&mut self, i: usize) {
        self.unpause(i).await;
    }

    async fn terminate(&mut self, i: usize, timeout: Duration) -> bool {
        self.stop_within(i, timeout).await.1 == 0
    }

    async fn terminate_all(&mut self, timeout: Duration) {
        self.stop_all(timeout).await;
    }

    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> String {
        docker::Cluster::cut(self, a, b, mode).await
    }

    async fn isolate(&mut self, i: usize, _mode: Mode) -> String {
        self.disconnect(i).await;
        "docker network disconnect".into()
    }

    async fn slow(&mut self, i: usize, delay: Duration) {
        docker::Cluster::slow(self, i, delay).await;
    }

    async fn heal(&mut self) {
        docker::Cluster::heal(self).await;
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
