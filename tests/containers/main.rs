//! Container tests: the image built by docker/build.sh, run as real containers by a real
//! Docker Engine, and the deployment files in docker/ and config/kubernetes/.
//!
//! They need Docker (and Docker Compose for the compose test). Without Docker they fail, so
//! that CI cannot pass without running them; a developer without Docker can set
//! RAFT_ELECTOR_SKIP_DOCKER=1 to skip them, with a message. The manifest validation needs
//! Python 3 with venv and PyPI access (or a venv already made by scripts/test.sh).
//!
//! .config/nextest.toml runs the container tests one at a time.

mod cluster;
mod docker;

mod compose;
mod election;
mod failover;
mod figures;
mod manifests;
mod partition;
mod rolling;
