//! `raft-elector demo`, the README's first command, driven as a newcomer drives it: typed
//! commands on its standard input, its printed lines read back.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::EXE;

const WITHIN: Duration = Duration::from_secs(20);

/// The demo's output, read line by line with a deadline.
struct Output {
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl Output {
    /// The first line read since `mark` (a count of lines) that satisfies `want`, else reads
    /// on until one does; returns it. Fails after [`WITHIN`].
    async fn since(&mut self, mark: usize, what: &str, want: impl Fn(&str) -> bool) -> String {
        match self.seen[mark.min(self.seen.len())..]
            .iter()
            .find(|l| want(l))
        {
            Some(line) => line.clone(),
            None => self.until(what, want).await,
        }
    }

    /// Reads lines until one satisfies `want`; returns it. Fails after [`WITHIN`].
    async fn until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = tokio::time::timeout(left, self.lines.next_line()).await;
            match line {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    panic!("the demo ended before {what}:\n{}", self.seen.join("\n"))
                }
                Err(_) => panic!(
                    "no {what} within {WITHIN:?}; the demo printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The lines of one `status` answer: one per peer, `peers` of them.
    async fn status(&mut self, stdin: &mut ChildStdin, peers: usize) -> Vec<String> {
        type_line(stdin, "status").await;
        let mut rows = Vec::new();
        while rows.len() < peers {
            let row = self
                .until("a status line", |l| {
                    l.starts_with("  elector-") && l.contains(": ")
                })
                .await;
            rows.push(row);
        }
        rows
    }

    /// Asks for `status` until its rows satisfy `want` (a membership change may still be
    /// reaching the last follower); returns them. Fails after [`WITHIN`].
    async fn status_until(
        &mut self,
        stdin: &mut ChildStdin,
        peers: usize,
        what: &str,
        want: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + WITHIN;
        loop {
            let rows = self.status(stdin, peers).await;
            if want(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "{what} within {WITHIN:?}: {rows:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn type_line(stdin: &mut ChildStdin, line: &str) {
    stdin
        .write_all(format!("{line}\n").as_bytes())
        .await
        .expect("type into the demo");
    stdin.flush().await.expect("flush the demo's stdin");
}

/// The peer named in a "==> elector-N leads" line.
fn new_leader(line: &str) -> String {
    line.split("==> ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

fn start_demo() -> (Child, ChildStdin, Output) {
    let mut child = Command::new(EXE)
        .args(["demo", "--peers", "3", "--duration", "120s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start raft-elector demo");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let out = Output {
        lines: BufReader::new(stdout).lines(),
        seen: Vec::new(),
    };
    (child, stdin, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_elects_grows_by_one_fails_over_on_remove_and_prints_the_membership() {
    let (mut child, mut stdin, mut out) = start_demo();
    let first = out.until("a first leader", |l| l.contains("==> ")).await;
    let leader = new_leader(&first);
    assert!(leader.starts_with("elector-"), "{first}");

    type_line(&mut stdin, "add").await;
    out.until("elector-3 following the leader", |l| {
        l.contains(&format!("elector-3: follows {leader}"))
    })
    .await;
    out.status_until(&mut stdin, 4, "every peer lists the four voters", |rows| {
        rows.iter()
            .all(|r| r.contains("voters elector-0,elector-1,elector-2,elector-3,"))
    })
    .await;

    let mark = out.seen.len();
    type_line(&mut stdin, "remove leader").await;
    let line = out
        .until("a new leader after the leader was removed", |l| {
            l.contains("==> ") && new_leader(l) != leader
        })
        .await;
    let successor = new_leader(&line);
    out.since(mark, "the removed leader's exit", |l| {
        l.contains(&format!("{leader} exited (exit status: 0)"))
    })
    .await;
    let down = format!("  {leader}: down");
    let follows = format!("follows {successor}");
    let leads = format!("{successor}: LEADER");
    out.status_until(
        &mut stdin,
        4,
        "the removed leader is down and gone from every other peer's membership, which follows the new leader",
        |rows| {
            rows.contains(&down)
                && rows.iter().filter(|r| **r != down).all(|r| {
                    r.contains("membership at index")
                        && !r.contains(&leader)
                        && (r.contains(&follows) || r.contains(&leads))
                })
        },
    )
    .await;

    quit(&mut child, &mut stdin).await;
    out.until("the demo stopping its peers", |l| {
        l.contains("stopping the peers")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_explains_a_command_it_does_not_know() {
    let (mut child, mut stdin, mut out) = start_demo();
    // The list is printed at start too: the question comes after the first leader.
    out.until("a first leader", |l| l.contains("==> ")).await;
    type_line(&mut stdin, "frobnicate").await;
    out.until("the list of commands", |l| {
        l.starts_with("commands:") && l.contains("add") && l.contains("remove N")
    })
    .await;
    type_line(&mut stdin, "kill 7").await;
    out.until("which peer", |l| l.contains("which peer?")).await;
    quit(&mut child, &mut stdin).await;
}

/// Types `quit` and checks that the demo exits 0 within [`WITHIN`].
async fn quit(child: &mut Child, stdin: &mut ChildStdin) {
    type_line(stdin, "quit").await;
    let status = tokio::time::timeout(WITHIN, child.wait())
        .await
        .expect("the demo exits after quit")
        .expect("wait for the demo");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peers_of_a_killed_demo_die_with_it() {
    let (mut child, _stdin, mut out) = start_demo();
    out.until("a first leader", |l| l.contains("==> ")).await;
    let demo = child.id().expect("the demo's pid");
    let peers = children_of(demo);
    assert_eq!(peers.len(), 3, "the demo's children: {peers:?}");
    child.kill().await.expect("SIGKILL the demo");
    let deadline = Instant::now() + WITHIN;
    while peers
        .iter()
        .any(|p| Path::new(&format!("/proc/{p}")).exists() && !zombie(*p))
    {
        assert!(
            Instant::now() < deadline,
            "peers {peers:?} outlived the killed demo"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Whether `pid` is a zombie (dead, not yet reaped).
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, a)| a.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
