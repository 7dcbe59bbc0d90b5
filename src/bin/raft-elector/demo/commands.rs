//! The demo's commands, typed on standard input: break a peer (kill, stop, pause), bring it
//! back (resume, start), scale the cluster (add, remove) and look at it (status).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use nix::sys::signal::Signal;

use super::peer::{free_ports, DemoPeer};
use super::stamp;

/// The most peers `add` starts, the first cluster included.
const MAX_PEERS: usize = 16;

pub fn help() {
    println!("commands: kill N | stop N | pause N | resume N | start N | add | remove N | status | quit   (N: peer number, or 'leader')");
    println!("  kill = SIGKILL (crash), stop = SIGTERM (graceful: hand-off, and it leaves the membership), pause/resume = SIGSTOP/SIGCONT");
    println!("  add = start one more peer, which joins (a learner beyond 5 voters); remove = stop a peer for good (it leaves)");
}

/// What a typed command asks the loop to do.
pub enum Step {
    Quit,
    Did(String),
    /// Print every peer's state and membership.
    Status,
    Nothing,
}

/// What a command needs besides the peers.
pub struct Context<'a> {
    pub exe: &'a Path,
    /// Where new peers keep their data and logs.
    pub dir: &'a Path,
    /// The first cluster's `--peers`.
    pub first: &'a str,
    pub leader: Option<&'a str>,
    pub t0: Instant,
}

/// Carries out one command.
pub fn command(line: &str, peers: &mut Vec<DemoPeer>, cx: &Context<'_>) -> Step {
    let mut words = line.split_whitespace();
    let (Some(verb), arg) = (words.next(), words.next()) else {
        return Step::Nothing;
    };
    match verb {
        "quit" | "exit" | "q" => return Step::Quit,
        "status" => return Step::Status,
        "add" => return add(peers, cx),
        "kill" | "stop" | "pause" | "resume" | "start" | "remove" => {}
        _ => {
            help();
            return Step::Nothing;
        }
    }
    let index = match arg {
        Some("leader") => cx
            .leader
            .and_then(|l| peers.iter().position(|p| p.name == l)),
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
        "stop" | "remove" => p.signal(Signal::SIGTERM),
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
        "start" if p.child.is_none() => match p.spawn(cx.exe) {
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
    println!("{} {verb} {}", stamp(cx.t0), p.name);
    Step::Did(format!("{verb} {}", p.name))
}

/// Starts one more peer, given the first cluster and itself as `--peers`: it asks the
/// cluster to let it join.
fn add(peers: &mut Vec<DemoPeer>, cx: &Context<'_>) -> Step {
    if peers.len() >= MAX_PEERS {
        println!("the demo runs at most {MAX_PEERS} peers");
        return Step::Nothing;
    }
    let ports = match free_ports(2) {
        Ok(p) => p,
        Err(e) => {
            println!("cannot find free loopback ports: {e}");
            return Step::Nothing;
        }
    };
    let name = format!("elector-{}", peers.len());
    let mut p = DemoPeer {
        name: name.clone(),
        http: SocketAddr::from(([127, 0, 0, 1], ports[0])),
        peers: format!("{},{name}=127.0.0.1:{}", cx.first, ports[1]),
        data_dir: cx.dir.join(&name),
        log: cx.dir.join(format!("{name}.log")),
        child: None,
        paused: false,
    };
    if let Err(e) = p.spawn(cx.exe) {
        println!("{e}");
        return Step::Nothing;
    }
    println!(
        "{} add {name}: app API http://{}/   log {}",
        stamp(cx.t0),
        p.http,
        p.log.display()
    );
    peers.push(p);
    Step::Did(format!("add {name}"))
}

/// Prints every peer's state and the membership it knows.
pub async fn status(client: &reqwest::Client, peers: &[DemoPeer]) {
    let asks = peers.iter().map(|p| async move {
        let said = p.ask(client).await;
        let members = p.get(client, "/v1/members").await;
        (said, members)
    });
    for (p, (said, members)) in peers.iter().zip(futures::future::join_all(asks).await) {
        let membership = members.map_or_else(String::new, |m| {
            let of = |role: &str| {
                let names: Vec<&str> = m["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|x| x["role"].as_str() == Some(role))
                    .filter_map(|x| x["id"].as_str())
                    .collect();
                if names.is_empty() {
                    "-".to_string()
                } else {
                    names.join(",")
                }
            };
            format!(
                "; membership at index {}: voters {}, learners {}{}",
                m["index"],
                of("voter"),
                of("learner"),
                if m["joint"].as_bool() == Some(true) {
                    " (changing)"
                } else {
                    ""
                }
            )
        });
        println!("  {}: {said}{membership}", p.name);
    }
}
