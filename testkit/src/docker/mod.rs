//! raft-elector in containers: the `docker` CLI ([`cli`]), one cluster of containers of the
//! image under test ([`cluster`]) and the network faults made inside its namespaces
//! ([`netns`]).

pub mod cli;
pub mod cluster;
pub mod create;
pub mod netns;
pub mod probe;

pub use cli::{docker, docker_ok, image, repo, require_docker};
pub use cluster::{Cluster, Node};
pub use create::{Discovery, Spec};
pub use probe::Probe;
