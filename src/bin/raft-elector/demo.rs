//! `raft-elector demo`: a live cluster on loopback for a newcomer to watch and break.
//!
//! It starts N peers as child processes of this binary, each with a temporary data directory
//! and its own loopback ports, polls every peer's `/v1/leader` and prints a line whenever what
//! the peers say changes, with the time the cluster spent without an agreed leader. Commands
//! typed on standard input kill, stop, pause, resume and restart peers.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cli::DemoArgs;

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot find this executable to start the peers: {0}")]
    Exe(std::io::Error),
    #[error("cannot create the temporary data directory: {0}")]
    TempDir(std::io::Error),
    #[error("cannot find free loopback ports: {0}")]
    Ports(std::io::Error),
    #[error("cannot start peer {name}: {source}")]
    Spawn {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

struct DemoPeer {
    name: String,
    http: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// What one peer says right now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Down,
    Paused,
    NoLeader(u64),
    Leads(u64),
    Follows(String, u64),
}

impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Said::Down => write!(f, "down"),
            Said::Paused => write!(f, "paused"),
            Said::NoLeader(t) => write!(f, "no leader (term {t})"),
            Said::Leads(t) => write!(f, "LEADER (term {t})"),
            Said::Follows(l, t) => write!(f, "follows {l} (term {t})"),
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
    fn spawn(&mut self, exe: &Path, election: &str, peers: &str) -> Result<(), DemoError> {
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
        let child = Command::new(exe)
            .args([
                "--election",
                election,
                "--id",
                &self.name,
                "--peers",
                peers,
                "--http",
            ])
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

    fn signal(&self, sig: Signal) -> bool {
        self.pid().is_some_and(|pid| kill(pid, sig).is_ok())
    }
}

async fn ask(client: &reqwest::Client, peer: &DemoPeer) -> Said {
    if peer.child.is_none() {
        return Said::Down;
    }
    if peer.paused {
        return Said::Paused;
    }
    let Ok(resp) = client
        .get(format!("http://{}/v1/leader", peer.http))
        .send()
        .await
    else {
        return Said::Down;
    };
    let Ok(json) = resp.json::<serde_json::Value>().await else {
        return Said::Down;
    };
    let term = json["term"].as_u64().unwrap_or(0);
    match (
        json["name"].as_str().unwrap_or(""),
        json["is_leader"].as_bool().unwrap_or(false),
    ) {
        ("", _) => Said::NoLeader(term),
        (_, true) => Said::Leads(term),
        (name, false) => Said::Follows(name.to_string(), term),
    }
}

fn help() {
    println!("commands: kill N | stop N | pause N | resume N | start N | status | quit   (N: peer number, or 'leader')");
    println!("  kill = SIGKILL (crash), stop = SIGTERM (graceful hand-off), pause/resume = SIGSTOP/SIGCONT");
}

fn stamp(t0: Instant) -> String {
    format!("[{:>8.3}s]", t0.elapsed().as_secs_f64())
}

/// The leader every live, unpaused peer agrees on, if they all agree.
fn agreed(said: &[Said]) -> Option<String> {
    let names: BTreeSet<String> = said
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Said::Leads(_) => Some(format!("elector-{i}")),
            Said::Follows(l, _) => Some(l.clone()),
            Said::Down | Said::Paused => None,
            Said::NoLeader(_) => Some(String::new()),
        })
        .collect();
    match names.len() {
        1 => names.into_iter().next().filter(|n| !n.is_empty()),
        _ => None,
    }
}

/// Runs the demo until `quit`, Ctrl-C or `--duration`.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let n = args.peers as usize;
    let exe = std::env::current_exe().map_err(DemoError::Exe)?;
    let dir = tempfile::Builder::new()
        .prefix("raft-elector-demo-")
        .tempdir()
        .map_err(DemoError::TempDir)?;
    let ports = free_ports(2 * n).map_err(DemoError::Ports)?;
    let peer_list = (0..n)
        .map(|i| format!("elector-{i}=127.0.0.1:{}", ports[n + i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut peers: Vec<DemoPeer> = (0..n)
        .map(|i| DemoPeer {
            name: format!("elector-{i}"),
            http: SocketAddr::from(([127, 0, 0, 1], ports[i])),
            data_dir: dir.path().join(format!("elector-{i}")),
            log: dir.path().join(format!("elector-{i}.log")),
            child: None,
            paused: false,
        })
        .collect();
    println!(
        "raft-elector demo: {n} peers of election \"demo\" on loopback; data and logs in {}",
        dir.path().display()
    );
    for p in peers.iter_mut() {
        p.spawn(&exe, "demo", &peer_list)?;
        println!(
            "  {}  app API http://{}/   log {}",
            p.name,
            p.http,
            p.log.display()
        );
    }
    println!("try: curl -s http://{}/v1/leader", peers[0].http);
    help();

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let t0 = Instant::now();
    let deadline = args.duration.map(|d| t0 + d);
    let mut last: Vec<Said> = Vec::new();
    let mut leader: Option<String> = None;
    let mut leaderless_since: Option<Instant> = Some(t0);
    let mut last_command: Option<(String, Instant)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => match command(line.trim(), &mut peers, &exe, &peer_list, leader.as_deref(), t0) {
                    Step::Quit => break,
                    Step::Did(what) => last_command = Some((what, Instant::now())),
                    Step::Nothing => {}
                },
                _ => stdin_open = false,
            },
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        for p in peers.iter_mut() {
            if let Some(Ok(Some(status))) = p.child.as_mut().map(|c| c.try_wait()) {
                println!("{} {} exited ({status})", stamp(t0), p.name);
                p.child = None;
            }
        }
        let said = futures::future::join_all(peers.iter().map(|p| ask(&client, p))).await;
        if said != last {
            let row: Vec<String> = said
                .iter()
                .zip(&peers)
                .map(|(s, p)| format!("{}: {s}", p.name))
                .collect();
            println!("{} {}", stamp(t0), row.join(" | "));
            last = said.clone();
        }
        match agreed(&said) {
            None => {
                leaderless_since.get_or_insert_with(Instant::now);
            }
            Some(new) => {
                let gap = leaderless_since.take().map(|s| s.elapsed().as_millis());
                if leader.as_ref() != Some(&new) {
                    let after = match &last_command {
                        Some((what, at)) => {
                            format!("{} ms after '{what}'", at.elapsed().as_millis())
                        }
                        None => format!("{} ms after start", t0.elapsed().as_millis()),
                    };
                    println!(
                        "{} ==> {new} leads: {after}; {} ms with no agreed leader",
                        stamp(t0),
                        gap.unwrap_or(0)
                    );
                    leader = Some(new);
                }
            }
        }
    }
    println!("stopping the peers");
    for p in peers.iter() {
        if p.paused {
            p.signal(Signal::SIGCONT);
        }
        p.signal(Signal::SIGTERM);
    }
    for p in peers.iter_mut() {
        if let Some(child) = p.child.as_mut() {
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
    Ok(())
}

/// What a typed command did.
enum Step {
    Quit,
    Did(String),
    Nothing,
}

/// Carries out one command.
fn command(
    line: &str,
    peers: &mut [DemoPeer],
    exe: &Path,
    peer_list: &str,
    leader: Option<&str>,
    t0: Instant,
) -> Step {
    let mut words = line.split_whitespace();
    let (Some(verb), arg) = (words.next(), words.next()) else {
        return Step::Nothing;
    };
    if matches!(verb, "quit" | "exit" | "q") {
        return Step::Quit;
    }
    if verb != "status" && !matches!(verb, "kill" | "stop" | "pause" | "resume" | "start") {
        help();
        return Step::Nothing;
    }
    if verb == "status" {
        return Step::Nothing;
    }
    let index = match arg {
        Some("leader") => leader.and_then(|l| peers.iter().position(|p| p.name == l)),
        Some(a) => a
            .trim_start_matches("elector-")
            .parse::<usize>()
            .ok()
            .filter(|i| *i < peers.len()),
        None => None,
    };
    let Some(i) = index else {
        println!("which peer? e.g. '{verb} 0' or '{verb} leader'");
        return Step::Nothing;
    };
    let p = &mut peers[i];
    let done = match verb {
        "kill" => p.signal(Signal::SIGKILL),
        "stop" => p.signal(Signal::SIGTERM),
        "pause" => {
            let ok = p.signal(Signal::SIGSTOP);
            p.paused |= ok;
            ok
        }
        "resume" => {
            let ok = p.signal(Signal::SIGCONT);
            p.paused &= !ok;
            ok
        }
        "start" if p.child.is_none() => match p.spawn(exe, "demo", peer_list) {
            Ok(()) => true,
            Err(e) => {
                println!("{e}");
                false
            }
        },
        "start" => {
            println!("{} is running", p.name);
            false
        }
        _ => false,
    };
    if !done {
        return Step::Nothing;
    }
    println!("{} {verb} {}", stamp(t0), p.name);
    Step::Did(format!("{verb} {}", p.name))
}
