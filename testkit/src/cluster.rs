//! A cluster of real `raft-elector` processes on loopback: their command lines and addresses,
//! optionally behind fault proxies, and the questions a test asks them.
//!
//! The binary under test is passed in ([`Spec::exe`]): tests use
//! `env!("CARGO_BIN_EXE_raft-elector")`, the benchmark its release build. Ports come from
//! [`crate::ports`]; the processes, their directory and logs from [`crate::procs`].
//!
//! Without proxies every peer listens for peer traffic at the address the peer list gives it.
//! With proxies ([`Spec::sender_header`]), the peer list names one fault proxy per peer
//! ([`crate::proxy`]) and each peer listens behind its own (`--peer-listen`), so that all peer
//! traffic crosses them. The application API is always asked directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::agree::Ask;
use crate::answer::Answer;
use crate::http;
use crate::metrics::metric;
use crate::ports::free_addr;
use crate::procs::Procs;
use crate::proxy::{Net, Proxies};
use crate::tls::{TestCa, TlsPaths, Validity};

/// The header in which every peer request names its sender: what the fault proxies read
/// ([`Spec::sender_header`]).
pub const SENDER_HEADER: &str = "x-raft-elector-from";

/// The binary's `--shutdown-timeout` when the command line does not set it.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How much longer than its `--shutdown-timeout` a peer asked to stop may take to be gone
/// (the exit itself and the reaping, on a loaded machine).
pub const STOP_MARGIN: Duration = Duration::from_secs(2);

/// What to run; [`Spec::new`] gives the defaults of the tests.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// The `raft-elector` binary.
    pub exe: PathBuf,
    pub peers: usize,
    pub election: String,
    /// Flags added to every peer's command line.
    pub flags: Vec<String>,
    /// `RAFT_ELECTOR_LOG` of every peer; `None` leaves it unset (the binary's default).
    pub log_filter: Option<String>,
    /// Put every peer behind a fault proxy that learns the sender from this request header.
    pub sender_header: Option<String>,
    /// How long one question to a peer may take.
    pub ask_timeout: Duration,
    /// Pause between two rounds of questions while waiting for agreement.
    pub poll: Duration,
    /// Prefix of the temporary directory.
    pub dir_prefix: String,
    /// Keep logs and data of a failing test (see [`crate::procs`]).
    pub keep_failed: bool,
    /// Peers get SIGKILL when the thread that started them ends (for the benchmark).
    pub die_with_parent: bool,
    /// The last `spares` of the `peers` are not of the first cluster: they join it when
    /// started. The first cluster's peers are given only each other in `--peers`; a spare is
    /// given them and itself (see [`Cluster::peer_list_of`]).
    pub spares: usize,
    /// Some peers may run the previous release ([`Peer::exe`]): answers in its contract
    /// (without `voters`) are accepted too.
    pub previous_release: bool,
    /// Peer TLS: a CA of the test issues each peer a certificate for its name
    /// ([`Cluster::tls_paths`]); the proxies then find senders by process.
    pub tls: bool,
}

impl Spec {
    /// `peers` peers of election `test`, no proxies, the binary's own log filter.
    pub fn new(exe: impl Into<PathBuf>, peers: usize) -> Spec {
        Spec {
            exe: exe.into(),
            peers,
            election: "test".into(),
            ask_timeout: Duration::from_secs(2),
            poll: Duration::from_millis(10),
            dir_prefix: "raft-elector-test-".into(),
            ..Spec::default()
        }
    }
}

/// Where one peer answers.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its `--id`.
    pub name: String,
    /// Application API.
    pub http: SocketAddr,
    /// The fault proxy in front of it, when the cluster has proxies: the address the other
    /// peers are given.
    pub proxy: Option<SocketAddr>,
    /// Where the peer itself listens for peer traffic.
    pub peer_addr: SocketAddr,
    /// Flags for this peer only.
    pub extra: Vec<String>,
    /// The binary of this peer when not [`Spec::exe`] (the previous release, say).
    pub exe: Option<PathBuf>,
}

impl Peer {
    /// The address the other peers are told to use.
    pub fn listed_addr(&self) -> SocketAddr {
        self.proxy.unwrap_or(self.peer_addr)
    }
}

/// What a peer's `/v1/members` lists (names, sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    pub voters: Vec<String>,
    pub learners: Vec<String>,
    pub witnesses: Vec<String>,
    /// A joint change is under way (its voters are both halves').
    pub joint: bool,
}

/// A cluster of peer processes.
pub struct Cluster {
    pub spec: Spec,
    pub peers: Vec<Peer>,
    pub procs: Procs,
    /// The fault proxies, when [`Spec::sender_header`] asked for them.
    pub net: Option<Net>,
    pub client: reqwest::Client,
    /// The CA of the peers' certificates, with [`Spec::tls`].
    pub ca: Option<TestCa>,
}

impl Cluster {
    /// Prepares the peers (and their proxies, inside a Tokio runtime) without starting them.
    pub fn new(spec: Spec) -> Cluster {
        let names: Vec<String> = (0..spec.peers).map(|i| format!("peer-{i}")).collect();
        let peers: Vec<Peer> = names
            .iter()
            .map(|name| Peer {
                name: name.clone(),
                http: free_addr(),
                proxy: spec.sender_header.as_ref().map(|_| free_addr()),
                peer_addr: free_addr(),
                extra: Vec::new(),
                exe: None,
            })
            .collect();
        let net = spec.sender_header.as_ref().map(|header| {
            Net::start(Proxies {
                names: names.clone(),
                sender_header: header.clone(),
                by_process: spec.tls,
                listen: peers.iter().map(Peer::listed_addr).collect(),
                target: peers.iter().map(|p| p.peer_addr).collect(),
            })
            .expect("start the fault proxies")
        });
        let mut procs = Procs::new(&spec.dir_prefix, names);
        procs.keep_failed = spec.keep_failed;
        procs.die_with_parent = spec.die_with_parent;
        let client = http::client(spec.ask_timeout);
        let mut c = Cluster {
            spec,
            peers,
            procs,
            net,
            client,
            ca: None,
        };
        if c.spec.tls {
            let ca = TestCa::new("raft-elector test CA");
            for i in 0..c.len() {
                ca.write(&c.tls_paths(i), &[&c.peers[i].name], Validity::Now, None);
            }
            c.ca = Some(ca);
        }
        c
    }

    /// Where peer `i`'s TLS files are (written by [`Cluster::new`] with [`Spec::tls`]).
    pub fn tls_paths(&self, i: usize) -> TlsPaths {
        TlsPaths::under(&self.dir().join("tls"), &self.peers[i].name)
    }

    /// Prepares the peers and starts them all.
    pub fn start(spec: Spec) -> Cluster {
        let mut c = Cluster::new(spec);
        c.spawn_all();
        c
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Every peer as a `--peers` list.
    pub fn peer_list(&self) -> String {
        self.list(&(0..self.len()).collect::<Vec<_>>())
    }

    /// The `--peers` list peer `i` gets: the first cluster (all peers but the
    /// [`Spec::spares`]), and itself when it is a spare.
    pub fn peer_list_of(&self, i: usize) -> String {
        let first = self.len() - self.spec.spares.min(self.len());
        let mut which: Vec<usize> = (0..first).collect();
        if i >= first {
            which.push(i);
        }
        self.list(&which)
    }

    fn list(&self, which: &[usize]) -> String {
        which
            .iter()
            .map(|&i| format!("{}={}", self.peers[i].name, self.peers[i].listed_addr()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A `--peers` list of the peers `of` only.
    pub fn peer_list_among(&self, of: &[usize]) -> String {
        self.list(of)
    }

    /// The peers `first` start with `--peers` naming only them: the first cluster of a
    /// StatefulSet that others join later ([`Cluster::join_later`]).
    pub fn first_cluster(&mut self, first: &[usize]) {
        let peers = self.peer_list_among(first);
        for &i in first {
            self.peers[i]
                .extra
                .extend(["--peers".to_string(), peers.clone()]);
        }
    }

    /// Peer `i` starts with `--peers` naming only the peers `first` and itself: a peer that
    /// joins the cluster those formed (a StatefulSet scaled up).
    pub fn join_later(&mut self, i: usize, first: &[usize]) {
        let mut list: Vec<usize> = first.to_vec();
        list.push(i);
        let peers = self.peer_list_among(&list);
        self.peers[i].extra.extend(["--peers".to_string(), peers]);
    }

    /// The voters and learners peer `i` lists in `/v1/members` (names, sorted), with the
    /// number of witnesses among the voters.
    pub async fn members(&self, i: usize) -> Option<Members> {
        let (status, body) = http::get(&self.client, self.peers[i].http, "/v1/members").await?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let mut m = Members {
            joint: v["joint"].as_bool()?,
            ..Members::default()
        };
        for member in v["members"].as_array()? {
            let id = member["id"].as_str()?.to_string();
            match member["role"].as_str()? {
                "learner" => m.learners.push(id),
                "witness" => {
                    m.witnesses.push(id.clone());
                    m.voters.push(id)
                }
                _ => m.voters.push(id),
            }
        }
        m.voters.sort();
        m.learners.sort();
        m.witnesses.sort();
        Some(m)
    }

    /// Waits until every peer in `peers` lists `voters` and `learners` (peer indexes), with
    /// no joint change under way (while one is, losing a voter of the old half can stop the
    /// cluster); panics with what they list at the deadline.
    pub async fn members_converge(
        &self,
        peers: &[usize],
        voters: &[usize],
        learners: &[usize],
        timeout: Duration,
    ) {
        let names = |of: &[usize]| {
            let mut v: Vec<String> = of.iter().map(|&i| self.peers[i].name.clone()).collect();
            v.sort();
            v
        };
        let (want_voters, want_learners) = (names(voters), names(learners));
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for &i in peers {
                seen.push(self.members(i).await);
            }
            let ok = seen.iter().all(|m| {
                m.as_ref().is_some_and(|m| {
                    !m.joint && m.voters == want_voters && m.learners == want_learners
                })
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "peers {peers:?} do not all list voters {want_voters:?} and learners {want_learners:?} within {timeout:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The command line of peer `i`.
    pub fn command(&self, i: usize) -> Command {
        let p = &self.peers[i];
        let mut cmd = Command::new(p.exe.as_ref().unwrap_or(&self.spec.exe));
        cmd.args(["--election", &self.spec.election, "--id", &p.name]);
        // A peer given a list of its own (a peer joining a cluster it was not part of) keeps it.
        if !p
            .extra
            .iter()
            .any(|a| a == "--peers" || a.starts_with("--peers="))
        {
            cmd.args(["--peers", &self.peer_list_of(i)]);
        }
        if p.proxy.is_some() {
            cmd.args(["--peer-listen", &p.peer_addr.to_string()]);
        }
        cmd.arg("--data-dir")
            .arg(self.data_dir(i))
            .args(["--http", &p.http.to_string()])
            .args(&self.spec.flags)
            .args(match self.spec.tls {
                true => self.tls_paths(i).flags(),
                false => Vec::new(),
            })
            .args(&p.extra)
            .env_remove("HOSTNAME");
        match &self.spec.log_filter {
            Some(filter) => cmd.env("RAFT_ELECTOR_LOG", filter),
            None => cmd.env_remove("RAFT_ELECTOR_LOG"),
        };
        cmd
    }

    /// Starts (or restarts, with its data) peer `i`, appending to its log.
    pub fn spawn(&mut self, i: usize) {
        self.spawn_with(i, |_| {});
    }

    /// Like [`Cluster::spawn`], after `adjust` changed the command (environment, say).
    pub fn spawn_with(&mut self, i: usize, adjust: impl FnOnce(&mut Command)) {
        let mut cmd = self.command(i);
        adjust(&mut cmd);
        self.procs.spawn(i, cmd);
    }

    pub fn spawn_all(&mut self) {
        for i in 0..self.len() {
            self.spawn(i);
        }
    }

    /// Whether peer `i` has a process not yet reaped (it may have exited by itself).
    pub fn started(&self, i: usize) -> bool {
        self.procs.started(i)
    }

    /// Whether peer `i`'s process still runs; reaps it if it exited.
    pub fn alive(&mut self, i: usize) -> bool {
        self.procs.alive(i)
    }

    /// The peers with a process not yet reaped.
    pub fn running(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.started(i)).collect()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs.pid(i)
    }

    pub fn signal(&self, i: usize, sig: Signal) {
        self.procs.signal(i, sig);
    }

    /// kill -9 and reap.
    pub fn kill(&mut self, i: usize) {
        self.procs.kill(i);
    }

    /// SIGTERM and wait (up to `timeout`, then kill -9) for the exit status.
    pub async fn terminate(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        self.procs.terminate(i, timeout).await
    }

    /// Waits (up to `timeout`, then kill -9) for peer `i` to exit by itself.
    pub async fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        self.procs.wait_exit(i, timeout).await
    }

    /// Peer `i`'s `--shutdown-timeout`, read from its command line
    /// ([`DEFAULT_SHUTDOWN_TIMEOUT`] when it has none).
    pub fn shutdown_timeout(&self, i: usize) -> Duration {
        let args: Vec<&String> = self.spec.flags.iter().chain(&self.peers[i].extra).collect();
        let value = args.iter().enumerate().rev().find_map(|(k, arg)| {
            match arg.strip_prefix("--shutdown-timeout") {
                Some("") => args.get(k + 1).map(|v| v.as_str()),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            }
        });
        value.map_or(DEFAULT_SHUTDOWN_TIMEOUT, |v| {
            humantime::parse_duration(v)
                .unwrap_or_else(|e| panic!("--shutdown-timeout {v:?} of peer {i}: {e}"))
        })
    }

    /// Asks peer `i` to stop (SIGTERM) and checks that it does: see [`Cluster::expect_stopped`].
    pub async fn stop(&mut self, i: usize) -> Duration {
        let sent = Instant::now();
        self.signal(i, nix::sys::signal::Signal::SIGTERM);
        self.expect_stopped(i, sent).await
    }

    /// Waits for peer `i`, sent SIGTERM at `sent`, to exit; panics unless it exits with code 0
    /// within its shutdown timeout and [`STOP_MARGIN`] of `sent` (at that deadline it is
    /// killed). Returns how long after `sent` it was gone.
    pub async fn expect_stopped(&mut self, i: usize, sent: Instant) -> Duration {
        let name = self.peers[i].name.clone();
        assert!(self.started(i), "{name} was not running");
        let allowed = self.shutdown_timeout(i) + STOP_MARGIN;
        let left = (sent + allowed).saturating_duration_since(Instant::now());
        let status = self.procs.wait_exit(i, left).await;
        let took = sent.elapsed();
        match status {
            Some(status) if status.code() == Some(0) => took,
            Some(status) => panic!("{name}, asked to stop, ended with {status}"),
            None => panic!("{name} had not exited {allowed:?} after SIGTERM"),
        }
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        &self.procs.slots[i].data_dir
    }

    /// The temporary directory of the cluster (data directories and logs).
    pub fn dir(&self) -> PathBuf {
        self.procs.dir()
    }

    pub fn log_text(&self, i: usize) -> String {
        self.procs.log_text(i)
    }

    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        self.procs.log_tail(i, lines)
    }

    /// The fault proxies in front of the peers.
    pub fn proxies(&self) -> &Net {
        self.net
            .as_ref()
            .expect("network faults need a cluster behind proxies (Spec::sender_header)")
    }

    /// Index of a peer by name.
    pub fn index(&self, name: &str) -> usize {
        self.peers
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("unknown peer {name:?}"))
    }

    /// `GET path` on peer `i`'s application API: status and body.
    pub async fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        http::get(&self.client, self.peers[i].http, path).await
    }

    /// One sample of peer `i`'s metrics (see [`crate::metrics::metric`]).
    pub async fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let (_, text) = self.get(i, "/metrics").await?;
        metric(&text, name)
    }
}

impl Ask for Cluster {
    fn names(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.name.clone()).collect()
    }

    async fn ask(&self, i: usize) -> Option<Answer> {
        let parse = if self.spec.previous_release {
            Answer::parse_either_release
        } else {
            Answer::parse
        };
        http::ask_parsed(&self.client, self.peers[i].http, parse).await
    }

    fn poll(&self) -> Duration {
        self.spec.poll
    }
}
