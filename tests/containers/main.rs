//! Container tests: the image built by docker/build.sh, run as real containers by a real
//! Docker Engine, and the deployment files in docker/ and config/kubernetes/.
//!
//! They need Docker (and Docker Compose for the compose test). Without Docker they fail, so
//! that CI cannot pass without running them; they never skip themselves. A developer without
//! Docker runs `RAFT_ELECTOR_SKIP_DOCKER=1 scripts/test.sh`, which leaves them out of the run
//! (nextest's `no-docker` profile in .config/nextest.toml) so that they show as skipped. The manifest validation needs
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

/// Three peers deployed as a StatefulSet, started; `test` fails, saying why, without Docker.
pub async fn three_peers(test: &str) -> docker::Cluster {
    docker::require_docker(test);
    docker::Cluster::start(&statefulset(3)).await
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
