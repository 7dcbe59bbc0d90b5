//! Container tests: the image built by docker/build.sh, run as real containers by a real
//! Docker Engine, and the deployment files in docker/ and config/kubernetes/.
//!
//! They need Docker (and Docker Compose for the compose test). Without Docker they fail, so
//! that CI cannot pass without running them; a developer without Docker can set
//! RAFT_ELECTOR_SKIP_DOCKER=1 to skip them, with a message. The manifest validation needs
//! Python 3 with venv and PyPI access (or a venv already made by scripts/test.sh).
//!
//! .config/nextest.toml runs the container tests one at a time. The containers, the `docker`
//! CLI and the image under test come from the shared test kit (testkit/).

mod compose;
mod election;
mod failover;
mod figures;
mod manifests;
mod partition;
mod rolling;

use std::time::Duration;

use testkit::docker::{self, Discovery};

/// Three peers deployed as a StatefulSet, started; `None` when `test` is skipped (it says so)
/// for want of Docker.
pub async fn three_peers_or_skip(test: &str) -> Option<docker::Cluster> {
    if !docker::docker_or_skip(test) {
        return None;
    }
    Some(docker::Cluster::start(&statefulset(3)).await)
}

/// `n` peers of the image under test, deployed as a StatefulSet deploys them.
pub fn statefulset(n: usize) -> docker::Spec {
    docker::Spec {
        image: docker::image(),
        peers: n,
        election: "containers".into(),
        discovery: Discovery::StatefulSet,
        log_filter: "info,openraft=off,raft_elector=debug".into(),
        clients_network: false,
        ask_timeout: Duration::from_millis(500),
    }
}
