//! Integration tests: real `raft-elector` processes on loopback, run by the shared test kit
//! (testkit/).

mod alerts;
mod api;
mod arm64;
mod auth;
mod bad_input;
mod check_quorum;
mod compaction;
mod crashes;
mod damaged;
mod demo;
mod election;
mod examples;
mod failover;
mod health;
mod hostile;
mod jobs;
mod membership;
mod membership_faults;
mod openapi;
mod pause;
mod prevote;
mod push;
mod recover;
mod restart;
mod schedules;
mod shutdown;
mod streams;
mod tls;
mod upgrade;
mod while_leader;
mod witness;

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_raft-elector");

/// `n` peers of election `test` running [`EXE`], logging at debug level.
pub fn spec(n: usize) -> testkit::Spec {
    let mut spec = testkit::Spec::new(EXE, n);
    spec.log_filter = Some("info,raft_elector=debug".into());
    spec
}

/// Writes `secret` to a file `name` in the cluster's directory, for `--peer-secret-file`.
pub fn secret_file(c: &testkit::Cluster, name: &str, secret: &str) -> String {
    let path = c.dir().join(name);
    std::fs::write(&path, format!("{secret}\n")).expect("write the secret");
    path.to_str().expect("utf-8").to_string()
}

/// Like [`spec`], every peer behind a fault proxy ([`testkit::proxy`]).
pub fn proxied_spec(n: usize) -> testkit::Spec {
    let mut spec = spec(n);
    spec.sender_header = Some(testkit::cluster::SENDER_HEADER.into());
    spec
}
