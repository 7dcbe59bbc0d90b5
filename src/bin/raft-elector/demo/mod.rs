//! `raft-elector demo`: a live cluster on loopback for a newcomer to watch and break.
//!
//! It starts N peers as child processes of this binary, each with a temporary data directory
//! and its own loopback ports, polls every peer's `/v1/leader` and prints a line whenever what
//! the peers say changes, with the time the cluster spent without an agreed leader. Commands
//! typed on standard input ([`commands`]) kill, stop, pause, resume and restart peers, add
//! and remove peers, and print the state and membership of each.

mod commands;
mod peer;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::DemoArgs;
use commands::{command, help, Context, Step};
use peer::{free_ports, DemoPeer, Said};

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

pub(crate) fn stamp(t0: Instant) -> String {
    format!("[{:>8.3}s]", t0.elapsed().as_secs_f64())
}

/// The leader every live, unpaused peer agrees on, if they all agree.
fn agreed(said: &[Said]) -> Option<String> {
    let names: BTreeSet<String> = said
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Said::Leads(_) => Some(format!("elector-{i}")),
            Said::Follows(l, _) | Said::Learns(l, _) => Some(l.clone()),
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
            peers: peer_list.clone(),
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
        p.spawn(&exe)?;
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
                Ok(Some(line)) => {
                    let cx = Context {
                        exe: &exe,
                        dir: dir.path(),
                        first: &peer_list,
                        leader: leader.as_deref(),
                        t0,
                    };
                    match command(line.trim(), &mut peers, &cx) {
                        Step::Quit => break,
                        Step::Did(what) => last_command = Some((what, Instant::now())),
                        Step::Status => commands::status(&client, &peers).await,
                        Step::Nothing => {}
                    }
                }
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
        let said = futures::future::join_all(peers.iter().map(|p| p.ask(&client))).await;
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
