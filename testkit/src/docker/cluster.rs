//! A cluster of raft-elector containers of the image under test, and what a test does to
//! them: start, kill, stop, pause, disconnect and connect a peer, ask it from inside, read its
//! logs and exit.
//!
//! How the containers are laid out (restricted as the Kubernetes manifests restrict a pod, on
//! a `peers` network with fixed addresses and DNS names, optionally on a `clients` network) is
//! [`super::create`]'s; asking them over HTTP is [`super::probe`]'s; faults inside their
//! network namespaces are [`super::netns`]'s. Every object is named after the run, so that
//! runs cannot collide. Dropping the cluster removes containers, networks and volumes, after
//! printing the containers' last log lines when the test is failing.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::cli::{
    both_streams, docker, docker_ok, docker_quiet, docker_quiet_blocking, try_command,
};
use super::create::Spec;
use super::probe::Probe;
use crate::agree::Ask;
use crate::answer::Answer;
use crate::logs;

/// Domain the peers are found under (`<name>.peers`), as `--peer-domain`.
pub const PEER_DOMAIN: &str = "peers";
pub const HTTP_PORT: u16 = 4040;
pub const PEER_PORT: u16 = 4041;
/// How long `docker stop` waits before SIGKILL, as a pod's grace period.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// One peer container.
#[derive(Debug, Clone)]
pub struct Node {
    /// The peer's id and hostname.
    pub name: String,
    pub container: String,
    pub volume: String,
    /// Its address on the `peers` network.
    pub peer_ip: Ipv4Addr,
    /// Its address on the `clients` network, when there is one.
    pub client_ip: Option<Ipv4Addr>,
}

/// The peer containers of one test.
pub struct Cluster {
    pub run: String,
    pub image: String,
    pub election: String,
    /// The `peers` network.
    pub network: String,
    /// The `clients` network, when there is one.
    pub clients_network: Option<String>,
    pub nodes: Vec<Node>,
    pub probe: Probe,
    /// Peers currently disconnected from the `peers` network.
    pub(super) disconnected: Vec<bool>,
    /// Peers with iptables rules to remove.
    pub(super) touched: Vec<bool>,
    /// Peers with a netem qdisc to remove.
    pub(super) slowed: Vec<bool>,
    /// Whether netem works in the containers (probed on the first start, by the nemesis).
    pub(crate) netem: Option<bool>,
    removed: bool,
}

impl Cluster {
    /// The cluster of `spec` for run `run`, before anything is created: no nodes yet.
    pub(super) fn unmade(spec: &Spec, run: String, names: Vec<String>) -> Cluster {
        let n = names.len();
        Cluster {
            network: format!("{run}-peers"),
            clients_network: spec.clients_network.then(|| format!("{run}-clients")),
            nodes: Vec::new(),
            probe: Probe::new(spec.ask_timeout, names),
            disconnected: vec![false; n],
            touched: vec![false; n],
            slowed: vec![false; n],
            netem: None,
            removed: false,
            image: spec.image.clone(),
            election: spec.election.clone(),
            run,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Index of a peer by its name.
    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("unknown peer {name:?}"))
    }

    /// `docker inspect --format <format>` of peer `i`'s container.
    pub async fn inspect(&self, i: usize, format: &str) -> String {
        docker_ok(&["inspect", "--format", format, &self.nodes[i].container]).await
    }

    /// Where the test reaches peer `i`'s API: its `clients` address, else the host port
    /// Docker published (it changes on every start, and goes with the network).
    async fn refresh_addr(&self, i: usize) {
        if self.clients_network.is_some() {
            return;
        }
        let out = docker(&[
            "port",
            &self.nodes[i].container,
            &format!("{HTTP_PORT}/tcp"),
        ])
        .await;
        let text = String::from_utf8_lossy(&out.stdout);
        let addr = text
            .lines()
            .find_map(|l| l.trim().parse::<SocketAddr>().ok());
        self.probe.set_addr(i, addr);
    }

    fn forget_addr(&self, i: usize) {
        if self.clients_network.is_none() {
            self.probe.set_addr(i, None);
        }
    }

    /// `docker start` of peer `i`: same container, same volume.
    pub async fn start_peer(&self, i: usize) {
        docker_ok(&["start", &self.nodes[i].container]).await;
        self.refresh_addr(i).await;
    }

    /// SIGKILL of peer `i` (unpaused first), waiting (bounded) until it is down, so that a
    /// restart does not race the exit.
    pub async fn kill(&self, i: usize) {
        let c = &self.nodes[i].container;
        docker_quiet(&["unpause", c]).await;
        docker_quiet(&["kill", "--signal", "KILL", c]).await;
        self.forget_addr(i);
        for _ in 0..100 {
            if self.inspect(i, "{{.State.Running}}").await != "true" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `docker stop` (SIGTERM, then SIGKILL after [`STOP_GRACE`]) of peer `i`: how long the
    /// command took and the exit code. [`Cluster::exited_after`] tells when the process ended.
    pub async fn stop(&self, i: usize) -> (Duration, i64) {
        self.stop_within(i, STOP_GRACE).await
    }

    /// Like [`Cluster::stop`], SIGKILL after `grace` (whole seconds, at least one).
    pub async fn stop_within(&self, i: usize, grace: Duration) -> (Duration, i64) {
        let secs = grace.as_secs().max(1).to_string();
        let t0 = Instant::now();
        docker_ok(&["stop", "--time", &secs, &self.nodes[i].container]).await;
        let took = t0.elapsed();
        self.forget_addr(i);
        (took, self.exit_code(i).await)
    }

    /// SIGTERM to every peer at once (`docker stop`), SIGKILL after `grace`.
    pub async fn stop_all(&self, grace: Duration) {
        let secs = grace.as_secs().max(1).to_string();
        let mut args = vec!["stop", "--time", secs.as_str()];
        args.extend(self.nodes.iter().map(|n| n.container.as_str()));
        docker_ok(&args).await;
        for i in 0..self.len() {
            self.forget_addr(i);
        }
    }

    /// The cgroup freezer.
    pub async fn pause(&self, i: usize) {
        docker_ok(&["pause", &self.nodes[i].container]).await;
    }

    pub async fn unpause(&self, i: usize) {
        docker_ok(&["unpause", &self.nodes[i].container]).await;
    }

    /// How long after `since` peer `i`'s process ended, by Docker's record of its exit (the
    /// `docker stop` command itself also waits for Docker's clean-up, which can take seconds).
    pub async fn exited_after(&self, i: usize, since: SystemTime) -> Option<Duration> {
        let finished = self.inspect(i, "{{.State.FinishedAt}}").await;
        let at = humantime::parse_rfc3339_weak(finished.trim_end_matches('Z')).ok()?;
        at.duration_since(since).ok()
    }

    pub async fn exit_code(&self, i: usize) -> i64 {
        let code = self.inspect(i, "{{.State.ExitCode}}").await;
        code.parse().expect("exit code")
    }

    /// Cuts peer `i` off the `peers` network (it keeps its loopback, and its `clients`
    /// address; a published port goes).
    pub async fn disconnect(&mut self, i: usize) {
        let node = &self.nodes[i];
        docker_ok(&[
            "network",
            "disconnect",
            "--force",
            &self.network,
            &node.container,
        ])
        .await;
        self.disconnected[i] = true;
        self.forget_addr(i);
    }

    /// Connects peer `i` again, with its address and DNS name.
    pub async fn connect(&mut self, i: usize) {
        let node = &self.nodes[i];
        let ip = node.peer_ip.to_string();
        let alias = format!("{}.{PEER_DOMAIN}", node.name);
        docker_ok(&[
            "network",
            "connect",
            "--ip",
            &ip,
            "--alias",
            &alias,
            &self.network,
            &node.container,
        ])
        .await;
        self.disconnected[i] = false;
        // Docker publishes the port anew, on another host port.
        self.refresh_addr(i).await;
    }

    /// Asks peer `i` from inside its container (`raft-elector leader --json` through
    /// `docker exec`), which works while the container is cut off from every network.
    pub async fn ask_inside(&self, i: usize) -> Option<Answer> {
        let out = docker(&[
            "exec",
            &self.nodes[i].container,
            "/raft-elector",
            "leader",
            "--json",
            "--http",
            &format!("127.0.0.1:{HTTP_PORT}"),
            "--timeout",
            "1s",
        ])
        .await;
        Answer::parse(&out.stdout)
    }

    pub async fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        self.probe.get(i, path).await
    }

    /// Everything peer `i`'s container logged, over all its starts.
    pub async fn logs(&self, i: usize) -> String {
        both_streams(&docker(&["logs", &self.nodes[i].container]).await)
    }

    /// The last `lines` lines of every peer's log, each under its heading.
    pub async fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let tail = lines.to_string();
        for n in &self.nodes {
            let logs = try_command("docker", &["logs", "--tail", &tail, &n.container], &[]).await;
            let text = logs.map(|o| both_streams(&o)).unwrap_or_default();
            out += &logs::headed(&n.name, &n.container, text.trim_end());
        }
        out
    }

    /// Writes every peer's whole log into a new directory that outlives the run.
    pub async fn keep_logs(&self) -> Option<PathBuf> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", self.run))
            .tempdir()
            .ok()?
            .keep();
        for (i, n) in self.nodes.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("{}.log", n.name)), self.logs(i).await);
        }
        Some(dir)
    }

    /// Removes containers, volumes and networks now.
    pub async fn remove(&mut self) {
        for n in &self.nodes {
            docker_quiet(&["rm", "--force", "--volumes", &n.container]).await;
            docker_quiet(&["volume", "rm", "--force", &n.volume]).await;
        }
        for net in self.networks() {
            docker_quiet(&["network", "rm", &net]).await;
        }
        self.removed = true;
    }

    fn networks(&self) -> Vec<String> {
        std::iter::once(self.network.clone())
            .chain(self.clients_network.clone())
            .collect()
    }
}

impl Ask for Cluster {
    fn names(&self) -> Vec<String> {
        self.probe.names()
    }

    async fn ask(&self, i: usize) -> Option<Answer> {
        self.probe.ask(i).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                let out = std::process::Command::new("docker")
                    .args(["logs", "--tail", "60", &n.container])
                    .output();
                if let Ok(out) = out {
                    eprint!(
                        "{}",
                        logs::headed(&n.name, &n.container, &both_streams(&out))
                    );
                }
            }
        }
        for n in &self.nodes {
            docker_quiet_blocking(&["rm", "--force", "--volumes", &n.container]);
        }
        for n in &self.nodes {
            docker_quiet_blocking(&["volume", "rm", "--force", &n.volume]);
        }
        for net in self.networks() {
            docker_quiet_blocking(&["network", "rm", &net]);
        }
    }
}
