//! Three raft-elector containers that see each other as the pods of a StatefulSet do: hostname
//! `elector-i` (the peer id, read from HOSTNAME), the peers found by DNS as
//! `elector-i.peers` on a private network (the headless Service's names), one named volume
//! per peer, the application API published on a random loopback port of the host, and the
//! restrictions of the Kubernetes manifests (read-only root, no capabilities, non-root user).
//!
//! Every object is named after the run ([`run_id`]), so that runs cannot collide; dropping
//! the cluster removes containers, network and volumes, after printing the containers' logs
//! when the test is failing.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use crate::docker::{docker, docker_ok, docker_quiet, image, run_id, sweep_stale};

/// Domain the peers are found under (`elector-i.peers`), as `--peer-domain`.
pub const PEER_DOMAIN: &str = "peers";

/// How long an HTTP question to a peer may take.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// What `GET /v1/leader` (or `raft-elector leader --json`) answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Answer {
    pub name: String,
    pub term: u64,
    pub is_leader: bool,
    pub id: String,
    pub role: String,
}

/// One peer container.
#[derive(Debug, Clone)]
pub struct Node {
    /// The peer's id and hostname, `elector-i`.
    pub name: String,
    pub container: String,
    pub volume: String,
}

/// Asks peers over their published application ports; cheap to clone into a sampling task.
#[derive(Clone)]
pub struct Probe {
    client: reqwest::Client,
    ports: Arc<Mutex<Vec<Option<SocketAddr>>>>,
}

impl Probe {
    /// The published application address of peer `i`, if it is running.
    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.ports.lock().expect("ports lock")[i]
    }

    /// Asks peer `i` who leads; `None` if it cannot be reached or answers nonsense.
    pub async fn ask(&self, i: usize) -> Option<Answer> {
        let addr = self.addr(i)?;
        let resp = self
            .client
            .get(format!("http://{addr}/v1/leader"))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// Asks every peer at once.
    pub async fn ask_all(&self, n: usize) -> Vec<Option<Answer>> {
        futures::future::join_all((0..n).map(|i| self.ask(i))).await
    }

    /// `GET path` on peer `i`: status and body.
    pub async fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        let addr = self.addr(i)?;
        let resp = self
            .client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }
}

/// The peer containers of one test.
pub struct Cluster {
    pub run: String,
    pub image: String,
    pub network: String,
    pub election: String,
    secret: String,
    pub nodes: Vec<Node>,
    pub probe: Probe,
}

impl Cluster {
    /// Creates the network and volumes and starts `n` peers at once.
    pub async fn start(n: usize) -> Cluster {
        sweep_stale();
        let image = image();
        let run = run_id();
        let network = format!("{run}-net");
        let nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                name: format!("elector-{i}"),
                container: format!("{run}-elector-{i}"),
                volume: format!("{run}-elector-{i}-data"),
            })
            .collect();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(ASK_TIMEOUT)
            .build()
            .expect("http client");
        let cluster = Cluster {
            secret: random_secret(),
            election: "containers".into(),
            probe: Probe {
                client,
                ports: Arc::new(Mutex::new(vec![None; n])),
            },
            run,
            image,
            network,
            nodes,
        };
        // From here on, Drop removes whatever was created.
        docker_ok(&["network", "create", &cluster.network]).await;
        for node in &cluster.nodes {
            docker_ok(&["volume", "create", &node.volume]).await;
        }
        for i in 0..n {
            cluster.create(i).await;
        }
        cluster
    }

    /// `docker run` of peer `i` (its container must not exist).
    async fn create(&self, i: usize) {
        let node = &self.nodes[i];
        let alias = format!("{}.{PEER_DOMAIN}", node.name);
        let volume = format!("{}:/data", node.volume);
        let env = [
            format!("RAFT_ELECTOR_ELECTION={}", self.election),
            format!("RAFT_ELECTOR_REPLICAS={}", self.nodes.len()),
            format!("RAFT_ELECTOR_PEER_DOMAIN={PEER_DOMAIN}"),
            // Published ports reach the container's interface, not its loopback.
            "RAFT_ELECTOR_HTTP=0.0.0.0:4040".to_string(),
            format!("RAFT_ELECTOR_PEER_SECRET={}", self.secret),
            "RAFT_ELECTOR_LOG=info,openraft=off,raft_elector=debug".to_string(),
            "NO_COLOR=1".to_string(),
        ];
        let mut args: Vec<&str> = vec![
            "run",
            "--detach",
            "--name",
            &node.container,
            "--hostname",
            &node.name,
            "--network",
            &self.network,
            "--network-alias",
            &alias,
            "--volume",
            &volume,
            "--publish",
            "127.0.0.1::4040",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges:true",
            "--stop-timeout",
            "10",
        ];
        for e in &env {
            args.extend(["--env", e.as_str()]);
        }
        args.push(&self.image);
        docker_ok(&args).await;
        self.refresh_port(i).await;
    }

    /// Reads the host port Docker published peer `i`'s API on (it changes on every start).
    pub async fn refresh_port(&self, i: usize) {
        let out = docker(&["port", &self.nodes[i].container, "4040/tcp"]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        let addr = text
            .lines()
            .find_map(|l| l.trim().parse::<SocketAddr>().ok());
        self.probe.ports.lock().expect("ports lock")[i] = addr;
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.nodes.len()).collect()
    }

    /// Index of a peer by its name.
    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("unknown peer {name:?}"))
    }

    pub async fn ask(&self, i: usize) -> Option<Answer> {
        self.probe.ask(i).await
    }

    pub async fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        self.probe.get(i, path).await
    }

    /// Asks peer `i` from inside its container (`raft-elector leader --json` through
    /// `docker exec`), which works while the container is cut off from every network.
    pub async fn ask_inside(&self, i: usize) -> Option<Answer> {
        let out = docker(&[
            "exec",
            &self.nodes[i].container,
            "/raft-elector",
            "leader",
            "--json",
            "--http",
            "127.0.0.1:4040",
            "--timeout",
            "1s",
        ])
        .await;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until every peer in `among` names the same leader in the same term, exactly that
    /// leader saying it leads; returns the leader's index and the term.
    pub async fn agreed_leader(&self, among: &[usize], timeout: Duration) -> (usize, u64) {
        self.agreed_leader_where(among, timeout, |_, _| true).await
    }

    /// Like [`Cluster::agreed_leader`], for an agreement that also satisfies `accept(leader, term)`.
    pub async fn agreed_leader_where(
        &self,
        among: &[usize],
        timeout: Duration,
        accept: impl Fn(usize, u64) -> bool,
    ) -> (usize, u64) {
        let deadline = Instant::now() + timeout;
        let mut last = Vec::new();
        while Instant::now() < deadline {
            let answers = futures::future::join_all(among.iter().map(|&i| self.probe.ask(i))).await;
            if let Some((leader, term)) = agreement(&self.nodes, among, &answers) {
                if accept(leader, term) {
                    return (leader, term);
                }
            }
            last = answers;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no (acceptable) agreed leader among {among:?} within {timeout:?}; last answers: {last:?}");
    }

    /// `docker kill` (SIGKILL) of peer `i`.
    pub async fn kill(&self, i: usize) {
        docker_ok(&["kill", &self.nodes[i].container]).await;
        self.probe.ports.lock().expect("ports lock")[i] = None;
    }

    /// `docker stop` (SIGTERM, then SIGKILL after 10 s) of peer `i`: how long the command took
    /// and the exit code. [`Cluster::exited_after`] tells when the process itself ended.
    pub async fn stop(&self, i: usize) -> (Duration, i64) {
        let t0 = Instant::now();
        docker_ok(&["stop", &self.nodes[i].container]).await;
        let took = t0.elapsed();
        self.probe.ports.lock().expect("ports lock")[i] = None;
        (took, self.exit_code(i).await)
    }

    /// How long after `since` peer `i`'s process ended, by Docker's record of its exit (the
    /// `docker stop` command itself also waits for Docker's clean-up, which can take seconds).
    pub async fn exited_after(&self, i: usize, since: SystemTime) -> Option<Duration> {
        let finished = docker_ok(&[
            "inspect",
            "--format",
            "{{.State.FinishedAt}}",
            &self.nodes[i].container,
        ])
        .await;
        let at = humantime::parse_rfc3339_weak(finished.trim_end_matches('Z')).ok()?;
        at.duration_since(since).ok()
    }

    pub async fn exit_code(&self, i: usize) -> i64 {
        let code = docker_ok(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            &self.nodes[i].container,
        ])
        .await;
        code.parse().expect("exit code")
    }

    /// `docker start` of the stopped peer `i`: same container, same volume.
    pub async fn restart(&self, i: usize) {
        docker_ok(&["start", &self.nodes[i].container]).await;
        self.refresh_port(i).await;
    }

    /// Cuts peer `i` off its network (it keeps only its loopback; its published port goes).
    pub async fn disconnect(&self, i: usize) {
        docker_ok(&[
            "network",
            "disconnect",
            &self.network,
            &self.nodes[i].container,
        ])
        .await;
        self.probe.ports.lock().expect("ports lock")[i] = None;
    }

    /// Connects peer `i` again, under its DNS name.
    pub async fn connect(&self, i: usize) {
        let alias = format!("{}.{PEER_DOMAIN}", self.nodes[i].name);
        docker_ok(&[
            "network",
            "connect",
            "--alias",
            &alias,
            &self.network,
            &self.nodes[i].container,
        ])
        .await;
        // Docker publishes the port anew, on another host port.
        self.refresh_port(i).await;
    }

    /// Everything peer `i`'s container logged, over all its starts.
    pub async fn logs(&self, i: usize) -> String {
        let out = docker(&["logs", &self.nodes[i].container]).await;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    }
}

/// The leader all `answers` agree on, if they do and exactly the leader says it leads.
pub fn agreement(
    nodes: &[Node],
    among: &[usize],
    answers: &[Option<Answer>],
) -> Option<(usize, u64)> {
    let first = answers.first()?.as_ref()?;
    let leader = nodes.iter().position(|n| n.name == first.name)?;
    for (&i, a) in among.iter().zip(answers) {
        let a = a.as_ref()?;
        if a.name != first.name || a.term != first.term || a.is_leader != (i == leader) {
            return None;
        }
    }
    among.contains(&leader).then_some((leader, first.term))
}

fn random_secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..2)
        .map(|_| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0);
            format!("{:016x}", h.finish())
        })
        .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                let out = std::process::Command::new("docker")
                    .args(["logs", "--tail", "60", &node.container])
                    .output();
                if let Ok(out) = out {
                    eprintln!(
                        "----- last lines of {} ({}) -----\n{}{}",
                        node.name,
                        node.container,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        for node in &self.nodes {
            docker_quiet(&["rm", "--force", "--volumes", &node.container]);
        }
        for node in &self.nodes {
            docker_quiet(&["volume", "rm", "--force", &node.volume]);
        }
        docker_quiet(&["network", "rm", &self.network]);
    }
}
