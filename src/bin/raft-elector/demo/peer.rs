//! One peer of the demo: a child process of this binary with its own ports, data directory
//! and log, and what it says when asked who leads.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::DemoError;

/// The election every demo peer belongs to.
pub const ELECTION: &str = "demo";

pub struct DemoPeer {
    pub name: String,
    pub http: SocketAddr,
    /// Its `--peers`: the first cluster, and itself when it was added later.
    pub peers: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub paused: bool,
}

/// What one peer says right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    Down,
    Paused,
    NoLeader(u64),
    Leads(u64),
    Follows(String, u64),
    /// A learner (beyond the voter cap, or joining): it follows, never votes nor leads.
    Learns(String, u64),
}

impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Said::Down => write!(f, "down"),
            Said::Paused => write!(f, "paused"),
            Said::NoLeader(t) => write!(f, "no leader (term {t})"),
            Said::Leads(t) => write!(f, "LEADER (term {t})"),
            Said::Follows(l, t) => write!(f, "follows {l} (term {t})"),
            Said::Learns(l, t) => write!(f, "learner, follows {l} (term {t})"),
        }
    }
}

/// Reserves `n` distinct free loopback ports.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

impl DemoPeer {
    /// Starts (or restarts, with its data) the peer.
    pub fn spawn(&mut self, exe: &Path) -> Result<(), DemoError> {
        let spawn_err = |source| DemoError::Spawn {
            name: self.name.clone(),
            source,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(spawn_err)?;
        let log2 = log.try_clone().map_err(spawn_err)?;
        let mut cmd = Command::new(exe);
        // The peers die with the demo, even when it is killed (SIGKILL cannot be caught): a
        // demo never leaves peers running behind it. The demo runs on the main thread, whose
        // end is the process's.
        // SAFETY: between fork and exec the closure only calls prctl, which is
        // async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .args(["--election", ELECTION, "--id", &self.name])
            .args(["--peers", &self.peers])
            .arg("--http")
            .arg(self.http.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("RAFT_ELECTOR_PEER_LISTEN")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    fn pid(&self) -> Option<Pid> {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
    }

    pub fn signal(&self, sig: Signal) -> bool {
        self.pid().is_some_and(|pid| kill(pid, sig).is_ok())
    }

    /// Whether it runs and is not paused (it can answer).
    pub fn live(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    /// `GET path` as JSON, if it answers.
    pub async fn get(&self, client: &reqwest::Client, path: &str) -> Option<serde_json::Value> {
        if !self.live() {
            return None;
        }
        let resp = client
            .get(format!("http://{}{path}", self.http))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// Who it says leads.
    pub async fn ask(&self, client: &reqwest::Client) -> Said {
        if self.child.is_none() {
            return Said::Down;
        }
        if self.paused {
            return Said::Paused;
        }
        let Some(json) = self.get(client, "/v1/leader").await else {
            return Said::Down;
        };
        let term = json["term"].as_u64().unwrap_or(0);
        let learner = json["role"].as_str() == Some("learner");
        match (
            json["name"].as_str().unwrap_or(""),
            json["is_leader"].as_bool().unwrap_or(false),
        ) {
            ("", _) => Said::NoLeader(term),
            (_, true) => Said::Leads(term),
            (name, false) if learner => Said::Learns(name.to_string(), term),
            (name, false) => Said::Follows(name.to_string(), term),
        }
    }
}
