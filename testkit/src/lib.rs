//! The harness shared by raft-elector's tests (tests/it, tests/nemesis, tests/containers) and
//! its benchmark: real `raft-elector` processes and containers, asked over their real HTTP API,
//! with faults injected by real signals, proxies and kernel rules.
//!
//! The kit, from the bottom up (a module uses only those above it in this list):
//!
//! * [`release`]: the previous release's binary, built from this repository's history.
//! * [`ports`]: free loopback ports, claimed across processes with `flock`.
//! * [`hosts`]: a private `/etc/hosts` for child processes (a mount namespace each), for
//!   names that resolve only once the test publishes them.
//! * [`raw`]: raw TCP exchanges for hostile-client tests: bytes as they are, trickled heads,
//!   and whether the server closed a connection the client kept open.
//! * [`rng`]: the seeded random generator (SplitMix64) that makes schedules replayable.
//! * [`tls`]: a CA made at run time and the certificates it issues (peer TLS).
//! * [`logs`]: the tail of a log, under a heading, as a failing test prints it.
//! * [`metrics`]: one sample out of a Prometheus text.
//! * [`answer`]: [`Answer`], the JSON contract of `GET /v1/leader`.
//! * [`http`]: the HTTP client, `GET` of a path and the question "who leads?".
//! * [`jobs`]: the job ledger's API as a client uses it: claims, reports, the ledger, and
//!   the check that no slot was granted twice.
//! * [`sse`]: a Server-Sent Events reader (the push endpoints' tests).
//! * [`timeline`]: "who leads?" samples taken one after the other, and the promises that hold
//!   across all of them (one claimant at a time and per term, terms never going back).
//! * [`agree`]: [`agreement`], when answers agree on one leader, and [`Ask`], the waiting for
//!   it by anything that can ask its peers.
//! * [`proxy`]: the fault proxies: directed links between peers that drop, reset or delay.
//! * [`procs`]: child processes with a log and a data directory each, killed on drop.
//! * [`cluster`]: [`Cluster`], `raft-elector` processes on loopback (optionally behind the
//!   proxies); the binary under test is passed in ([`Spec::exe`]).
//! * [`docker`]: the `docker` CLI, the image under test and [`docker::Cluster`], containers on
//!   Docker networks with faults made in their network namespaces.
//! * [`target`]: [`Target`], what a fault injector does to either kind of cluster.
//!
//! Nothing here imports the product's library: the kit knows the binary only through its
//! command line, its HTTP API and its logs, as an operator does.

pub mod agree;
pub mod answer;
pub mod cluster;
pub mod docker;
pub mod hosts;
pub mod http;
pub mod jobs;
pub mod logs;
pub mod metrics;
pub mod ports;
pub mod procs;
pub mod proxy;
pub mod raw;
pub mod release;
pub mod rng;
pub mod sse;
pub mod target;
pub mod timeline;
pub mod tls;

pub use agree::{agreement, Agreed, Ask};
pub use answer::{Answer, Role};
pub use cluster::{Cluster, Members, Peer, Spec};
pub use metrics::metric;
pub use ports::{free_addr, free_port};
pub use proxy::Mode;
pub use rng::Rng;
pub use target::{Exit, FaultResult, Target};
