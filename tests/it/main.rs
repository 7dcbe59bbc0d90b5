//! Integration tests: real `raft-elector` processes on loopback.

mod harness;

mod api;
mod auth;
mod bad_input;
mod compaction;
mod crashes;
mod damaged;
mod election;
mod failover;
mod hostile;
mod pause;
mod restart;
mod shutdown;
