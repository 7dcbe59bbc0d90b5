//! docker/compose.yaml as a user runs it: `up` elects a leader, the volumes keep the peers'
//! state across `down` and `up`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::docker::cli::{
    command, compose_command, docker, docker_ok, docker_quiet_blocking, image, require_docker,
    run_id, sweep_stale,
};
use testkit::{free_port, Answer, Ask};

/// One compose project, named after the run; `down -v` on drop.
struct Project {
    cmd: Vec<String>,
    name: String,
    env: Vec<(String, String)>,
    /// The host ports of the peers' application APIs (`elector-i` on `ports[i]`).
    ports: Vec<u16>,
    tag: String,
    client: reqwest::Client,
}

impl Project {
    fn new() -> Project {
        sweep_stale();
        let name = run_id();
        // A tag of its own for the image under test, so that compose finds it by name.
        let tag = format!("{name}:latest");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut env: Vec<(String, String)> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("ELECTOR_{i}_PORT"), p.to_string()))
            .collect();
        env.push(("RAFT_ELECTOR_IMAGE".into(), tag.clone()));
        env.push(("NO_COLOR".into(), "1".into()));
        Project {
            cmd: compose_command(),
            name,
            env,
            ports,
            tag,
            client: testkit::http::client(Duration::from_millis(500)),
        }
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/compose.yaml");
        let mut args: Vec<&str> = self.cmd[1..].iter().map(String::as_str).collect();
        args.extend(["--project-name", &self.name, "--file", file]);
        args.extend(rest);
        args
    }

    async fn run(&self, rest: &[&str]) -> String {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let out = command(&self.cmd[0], &self.args(rest), &env).await;
        assert!(
            out.status.success(),
            "{} {:?} failed: {}",
            self.cmd.join(" "),
            rest,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Container ids of the project.
    async fn containers(&self) -> Vec<String> {
        self.run(&["ps", "-q"])
            .await
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let args = self.args(&["down", "--volumes", "--remove-orphans", "--timeout", "10"]);
        let mut cmd = std::process::Command::new(&self.cmd[0]);
        cmd.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        if std::thread::panicking() {
            let logs = self.args(&["logs", "--no-color", "--tail", "40"]);
            let _ = std::process::Command::new(&self.cmd[0])
                .args(logs)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .status();
        } else {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        let _ = cmd.status();
        docker_quiet_blocking(&["image", "rm", &self.tag]);
    }
}

impl Ask for Project {
    fn names(&self) -> Vec<String> {
        (0..self.ports.len())
            .map(|i| format!("elector-{i}"))
            .collect()
    }

    async fn ask(&self, i: usize) -> Option<Answer> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ports[i]));
        testkit::http::ask(&self.client, addr).await
    }
}

impl Project {
    /// Waits for the three peers of the project to agree on a leader; returns its name and
    /// term.
    async fn agreed(&self, timeout: Duration) -> (String, u64) {
        let (leader, term) = self.agreed_leader(&[0, 1, 2], timeout).await;
        (self.names()[leader].clone(), term)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_up_elects_a_leader_and_keeps_state_across_down_up() {
    require_docker("compose_up_elects_a_leader_and_keeps_state_across_down_up");
    let image = image();
    let p = Project::new();
    docker_ok(&["tag", &image, &p.tag]).await;
    p.run(&["config", "--quiet"]).await;

    let t0 = Instant::now();
    p.run(&["up", "--detach"]).await;
    let up_returned = t0.elapsed();
    let (leader, term) = p.agreed(Duration::from_secs(30)).await;
    eprintln!(
        "compose up: returned after {up_returned:?}; {leader} leads (term {term}), agreed by all three {:?} after `up` began",
        t0.elapsed()
    );

    // Each app port is published on the host's loopback only.
    for i in 0..3 {
        let service = format!("elector-{i}");
        let published = p.run(&["port", &service, "4040"]).await;
        assert_eq!(published, format!("127.0.0.1:{}", p.ports[i]), "{service}");
    }
    // The health check (the `leader` subcommand, run inside the shell-less image) reports
    // healthy on all three.
    let ids = p.containers().await;
    assert_eq!(ids.len(), 3, "{ids:?}");
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let mut states = Vec::new();
        for id in &ids {
            let out = docker(&["inspect", "--format", "{{.State.Health.Status}}", id]).await;
            states.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        if states.iter().all(|s| s == "healthy") {
            break;
        }
        assert!(Instant::now() < deadline, "health states {states:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // `down` removes the containers but keeps the named volumes: the next `up` is the same
    // cluster, not a new one.
    p.run(&["down", "--timeout", "10"]).await;
    let t1 = Instant::now();
    p.run(&["up", "--detach"]).await;
    let (leader2, term2) = p.agreed(Duration::from_secs(30)).await;
    eprintln!(
        "compose down + up: {leader2} leads (term {term2}) after {:?}",
        t1.elapsed()
    );
    // Terms survive on the volumes: they never go back, and a term never has two leaders (the
    // old leader may come back in its own term when all peers stopped at once).
    assert!(
        term2 > term || (term2 == term && leader2 == leader),
        "after down/up: {leader2} in term {term2}, before: {leader} in term {term}"
    );
    let logs = p.run(&["logs", "--no-color"]).await;
    assert!(
        !logs.contains("fresh data directory"),
        "a peer lost its volume across down/up:\n{logs}"
    );
}
