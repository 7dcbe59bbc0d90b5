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
        .arg(repo.join("config/examples/java/SlotClaims.java"))
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
            // Python and Java print the term too: a new leadership's. The same peer may have
            // won a later term as well before the survivors agreed (a loaded machine); the
            // watchers print only when the name changes, so any term after the old one and up
            // to the agreed one is right.
            let printed: Option<u64> = line.split_whitespace().nth(1).and_then(|t| t.parse().ok());
            assert!(
                printed.is_some_and(|t| t > term && t <= new_term),
                "{line}: the term is not in {}..={new_term}",
                term + 1
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_shell_and_java_examples_run_a_claimed_slot_on_one_pod_only() {
    let classes = tempfile::tempdir().expect("temp dir");
    let cp = compile_java(classes.path());
    let c = Cluster::start(spec(3));
    c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = repo.join("config/examples/leader_only.py");
    let sh = repo.join("config/examples/leader-only.sh");
    for (what, slot) in [
        ("python", "2026-12-03T12:00:00Z"),
        ("shell", "2026-12-03T12:01:00Z"),
        ("java", "2026-12-03T12:02:00Z"),
    ] {
        let mut ran = Vec::new();
        for round in 0..2 {
            for i in c.all() {
                let mut cmd = match what {
                    "python" => {
                        let mut c = Command::new("python3");
                        c.arg(&py).args(["--claim", "mail", slot]);
                        c
                    }
                    "shell" => {
                        let mut c = Command::new("sh");
                        c.arg(&sh).args(["--claim", "mail", slot]);
                        c
                    }
                    _ => {
                        let mut c = Command::new("java");
                        c.args([
                            "-cp",
                            &cp,
                            "com.example.jobs.LeaderOnlyJob",
                            "--claim",
                            "mail",
                            slot,
                        ]);
                        c
                    }
                };
                let out = cmd
                    .env("RAFT_ELECTOR_URL", format!("http://{}", c.peers[i].http))
                    .env("HOSTNAME", &c.peers[i].name)
                    .output()
                    .await
                    .expect("run the example");
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                match out.status.code() {
                    Some(0) => {
                        assert!(text.contains("running the job"), "{what}: {text}");
                        ran.push((round, i));
                    }
                    Some(1) => assert!(text.contains("is held by"), "{what}: {text}"),
                    other => panic!(
                        "{what} on peer-{i}: exit {other:?}: {text} {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                }
            }
        }
        // One pod is granted the slot; asked again in the second round, it gets its own
        // grant back and nobody else does.
        assert_eq!(ran.len(), 2, "{what}: {ran:?}");
        assert_eq!(ran[0].1, ran[1].1, "{what}: {ran:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_mode_example_endpoint_runs_each_slot_on_the_leader_s_pod_once() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut s = spec(3);
    s.flags.extend(["--job".into(), "mail=* * * * * *".into()]);
    let mut c = Cluster::new(s);
    let mut endpoints = Vec::new();
    for p in &mut c.peers {
        let port = testkit::free_port();
        let mut child = Command::new("python3")
            .arg(repo.join("config/examples/job_endpoint.py"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the endpoint");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        endpoints.push((child, lines));
        p.extra.extend([
            "--job-url".into(),
            format!("mail=http://127.0.0.1:{port}/jobs/mail"),
        ]);
    }
    c.spawn_all();
    c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    // Every endpoint's lines, read until 4 runs in all were seen.
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let readers = endpoints.iter_mut().map(|(_, lines)| async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.lock().expect("lock").push(line);
        }
    });
    let all = futures::future::join_all(readers);
    let enough = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while seen.lock().expect("lock").len() < 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "runs: {:?}",
                seen.lock().expect("lock")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = all => panic!("the endpoints ended"),
        () = enough => {}
    }
    let runs = seen.lock().expect("lock").clone();
    let mut slots: Vec<&str> = runs
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap_or(""))
        .collect();
    assert!(
        runs.iter().all(|l| l.starts_with("ran mail 20")),
        "{runs:?}"
    );
    let n = slots.len();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), n, "a slot ran twice: {runs:?}");
}
