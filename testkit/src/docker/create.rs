//! Creating a cluster of containers: the layout every peer gets and how it learns its id and
//! finds the others ([`Discovery`]).
//!
//! Every peer runs restricted as the Kubernetes manifests restrict a pod: read-only root, no
//! capabilities, no new privileges, the image's non-root user, one named volume at `/data`.
//! It is on a `peers` network of its own /24 with a fixed address and the DNS name
//! `<name>.peers` (the headless Service's names), and publishes its application API on a
//! random loopback port of the host. With [`Spec::clients_network`] it is also on a second
//! network with a fixed address, on which the test asks its API, so that a peer cut off from
//! `peers` can still be asked. Names start with the run's id ([`super::cli::run_id`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::cli::{docker_ok, run_id, sweep_stale, try_command};
use super::cluster::{Cluster, Node, HTTP_PORT, PEER_DOMAIN, PEER_PORT, STOP_GRACE};
use crate::rng::Rng;

/// How the peers learn their id and find each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// As the pods of a StatefulSet: peers `elector-i`, the id read from the hostname, the
    /// peers found by DNS (`RAFT_ELECTOR_REPLICAS`, `RAFT_ELECTOR_PEER_DOMAIN`), with a peer
    /// secret.
    StatefulSet,
    /// Peers `peer-i`, given `--id` and a `--peers` list of fixed addresses.
    PeerList,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The image (an id or a tag).
    pub image: String,
    pub peers: usize,
    pub election: String,
    pub discovery: Discovery,
    /// `RAFT_ELECTOR_LOG` of every peer.
    pub log_filter: String,
    /// Also put every peer on a `clients` network, on which its API is asked.
    pub clients_network: bool,
    /// How long one question to a peer may take.
    pub ask_timeout: Duration,
}

impl Cluster {
    /// Creates the networks, volumes and containers (not started).
    pub async fn create(spec: &Spec) -> Cluster {
        sweep_stale();
        let run = run_id();
        let mut rng = Rng::fresh();
        let n = spec.peers;
        let stem = match spec.discovery {
            Discovery::StatefulSet => "elector",
            Discovery::PeerList => "peer",
        };
        let names: Vec<String> = (0..n).map(|i| format!("{stem}-{i}")).collect();
        let mut c = Cluster::unmade(spec, run, names.clone());
        // From here on, Drop removes whatever was created.
        let peers_base = create_network(&c.network, &mut rng).await;
        let clients_base = match &c.clients_network {
            Some(net) => Some(create_network(net, &mut rng).await),
            None => None,
        };
        let addr = |base: [u8; 3], i: usize| Ipv4Addr::new(base[0], base[1], base[2], 10 + i as u8);
        c.nodes = names
            .iter()
            .enumerate()
            .map(|(i, name)| Node {
                name: name.clone(),
                container: format!("{}-{name}", c.run),
                volume: format!("{}-{name}-data", c.run),
                peer_ip: addr(peers_base, i),
                client_ip: clients_base.map(|b| addr(b, i)),
            })
            .collect();
        let secret = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
        for i in 0..n {
            let node = &c.nodes[i];
            docker_ok(&["volume", "create", &node.volume]).await;
            let args = c.create_args(spec, i, &secret);
            docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
            if let (Some(net), Some(ip)) = (&c.clients_network, node.client_ip) {
                let ip = ip.to_string();
                docker_ok(&["network", "connect", "--ip", &ip, net, &node.container]).await;
                c.probe.set_addr(
                    i,
                    Some(SocketAddr::from((node.client_ip.expect("ip"), HTTP_PORT))),
                );
            }
        }
        c
    }

    /// Creates the cluster and starts every peer.
    pub async fn start(spec: &Spec) -> Cluster {
        let c = Cluster::create(spec).await;
        for i in 0..c.len() {
            c.start_peer(i).await;
        }
        c
    }

    /// `docker create` of peer `i`.
    fn create_args(&self, spec: &Spec, i: usize, secret: &str) -> Vec<String> {
        let node = &self.nodes[i];
        let mut args: Vec<String> = [
            "create",
            "--name",
            &node.container,
            "--hostname",
            &node.name,
            "--network",
            &self.network,
            "--ip",
            &node.peer_ip.to_string(),
            "--network-alias",
            &format!("{}.{PEER_DOMAIN}", node.name),
            "--volume",
            &format!("{}:/data", node.volume),
            "--publish",
            &format!("127.0.0.1::{HTTP_PORT}"),
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges:true",
            "--stop-timeout",
            &STOP_GRACE.as_secs().to_string(),
        ]
        .map(String::from)
        .to_vec();
        let mut env = vec![
            format!("RAFT_ELECTOR_LOG={}", spec.log_filter),
            "NO_COLOR=1".to_string(),
        ];
        let mut command = Vec::new();
        match spec.discovery {
            Discovery::StatefulSet => env.extend([
                format!("RAFT_ELECTOR_ELECTION={}", spec.election),
                format!("RAFT_ELECTOR_REPLICAS={}", spec.peers),
                format!("RAFT_ELECTOR_PEER_DOMAIN={PEER_DOMAIN}"),
                // Published ports reach the container's interfaces, not its loopback.
                format!("RAFT_ELECTOR_HTTP=0.0.0.0:{HTTP_PORT}"),
                format!("RAFT_ELECTOR_PEER_SECRET={secret}"),
            ]),
            Discovery::PeerList => {
                let list = self
                    .nodes
                    .iter()
                    .map(|n| format!("{}={}:{PEER_PORT}", n.name, n.peer_ip))
                    .collect::<Vec<_>>()
                    .join(",");
                command = vec![
                    "--election".into(),
                    spec.election.clone(),
                    "--id".into(),
                    node.name.clone(),
                    "--peers".into(),
                    list,
                    "--peer-listen".into(),
                    format!("0.0.0.0:{PEER_PORT}"),
                    "--http".into(),
                    format!("0.0.0.0:{HTTP_PORT}"),
                ];
            }
        }
        for e in env {
            args.extend(["--env".into(), e]);
        }
        args.push(self.image.clone());
        args.extend(command);
        args
    }
}

/// Creates a bridge network on a free /24 (fixed addresses need one); returns its first three
/// octets.
async fn create_network(name: &str, rng: &mut Rng) -> [u8; 3] {
    let mut last = String::new();
    for _ in 0..20 {
        let base = [10, 128 + rng.below(100) as u8, rng.below(256) as u8];
        let subnet = format!("{}.{}.{}.0/24", base[0], base[1], base[2]);
        let args = [
            "network", "create", "--driver", "bridge", "--subnet", &subnet, name,
        ];
        match try_command("docker", &args, &[]).await {
            Some(o) if o.status.success() => return base,
            Some(o) => last = String::from_utf8_lossy(&o.stderr).trim().to_string(),
            None => last = "timed out".into(),
        }
    }
    panic!("cannot create network {name}: {last}");
}
