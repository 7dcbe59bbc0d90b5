//! Integration tests: real `raft-elector` processes on loopback.

mod harness;

mod api;
mod bad_input;
mod election;
mod failover;
mod pause;
mod restart;
mod shutdown;
