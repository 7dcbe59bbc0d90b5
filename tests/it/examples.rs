//! The examples in config/examples against a live 3-peer cluster. The Java/Spring one is
//! compiled with javac against Debian's Spring 4.3 and Jackson jars (scripts/test.sh installs
//! them) and run: its `--check` says "this pod leads" on the leader's pod only, and as a Spring
//! context its `@Scheduled` job runs on the leader's pod. The push variants (`--watch`) of the
//! Python (blocking query of `/v1/leader`), shell (`curl -N` on `/sse`) and Java (blocking
//! query) examples print the leader at once and the new one after the leader's kill -9.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use testkit::{Ask, Cluster};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::spec;

/// Debian's jars the Java example needs (compile and run).
const JARS: [&str; 10] = [
    "spring3-context.jar",
    "spring3-beans.jar",
    "spring3-core.jar",
    "spring3-web.jar",
    "spring3-aop.jar",
    "spring3-expression.jar",
    "commons-logging.jar",
    "jackson-databind.jar",
    "jackson-core.jar",
    "jackson-annotations.jar",
];

/// Compiles the Java example into `out`; the class path to run it with.
fn compile_java(out: &Path) -> String {
    let mut cp = vec![out.display().to_string()];
    for jar in JARS {
        let path = Path::new("/usr/share/java").join(jar);
        assert!(
            path.exists(),
            "{} is missing: install libspring-context-java libspring-web-java libjackson2-databind-java (scripts/test.sh does)",
            path.display()
        );
        cp.push(path.display().to_string());
    }
    let cp = cp.join(":");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let javac = std::process::Command::new("javac")
        .arg("-d")
        .arg(out)
        .args(["-cp", &cp])
        .arg(repo.join("config/examples/java/LeaderOnlyJob.java"))
        .output()
        .expect("run javac (JDK 17)");
    assert!(
        javac.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&javac.stderr)
    );
    cp
}

/// One example started with `--watch` against peer `url`, as pod `me`.
struct Watcher {
    what: &'static str,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Watcher {
    fn start(what: &'static str, program: &str, script: &str, url: &str, me: &str) -> Watcher {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        Watcher::spawn(
            what,
            Command::new(program).arg(repo.join(script)).arg("--watch"),
            url,
            me,
        )
    }

    /// `cmd` (a `--watch` of an example), against peer `url` as pod `me`.
    fn spawn(what: &'static str, cmd: &mut Command, url: &str, me: &str) -> Watcher {
        let mut child = cmd
            .env("RAFT_ELECTOR_URL", url)
            .env("HOSTNAME", me)
            .stdout(Stdio::piped())
            // Its own process group, so that its children (curl) go with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
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
async fn the_python_shell_and_java_examples_are_told_of_a_new_leader_without_polling() {
    let classes = tempfile::tempdir().expect("temp dir");
    let cp = compile_java(classes.path());
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    let me = (leader + 1) % 3;
    let url = format!("http://{}", c.peers[me].http);
    let names: Vec<String> = c.peers.iter().map(|p| p.name.clone()).collect();
    let name = |i: usize| names[i].clone();
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
        Watcher::spawn(
            "LeaderOnlyJob --watch",
            Command::new("java")
                .args(["-cp", &cp, "com.example.jobs.LeaderOnlyJob"])
                .arg("--watch"),
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
        if !w.what.starts_with("leader-only.sh") {
            // Python and Java print the term too: the new leadership's.
            assert_eq!(
                line.split_whitespace().nth(1),
                Some(new_term.to_string().as_str()),
                "{line}"
            );
        }
        eprintln!("{}: after the crash printed {seen:?}", w.what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_spring_example_compiles_checks_the_leader_and_runs_its_job_on_the_leader_only() {
    let classes = tempfile::tempdir().expect("temp dir");
    let cp = compile_java(classes.path());
    let c = Cluster::start(spec(3));
    let (leader, _) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    for i in c.all() {
        let url = format!("http://{}", c.peers[i].http);
        let status = Command::new("java")
            .args(["-cp", &cp, "com.example.jobs.LeaderOnlyJob", "--check"])
            .env("RAFT_ELECTOR_URL", &url)
            .env("HOSTNAME", &c.peers[i].name)
            .status()
            .await
            .expect("run java");
        assert_eq!(
            status.success(),
            i == leader,
            "--check as {}: {status}",
            c.peers[i].name
        );
    }
    // As a Spring context on the leader's pod: its @Scheduled job runs at once (fixed rate).
    let url = format!("http://{}", c.peers[leader].http);
    let mut job = Watcher::spawn(
        "LeaderOnlyJob (Spring context)",
        Command::new("java").args(["-cp", &cp, "com.example.jobs.LeaderOnlyJob"]),
        &url,
        &c.peers[leader].name,
    );
    let lines = job
        .until_names(&c.peers[leader].name, Duration::from_secs(20))
        .await;
    let last = lines.last().cloned().unwrap_or_default();
    assert!(last.ends_with("leads: running the job"), "{lines:?}");
}
