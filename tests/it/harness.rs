//! A cluster of real `raft-elector` processes on loopback: spawn, signal, restart and ask them.
//!
//! Each cluster lives in its own temporary directory (data directories and logs) and uses
//! ports chosen outside the kernel's ephemeral range, so concurrent tests do not collide with
//! each other's outgoing connections. Dropping a cluster kills every process it started; when
//! the test is failing, the tail of every peer's log is printed first.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Deserialize;

/// The binary under test.
pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_raft-elector")
}

/// A port that is free now and that no other test process will hand out while this one runs.
///
/// Ports come from 20000-32767, below Linux's default ephemeral range (32768-60999), so that
/// outgoing connections never take them. Test processes run concurrently (nextest), so each
/// port handed out is claimed with an exclusive `flock` on a file named after it, held for the
/// life of the process: the kernel drops it when the process ends, however it ends.
pub fn free_port() -> u16 {
    use nix::fcntl::{Flock, FlockArg};
    static CLAIMED: Mutex<Vec<Flock<std::fs::File>>> = Mutex::new(Vec::new());
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let dir = std::env::temp_dir().join("raft-elector-test-ports");
    std::fs::create_dir_all(&dir).expect("port lock directory");
    let start = 20000 + (std::process::id() % 1280) as u16 * 10;
    let _ = NEXT.compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..12768 {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20000 + (port - 20000) % 12768;
        let Ok(file) = std::fs::File::create(dir.join(port.to_string())) else {
            continue;
        };
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            CLAIMED.lock().unwrap_or_else(|p| p.into_inner()).push(lock);
            return port;
        }
    }
    panic!("no free port in 20000-32767");
}

/// What `GET /v1/leader` answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Answer {
    pub name: String,
    pub term: u64,
    pub is_leader: bool,
    pub id: String,
}

/// One peer process.
pub struct Peer {
    pub name: String,
    pub http: SocketAddr,
    pub peer_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    /// Extra flags for this peer.
    pub extra: Vec<String>,
}

/// A cluster of peer processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub election: String,
    pub peers: Vec<Peer>,
    pub client: reqwest::Client,
    /// Flags added to every peer's command line.
    pub flags: Vec<String>,
}

impl Cluster {
    /// Prepares `n` peers without starting them.
    pub fn new(n: usize) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("raft-elector-test-")
            .tempdir()
            .expect("temp dir");
        let peers = (0..n)
            .map(|i| {
                let name = format!("peer-{i}");
                Peer {
                    http: SocketAddr::from(([127, 0, 0, 1], free_port())),
                    peer_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
                    data_dir: dir.path().join(&name),
                    log: dir.path().join(format!("{name}.log")),
                    name,
                    child: None,
                    extra: Vec::new(),
                }
            })
            .collect();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        Cluster {
            dir,
            election: "test".into(),
            peers,
            client,
            flags: Vec::new(),
        }
    }

    /// Starts `n` peers together.
    pub fn start(n: usize) -> Cluster {
        let mut c = Cluster::new(n);
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    pub fn peer_list(&self) -> String {
        self.peers
            .iter()
            .map(|p| format!("{}={}", p.name, p.peer_addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The command line of peer `i`.
    pub fn command(&self, i: usize) -> Command {
        let p = &self.peers[i];
        let mut cmd = Command::new(exe());
        cmd.args([
            "--election",
            &self.election,
            "--id",
            &p.name,
            "--peers",
            &self.peer_list(),
        ])
        .arg("--data-dir")
        .arg(&p.data_dir)
        .arg("--http")
        .arg(p.http.to_string())
        .args(&self.flags)
        .args(&p.extra)
        .env("RAFT_ELECTOR_LOG", "info,raft_elector=debug")
        .env_remove("HOSTNAME")
        .stdin(Stdio::null());
        cmd
    }

    /// Starts (or restarts) peer `i`, appending to its log.
    pub fn spawn(&mut self, i: usize) {
        assert!(
            self.peers[i].child.is_none(),
            "{} is running",
            self.peers[i].name
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.peers[i].log)
            .expect("log");
        let child = self
            .command(i)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn raft-elector");
        self.peers[i].child = Some(child);
    }

    pub fn pid(&self, i: usize) -> Pid {
        let child = self.peers[i].child.as_ref().expect("peer is running");
        Pid::from_raw(child.id() as i32)
    }

    pub fn signal(&self, i: usize, sig: Signal) {
        kill(self.pid(i), sig).expect("signal");
    }

    /// kill -9 and reap.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.peers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the exit status.
    pub fn terminate(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        self.signal(i, Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        let mut child = self.peers[i].child.take().expect("running");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Asks peer `i` who leads.
    pub async fn ask(&self, i: usize) -> Option<Answer> {
        let url = format!("http://{}/v1/leader", self.peers[i].http);
        let resp = self.client.get(url).send().await.ok()?;
        resp.json().await.ok()
    }

    /// `GET path` on peer `i`'s application API: status and body.
    pub async fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        let resp = self
            .client
            .get(format!("http://{}{path}", self.peers[i].http))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    /// Waits until every peer in `among` names the same leader, one of them saying it leads;
    /// returns the leader's index and the term.
    pub async fn agreed_leader(&self, among: &[usize], timeout: Duration) -> (usize, u64) {
        let deadline = Instant::now() + timeout;
        let mut last = Vec::new();
        while Instant::now() < deadline {
            let answers = futures::future::join_all(among.iter().map(|&i| self.ask(i))).await;
            if let Some(found) = agreement(&self.peers, among, &answers) {
                return found;
            }
            last = answers;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no agreed leader among {among:?} within {timeout:?}; last answers: {last:?}");
    }

    /// Index of a peer by name.
    pub fn index(&self, name: &str) -> usize {
        self.peers
            .iter()
            .position(|p| p.name == name)
            .expect("known peer")
    }

    /// The running peers.
    pub fn running(&self) -> Vec<usize> {
        (0..self.peers.len())
            .filter(|&i| self.peers[i].child.is_some())
            .collect()
    }

    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(&self.peers[i].log).unwrap_or_default()
    }
}

/// The leader all `answers` agree on, if they do and exactly the leader says it leads.
fn agreement(peers: &[Peer], among: &[usize], answers: &[Option<Answer>]) -> Option<(usize, u64)> {
    let first = answers.first()?.as_ref()?;
    if first.name.is_empty() {
        return None;
    }
    let leader = peers.iter().position(|p| p.name == first.name)?;
    for (&i, a) in among.iter().zip(answers) {
        let a = a.as_ref()?;
        if a.name != first.name || a.term != first.term || a.is_leader != (i == leader) {
            return None;
        }
    }
    among.contains(&leader).then_some((leader, first.term))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("RAFT_ELECTOR_KEEP_LOGS").is_some() {
            // Keep the logs and data directories of a failing test for a post-mortem.
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tmp")).keep();
            for p in &mut self.peers {
                p.log = kept.join(p.log.file_name().expect("log name"));
            }
            eprintln!("RAFT_ELECTOR_KEEP_LOGS: kept {}", kept.display());
        }
        if std::thread::panicking() {
            for p in &self.peers {
                eprintln!(
                    "----- last lines of {} ({}) -----\n{}",
                    p.name,
                    p.log.display(),
                    tail(&p.log, 40)
                );
            }
        }
        for p in &mut self.peers {
            if let Some(mut child) = p.child.take() {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
