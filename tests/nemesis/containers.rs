//! The same cluster as containers on Docker networks, with the network faults made by Docker
//! and the kernel instead of proxies.
//!
//! Each peer is a container of the product image (docker/Dockerfile, built by
//! docker/build.sh) on two user-defined networks with fixed addresses: `peers`, which carries
//! Raft traffic, and `clients`, on which the test's clients ask `GET /v1/leader`, so that a
//! peer cut off from the others can still be asked. Faults:
//!
//! * kill -9: `docker kill --signal KILL`, then `docker start` (the data volume stays);
//! * pause: `docker pause` (the cgroup freezer), `docker unpause`;
//! * restart: `docker stop` (SIGTERM), `docker start`;
//! * leader isolated: `docker network disconnect` from `peers`, reconnected with its address;
//! * splits and bridges: iptables rules in the containers' network namespaces (`nsenter`),
//!   DROP (silent loss) or REJECT with a TCP reset;
//! * slow peer: `tc qdisc ... netem delay` on the container's `peers` interface, when the
//!   kernel has netem (sch_netem); otherwise this kind is skipped and the summary says so.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use crate::history::FaultKind;
use crate::proxy::Mode;
use crate::target::Target;

/// Every Docker object a run creates is named `<PREFIX><pid>-<random>...`.
const PREFIX: &str = "raft-elector-nemesis-";
const PEER_PORT: u16 = 4041;
const HTTP_PORT: u16 = 4040;
/// Upper bound on any single command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a command (bounded); returns its output, or `None` if it could not run in time.
async fn command(program: &str, args: &[&str]) -> Option<Output> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).kill_on_drop(true);
    tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .ok()?
        .ok()
}

/// Runs `docker args...`; panics with its stderr if it fails.
async fn docker_ok(args: &[&str]) -> String {
    let out = command("docker", args).await;
    match out {
        Some(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Some(o) => panic!(
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        None => panic!("docker {args:?} did not finish within {COMMAND_TIMEOUT:?}"),
    }
}

/// Runs `docker args...` and ignores a failure (clean-up, best effort).
async fn docker_quiet(args: &[&str]) {
    let _ = command("docker", args).await;
}

/// Whether Docker answers; `Err` says why not.
pub fn docker_available() -> Result<(), String> {
    match std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Builds the product image with docker/build.sh (a quick no-op when nothing changed) and
/// returns its id; `NEMESIS_IMAGE` names a ready image instead.
pub fn image() -> String {
    if let Ok(image) = std::env::var("NEMESIS_IMAGE") {
        return image;
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let iid = tempfile::NamedTempFile::new().expect("temp file");
    let out = std::process::Command::new(repo.join("docker/build.sh"))
        .arg("raft-elector:nemesis")
        .env("IIDFILE", iid.path())
        .output()
        .expect("run docker/build.sh");
    assert!(
        out.status.success(),
        "docker/build.sh failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let id = std::fs::read_to_string(iid.path()).expect("image id file");
    id.trim().to_string()
}

fn process_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// Removes containers and networks of earlier runs whose test process is gone (a test killed
/// by a timeout cannot clean up).
async fn sweep_stale() {
    let owner_dead = |name: &str| {
        name.strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
            .is_some_and(|pid| !process_alive(pid))
    };
    let filter = format!("name={PREFIX}");
    let containers = docker_ok(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]).await;
    for name in containers.lines().filter(|n| owner_dead(n)) {
        docker_quiet(&["rm", "-f", "-v", name]).await;
    }
    let networks = docker_ok(&[
        "network",
        "ls",
        "--filter",
        &filter,
        "--format",
        "{{.Name}}",
    ])
    .await;
    for name in networks.lines().filter(|n| owner_dead(n)) {
        docker_quiet(&["network", "rm", name]).await;
    }
}

/// A cluster of containers.
pub struct Docker {
    run: String,
    image: String,
    peers_net: String,
    clients_net: String,
    names: Vec<String>,
    containers: Vec<String>,
    peer_ips: Vec<Ipv4Addr>,
    client_ips: Vec<Ipv4Addr>,
    /// Peers currently disconnected from the `peers` network.
    disconnected: Vec<bool>,
    /// Peers with iptables rules or a netem qdisc to remove.
    touched: Vec<bool>,
    netem: bool,
    removed: bool,
}

impl Docker {
    /// Creates `n` containers of `image` (not started) and their networks.
    pub async fn new(n: usize, image: &str) -> Docker {
        sweep_stale().await;
        let rand = crate::rng::fresh_seed();
        let run = format!("{PREFIX}{}-{:06x}", std::process::id(), rand & 0xff_ffff);
        let peers_net = format!("{run}-peers");
        let clients_net = format!("{run}-clients");
        let peers_base = create_network(&peers_net, rand).await;
        let clients_base = create_network(&clients_net, rand >> 24).await;
        let names: Vec<String> = (0..n).map(|i| format!("peer-{i}")).collect();
        let addr = |base: [u8; 3], i: usize| Ipv4Addr::new(base[0], base[1], base[2], 10 + i as u8);
        let peer_ips: Vec<Ipv4Addr> = (0..n).map(|i| addr(peers_base, i)).collect();
        let client_ips: Vec<Ipv4Addr> = (0..n).map(|i| addr(clients_base, i)).collect();
        let list = names
            .iter()
            .zip(&peer_ips)
            .map(|(name, ip)| format!("{name}={ip}:{PEER_PORT}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut containers = Vec::new();
        let mut d = Docker {
            run: run.clone(),
            image: image.to_string(),
            peers_net,
            clients_net,
            names: names.clone(),
            containers: Vec::new(),
            peer_ips: peer_ips.clone(),
            client_ips: client_ips.clone(),
            disconnected: vec![false; n],
            touched: vec![false; n],
            netem: false,
            removed: false,
        };
        for i in 0..n {
            let container = format!("{run}-{}", names[i]);
            let peer_ip = peer_ips[i].to_string();
            let http = format!("0.0.0.0:{HTTP_PORT}");
            let listen = format!("0.0.0.0:{PEER_PORT}");
            docker_ok(&[
                "create",
                "--name",
                &container,
                "--network",
                &d.peers_net,
                "--ip",
                &peer_ip,
                "--env",
                "RAFT_ELECTOR_LOG=info,openraft=off",
                &d.image,
                "--election",
                "nemesis",
                "--id",
                &names[i],
                "--peers",
                &list,
                "--peer-listen",
                &listen,
                "--http",
                &http,
            ])
            .await;
            docker_ok(&[
                "network",
                "connect",
                "--ip",
                &client_ips[i].to_string(),
                &d.clients_net,
                &container,
            ])
            .await;
            containers.push(container);
        }
        d.containers = containers;
        d
    }

    async fn pid(&self, i: usize) -> Option<String> {
        let pid = docker_ok(&["inspect", "--format", "{{.State.Pid}}", &self.containers[i]]).await;
        (pid != "0" && !pid.is_empty()).then_some(pid)
    }

    /// Runs `program args...` in peer `i`'s network namespace.
    async fn in_netns(&self, i: usize, program: &str, args: &[&str]) -> bool {
        let Some(pid) = self.pid(i).await else {
            return false;
        };
        let mut all = vec!["-t", pid.as_str(), "-n", program];
        all.extend_from_slice(args);
        command("nsenter", &all)
            .await
            .is_some_and(|o| o.status.success())
    }

    /// The interface of peer `i` on the `peers` network.
    async fn peers_interface(&self, i: usize) -> Option<String> {
        let pid = self.pid(i).await?;
        let out = command(
            "nsenter",
            &["-t", &pid, "-n", "ip", "-o", "-4", "addr", "show"],
        )
        .await?;
        let ip = format!("{}/", self.peer_ips[i]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains(&ip))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(|s| s.trim_end_matches(':').to_string())
    }

    /// Whether `tc ... netem` works in a container's network namespace here.
    async fn probe_netem(&self, i: usize) -> bool {
        let Some(dev) = self.peers_interface(i).await else {
            return false;
        };
        let ok = self
            .in_netns(
                i,
                "tc",
                &["qdisc", "add", "dev", &dev, "root", "netem", "delay", "1ms"],
            )
            .await;
        if ok {
            self.in_netns(i, "tc", &["qdisc", "del", "dev", &dev, "root"])
                .await;
        }
        ok
    }
}

/// Creates a network on a free /24 subnet (fixed addresses need one); returns its first three
/// octets.
async fn create_network(name: &str, seed: u64) -> [u8; 3] {
    let mut rng = crate::rng::Rng::new(seed);
    let mut last = String::new();
    for _ in 0..20 {
        let base = [10, 128 + rng.below(100) as u8, rng.below(256) as u8];
        let subnet = format!("{}.{}.{}.0/24", base[0], base[1], base[2]);
        let out = command(
            "docker",
            &[
                "network", "create", "--driver", "bridge", "--subnet", &subnet, name,
            ],
        )
        .await;
        match out {
            Some(o) if o.status.success() => return base,
            Some(o) => last = String::from_utf8_lossy(&o.stderr).trim().to_string(),
            None => last = "timed out".into(),
        }
    }
    panic!("cannot create network {name}: {last}");
}

impl Target for Docker {
    fn len(&self) -> usize {
        self.names.len()
    }

    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn http(&self) -> Vec<SocketAddr> {
        self.client_ips
            .iter()
            .map(|ip| SocketAddr::from((*ip, HTTP_PORT)))
            .collect()
    }

    fn supports(&self, kind: FaultKind) -> bool {
        kind != FaultKind::SlowPeer || self.netem
    }

    fn describe(&self) -> String {
        format!(
            "containers of image {} on Docker networks {} and {}{}",
            self.image,
            self.peers_net,
            self.clients_net,
            if self.netem {
                ""
            } else {
                " (no netem in this kernel: no slow peer)"
            }
        )
    }

    async fn start(&mut self, i: usize) {
        docker_ok(&["start", &self.containers[i]]).await;
        if i == 0 && !self.netem {
            self.netem = self.probe_netem(0).await;
        }
    }

    async fn kill(&mut self, i: usize) {
        docker_quiet(&["unpause", &self.containers[i]]).await;
        docker_quiet(&["kill", "--signal", "KILL", &self.containers[i]]).await;
        // Wait (bounded) until it is down, so that a restart does not race the exit.
        for _ in 0..100 {
            let running = docker_ok(&[
                "inspect",
                "--format",
                "{{.State.Running}}",
                &self.containers[i],
            ])
            .await;
            if running != "true" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn pause(&mut self, i: usize) {
        docker_ok(&["pause", &self.containers[i]]).await;
    }

    async fn resume(&mut self, i: usize) {
        docker_ok(&["unpause", &self.containers[i]]).await;
    }

    async fn terminate(&mut self, i: usize, timeout: Duration) -> bool {
        let secs = timeout.as_secs().max(1).to_string();
        docker_ok(&["stop", "--time", &secs, &self.containers[i]]).await;
        docker_ok(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            &self.containers[i],
        ])
        .await
            == "0"
    }

    async fn terminate_all(&mut self, timeout: Duration) {
        let secs = timeout.as_secs().max(1).to_string();
        let mut args = vec!["stop", "--time", secs.as_str()];
        args.extend(self.containers.iter().map(String::as_str));
        docker_ok(&args).await;
    }

    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> String {
        let rule: &[&str] = match mode {
            Mode::Drop | Mode::Open => &["-j", "DROP"],
            Mode::Reject => &["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        };
        for (x, y) in a
            .iter()
            .flat_map(|&x| b.iter().map(move |&y| (x, y)))
            .filter(|(x, y)| x != y)
        {
            for (me, other) in [(x, y), (y, x)] {
                let src = self.peer_ips[other].to_string();
                let mut args = vec!["-I", "INPUT", "-s", src.as_str()];
                args.extend_from_slice(rule);
                if self.in_netns(me, "iptables", &args).await {
                    self.touched[me] = true;
                } else {
                    eprintln!(
                        "nemesis: could not add an iptables rule in {}",
                        self.names[me]
                    );
                }
            }
        }
        match mode {
            Mode::Reject => "iptables REJECT".into(),
            _ => "iptables DROP".into(),
        }
    }

    async fn isolate(&mut self, i: usize, _mode: Mode) -> String {
        docker_ok(&[
            "network",
            "disconnect",
            "--force",
            &self.peers_net,
            &self.containers[i],
        ])
        .await;
        self.disconnected[i] = true;
        "docker network disconnect".into()
    }

    async fn slow(&mut self, i: usize, delay: Duration) {
        let Some(dev) = self.peers_interface(i).await else {
            return;
        };
        let ms = format!("{}ms", delay.as_millis());
        if self
            .in_netns(
                i,
                "tc",
                &[
                    "qdisc", "replace", "dev", &dev, "root", "netem", "delay", &ms,
                ],
            )
            .await
        {
            self.touched[i] = true;
        }
    }

    async fn heal(&mut self) {
        for i in 0..self.containers.len() {
            if self.disconnected[i] {
                let ip = self.peer_ips[i].to_string();
                docker_ok(&[
                    "network",
                    "connect",
                    "--ip",
                    &ip,
                    &self.peers_net,
                    &self.containers[i],
                ])
                .await;
                self.disconnected[i] = false;
            }
            if self.touched[i] {
                self.in_netns(i, "iptables", &["-F", "INPUT"]).await;
                if let Some(dev) = self.peers_interface(i).await {
                    // Fails harmlessly when there is no netem qdisc.
                    self.in_netns(i, "tc", &["qdisc", "del", "dev", &dev, "root"])
                        .await;
                }
                self.touched[i] = false;
            }
        }
    }

    async fn log_tails(&mut self, lines: usize) -> String {
        let mut out = String::new();
        let tail = lines.to_string();
        for (name, c) in self.names.iter().zip(&self.containers) {
            let logs = command("docker", &["logs", "--tail", &tail, c]).await;
            let text = logs
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout).to_string()
                        + &String::from_utf8_lossy(&o.stderr)
                })
                .unwrap_or_default();
            out += &format!("----- last lines of {name} ({c}) -----\n{text}\n");
        }
        out
    }

    async fn keep(&mut self) -> Option<PathBuf> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", self.run))
            .tempdir()
            .ok()?
            .keep();
        for (name, c) in self.names.iter().zip(&self.containers) {
            if let Some(o) = command("docker", &["logs", c]).await {
                let mut text = o.stdout;
                text.extend_from_slice(&o.stderr);
                let _ = std::fs::write(dir.join(format!("{name}.log")), text);
            }
        }
        Some(dir)
    }

    async fn shutdown(&mut self) {
        for c in &self.containers {
            docker_quiet(&["rm", "-f", "-v", c]).await;
        }
        docker_quiet(&["network", "rm", &self.peers_net, &self.clients_net]).await;
        self.removed = true;
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // A failing test: remove what this run created (blocking, best effort).
        for c in &self.containers {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", "-v", c])
                .output();
        }
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &self.peers_net, &self.clients_net])
            .output();
    }
}
