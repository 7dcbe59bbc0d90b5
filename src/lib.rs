//! raft-elector: leader election for the pods of a StatefulSet by their own Raft consensus.
//!
//! Each pod runs one peer next to its application. The peers elect a leader with openraft,
//! keep their Raft state in sled, and tell the local application who leads over HTTP, in the
//! format of the old `leader-elector` sidecar (`GET /` → `{"name":"<leader>"}`).
//!
//! # Layout
//!
//! * [`cli`]: the command line (clap); [`config`]: the validated configuration built from it.
//! * [`node`]: wires one peer together and runs it until its shutdown future completes;
//!   [`bootstrap`] forms the cluster with no manual step; [`handoff`] hands leadership over
//!   on shutdown; [`prevote`] keeps a peer that cannot win from raising its term, running the
//!   controllers of [`campaign`] (pre-vote, fast campaign, split-vote hold, check-quorum).
//! * [`leadership`]: the safety core, the leader lease and the follower's freshness window,
//!   checked when an answer is made. [`view`] turns it into the narrow interface the
//!   application API depends on.
//! * [`raft`]: openraft type configuration and aliases; [`raft::network`] is the outgoing
//!   peer client. [`protocol`] and [`wire`] define what peers send each other.
//! * [`store`]: the sled-backed log, vote and state machine, with real `fdatasync`.
//! * [`api::app`]: the application API; [`api::peer`]: incoming peer RPCs; [`auth`]: the
//!   HMAC that authenticates peers of one election.
//! * [`logging`]: text or JSON logs with the peer id and term; [`metrics`]: Prometheus metrics. [`client`]: `raft-elector leader`. [`demo`]: the local
//!   3-peer demo.
//!
//! The design notes live in `docs/DESIGN.md`.

// openraft's storage and configuration errors are large by design and are what its traits
// return; boxing them at every call site would only add noise.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod campaign;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod errors;
pub mod handoff;
pub mod leadership;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod prevote;
pub mod protocol;
pub mod raft;
pub mod store;
pub mod view;
pub mod wire;
