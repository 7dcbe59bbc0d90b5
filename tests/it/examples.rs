//! The push variants of the examples in config/examples against a live 3-peer cluster: the
//! Python one (`--watch`, the blocking query of `/v1/leader`) and the shell one (`--watch`,
//! `curl -N` on `/sse`) print the leader at once and the new one after the leader's kill -9.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use testkit::{Ask, Cluster};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::spec;

/// One example started with `--watch` against peer `url`, as pod `me`.
struct Watcher {
    what: &'static str,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Watcher {
    fn start(what: &'static str, program: &str, script: &str, url: &str, me: &str) -> Watcher {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(program)
            .arg(repo.join(script))
            .arg("--watch")
            .env("RAFT_ELECTOR_URL", url)
            .env("HOSTNAME", me)
            .stdout(Stdio::piped())
            // Its own process group, so that its children (curl) go with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {script}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        Watcher {
            what,
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Reads lines until one starts with `leader`; every line read, in order.
    async fn until_names(&mut self, leader: &str, within: Duration) -> Vec<String> {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(within, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                seen.push(line.clone());
                if line.split_whitespace().next() == Some(leader) {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            found == Ok(true),
            "{}: no line naming {leader} within {within:?}; lines: {seen:?}",
            self.what
        );
        seen
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_and_shell_examples_are_told_of_a_new_leader_without_polling() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    let me = (leader + 1) % 3;
    let url = format!("http://{}", c.peers[me].http);
    let name = |i: usize| c.peers[i].name.clone();
    let mut watchers = [
        Watcher::start(
            "leader_only.py --watch",
            "python3",
            "config/examples/leader_only.py",
            &url,
            &name(me),
        ),
        Watcher::start(
            "leader-only.sh --watch",
            "sh",
            "config/examples/leader-only.sh",
            &url,
            &name(me),
        ),
    ];
    for w in &mut watchers {
        let first = w.until_names(&name(leader), Duration::from_secs(10)).await;
        let line = first.last().cloned().unwrap_or_default();
        assert!(line.ends_with(" other"), "{}: {line}", w.what);
    }
    c.kill(leader);
    let (new, new_term) = c
        .new_leader(&c.all_but(leader), Duration::from_secs(5), term)
        .await;
    for w in &mut watchers {
        let seen = w.until_names(&name(new), Duration::from_secs(5)).await;
        let line = seen.last().cloned().unwrap_or_default();
        let mine = if new == me { " me" } else { " other" };
        assert!(line.ends_with(mine), "{}: {line}", w.what);
        if w.what.starts_with("leader_only.py") {
            // Python prints the term too: the new leadership's.
            assert_eq!(
                line.split_whitespace().nth(1),
                Some(new_term.to_string().as_str()),
                "{line}"
            );
        }
        eprintln!("{}: after the crash printed {seen:?}", w.what);
    }
}
