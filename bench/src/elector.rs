//! A cluster of real `raft-elector` processes on loopback, driven by the bench.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::Deserialize;

use crate::proxy::Link;
use crate::sys;

/// What `GET /v1/leader` answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Answer {
    pub name: String,
    pub term: u64,
    pub is_leader: bool,
}

pub struct Peer {
    pub name: String,
    pub http: SocketAddr,
    pub peer: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
}

/// An agreed leader: its index, its term and when agreement was seen.
#[derive(Debug, Clone, Copy)]
pub struct Agreed {
    pub leader: usize,
    pub term: u64,
    pub at: Instant,
}

pub struct Cluster {
    pub exe: PathBuf,
    /// Data directories and logs; removed on drop.
    pub _dir: tempfile::TempDir,
    pub peers: Vec<Peer>,
    /// Extra flags for every peer.
    pub flags: Vec<String>,
    /// `links[i][j]`: the proxy peer i uses to reach peer j (with `--partitionable`).
    pub links: Option<Vec<Vec<Option<Link>>>>,
    pub client: reqwest::Client,
    pub poll: Duration,
}

impl Cluster {
    /// Prepares `n` peers (not started). With `partitionable`, every peer reaches every other
    /// through its own proxy.
    pub async fn new(exe: &Path, n: usize, flags: &[&str], partitionable: bool) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("raft-elector-bench-")
            .tempdir()
            .expect("temp dir");
        let peers: Vec<Peer> = (0..n)
            .map(|i| {
                let name = format!("peer-{i}");
                Peer {
                    http: sys::free_addr(),
                    peer: sys::free_addr(),
                    data_dir: dir.path().join(&name),
                    log: dir.path().join(format!("{name}.log")),
                    name,
                    child: None,
                }
            })
            .collect();
        let links = if partitionable {
            let mut links = Vec::new();
            for i in 0..n {
                let mut row = Vec::new();
                for (j, to) in peers.iter().enumerate() {
                    row.push(if i == j {
                        None
                    } else {
                        Some(
                            Link::start(sys::free_addr(), to.peer)
                                .await
                                .expect("start proxy"),
                        )
                    });
                }
                links.push(row);
            }
            Some(links)
        } else {
            None
        };
        Cluster {
            exe: exe.to_path_buf(),
            _dir: dir,
            peers,
            flags: flags.iter().map(|s| s.to_string()).collect(),
            links,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_millis(300))
                .build()
                .expect("http client"),
            poll: Duration::from_millis(5),
        }
    }

    /// Peer `i`'s view of the peer list: itself at its own address, the others at their
    /// address or at the proxy it uses to reach them.
    fn peer_list(&self, i: usize) -> String {
        self.peers
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let addr = match &self.links {
                    Some(links) if i != j => links[i][j].as_ref().expect("link").listen,
                    _ => p.peer,
                };
                format!("{}={addr}", p.name)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn command(&self, i: usize) -> Command {
        let p = &self.peers[i];
        let mut cmd = Command::new(&self.exe);
        cmd.args(["--election", "bench", "--id", &p.name, "--peers"])
            .arg(self.peer_list(i))
            .arg("--data-dir")
            .arg(&p.data_dir)
            .arg("--http")
            .arg(p.http.to_string())
            .args(&self.flags)
            .env_remove("HOSTNAME")
            .env_remove("RAFT_ELECTOR_LOG")
            .stdin(Stdio::null());
        sys::die_with_parent(&mut cmd);
        cmd
    }

    /// Starts (or restarts, with its data) peer `i`.
    pub fn spawn(&mut self, i: usize) {
        assert!(self.peers[i].child.is_none());
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.peers[i].log)
            .expect("open log");
        let child = self
            .command(i)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn raft-elector");
        self.peers[i].child = Some(child);
    }

    pub fn spawn_all(&mut self) {
        for i in 0..self.peers.len() {
            self.spawn(i);
        }
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(child) = self.peers[i].child.take() {
            sys::kill9(child);
        }
    }

    pub fn signal(&self, i: usize, sig: Signal) {
        if let Some(child) = &self.peers[i].child {
            sys::signal(child, sig);
        }
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.peers[i].child.as_ref().map(|c| c.id())
    }

    /// Cuts (or heals) every link to and from peer `i`.
    pub fn isolate(&self, i: usize, cut: bool) {
        let links = self.links.as_ref().expect("a partitionable cluster");
        for (a, row) in links.iter().enumerate() {
            for (b, link) in row.iter().enumerate() {
                if let Some(link) = link {
                    if a == i || b == i {
                        link.set_up(!cut);
                    }
                }
            }
        }
    }

    pub async fn ask(&self, i: usize) -> Option<Answer> {
        let url = format!("http://{}/v1/leader", self.peers[i].http);
        let resp = self.client.get(url).send().await.ok()?;
        resp.json().await.ok()
    }

    pub async fn ask_all(&self, among: &[usize]) -> Vec<Option<Answer>> {
        futures::future::join_all(among.iter().map(|&i| self.ask(i))).await
    }

    /// Polls `among` until all name the same leader (one of them, which says it leads) in a
    /// term above `min_term`, the leader not being `not`. `None` at the deadline.
    pub async fn agreed(
        &self,
        among: &[usize],
        not: Option<usize>,
        min_term: u64,
        timeout: Duration,
    ) -> Option<Agreed> {
        let deadline = Instant::now() + timeout;
        loop {
            let answers = self.ask_all(among).await;
            let at = Instant::now();
            if let Some((leader, term)) = agreement(&self.peers, among, &answers) {
                if Some(leader) != not && term > min_term {
                    return Some(Agreed { leader, term, at });
                }
            }
            if at >= deadline {
                return None;
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// A metric of peer `i` (first sample of that name).
    pub async fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let url = format!("http://{}/metrics", self.peers[i].http);
        let text = self.client.get(url).send().await.ok()?.text().await.ok()?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// The last lines of a peer's log, for error messages.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.peers[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The leader all answers agree on: same name and term everywhere, exactly the leader says
/// it leads, and the leader is one of `among`.
pub fn agreement(
    peers: &[Peer],
    among: &[usize],
    answers: &[Option<Answer>],
) -> Option<(usize, u64)> {
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

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &mut self.peers {
            if let Some(child) = p.child.take() {
                let _ = nix::sys::signal::kill(sys::pid_of(&child), Signal::SIGCONT);
                sys::kill9(child);
            }
        }
    }
}
