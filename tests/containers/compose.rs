//! docker/compose.yaml as a user runs it: `up` elects a leader, the volumes keep the peers'
//! state across `down` and `up`, and the cluster follows `up` and `stop` of the scale profile.

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
    /// A project of the three default services and the two of the scale profile.
    fn new() -> Project {
        sweep_stale();
        let name = run_id();
        // A tag of its own for the image under test, so that compose finds it by name.
        let tag = format!("{name}:latest");
        let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
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
            let logs = self.args(&["logs", "--no-color", "--tail", "300"]);
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

    /// The voters and learners that peer `i` lists in `/v1/members`, sorted.
    async fn members(&self, i: usize) -> Option<(Vec<String>, Vec<String>)> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ports[i]));
        let (status, body) = testkit::http::get(&self.client, addr, "/v1/members").await?;
        let v: serde_json::Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
        let mut voters = Vec::new();
        let mut learners = Vec::new();
        for m in v["members"].as_array()? {
            let id = m["id"].as_str()?.to_string();
            match m["role"].as_str()? {
                "learner" => learners.push(id),
                _ => voters.push(id),
            }
        }
        voters.sort();
        learners.sort();
        Some((voters, learners))
    }

    /// Waits until every peer in `peers` lists exactly `voters` as voters and no learner,
    /// and they agree on a leader among them.
    async fn converged(
        &self,
        peers: &[usize],
        voters: &[&str],
        timeout: Duration,
    ) -> (String, u64) {
        let deadline = Instant::now() + timeout;
        let want: Vec<String> = voters.iter().map(|v| v.to_string()).collect();
        loop {
            let mut seen = Vec::new();
            for &i in peers {
                seen.push(self.members(i).await);
            }
            if seen
                .iter()
                .all(|m| m.as_ref() == Some(&(want.clone(), vec![])))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the peers {peers:?} do not all list the voters {want:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
        let (leader, term) = self.agreed_leader(peers, left).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_follows_the_scale_profile_up_by_two_and_down_to_one() {
    require_docker("the_cluster_follows_the_scale_profile_up_by_two_and_down_to_one");
    let image = image();
    let p = Project::new();
    docker_ok(&["tag", &image, &p.tag]).await;
    p.run(&["up", "--detach"]).await;
    let first = ["elector-0", "elector-1", "elector-2"];
    let (leader, term) = p
        .converged(&[0, 1, 2], &first, Duration::from_secs(30))
        .await;
    eprintln!("3 voters, {leader} leads in term {term}");

    let t = Instant::now();
    p.run(&[
        "--profile",
        "scale",
        "up",
        "--detach",
        "elector-3",
        "elector-4",
    ])
    .await;
    let five = [
        "elector-0",
        "elector-1",
        "elector-2",
        "elector-3",
        "elector-4",
    ];
    let (leader, term5) = p
        .converged(&[0, 1, 2, 3, 4], &five, Duration::from_secs(30))
        .await;
    eprintln!(
        "up elector-3 elector-4: 5 voters after {:?}, {leader} leads in term {term5}",
        t.elapsed()
    );
    assert!(term5 >= term);

    let t = Instant::now();
    p.run(&["--profile", "scale", "stop", "elector-3", "elector-4"])
        .await;
    let (_, term3) = p
        .converged(&[0, 1, 2], &first, Duration::from_secs(30))
        .await;
    eprintln!("stop elector-3 elector-4: 3 voters after {:?}", t.elapsed());
    assert!(term3 >= term5);

    // Down to one, as `kubectl scale --replicas=1` with podManagementPolicy Parallel: both
    // removed peers stop at the same moment (one `stop` of two services); the leader among
    // them if it is one.
    let keep = ["elector-0", "elector-1", "elector-2"]
        .iter()
        .position(|n| **n != leader)
        .unwrap_or(0);
    let stop: Vec<&str> = first
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != keep)
        .map(|(_, n)| *n)
        .collect();
    let t = Instant::now();
    let mut args = vec!["stop"];
    args.extend(stop.iter().copied());
    p.run(&args).await;
    let (alone, term1) = p
        .converged(&[keep], &[first[keep]], Duration::from_secs(30))
        .await;
    eprintln!(
        "stop {stop:?}: {alone} is the only voter and leads after {:?}",
        t.elapsed()
    );
    assert_eq!(alone, first[keep]);
    assert!(term1 >= term3);

    // And back: the stopped peers start with their volumes and join again.
    p.run(&["start", stop[0], stop[1]]).await;
    p.converged(&[0, 1, 2], &first, Duration::from_secs(30))
        .await;
    let logs = p.run(&["logs", "--no-color"]).await;
    assert!(
        !logs.contains("could not leave the membership"),
        "a peer could not leave:\n{logs}"
    );
}
