//! raft-elector: leader election for the pods of a StatefulSet by their own Raft consensus.
//!
//! Each pod runs one peer next to its application. The peers elect a leader with openraft,
//! keep their Raft state in sled, and tell the local application who leads over HTTP, in the
//! format of the old `leader-elector` sidecar (`GET /` → `{"name":"<leader>"}`).
//!
//! # Map
//!
//! Layers from bottom to top. A module may use the modules of its own layer and of the layers
//! below it, never one above (checked in the issue notes with the command in
//! `docs/DESIGN.md`, "Module layers").
//!
//! | layer | modules | what they own |
//! |-------|---------|---------------|
//! | 5 node | [`node`] | wiring one peer: start, wait, the one exit path; the listeners and their limits; the view the API reads |
//! | 4 api | [`api`] | the application-facing HTTP, against the [`api::view::NodeView`] and [`api::jobs::JobsView`] interfaces it declares |
//! | 3 leadership | [`leadership`] | the policies openraft 0.9 lacks: lease, pre-vote and campaigns, check-quorum, hand-off, bootstrap, membership (joins, leaves, learners, witnesses); the job ledger's claims as the leader appends them, and the scheduler; the network adapter that feeds the lease |
//! | 2 peer | [`peer`] | all that peers say to each other: messages, authentication, the streams that carry them and optional mutual TLS under them, the outgoing client and the incoming handlers (against [`peer::server::PeerService`]) |
//! | 1 state | [`store`], [`config`], [`metrics`] | the sled store; the validated configuration; the Prometheus registry |
//! | 0 base | [`raft`], [`beat`], [`members`], [`ledger`], [`wire`], [`errors`] | openraft's type configuration and ids; the shared beat of the periodic loops on tokio's timer grid, and openraft's runtime on it; the membership in force as openraft holds it; the job ledger's pure rules (who holds a slot); the bincode encoding shared by peer messages and disk records; error chains |
//!
//! The binary (`src/bin/raft-elector/`) adds what only it needs: the command line, logging
//! set-up, `raft-elector leader` and `raft-elector demo`. Design notes, with what could go
//! wrong and what prevents it, live in `docs/DESIGN.md`.

// openraft's storage and configuration errors are large by design and are what its traits
// return; boxing them at every call site would only add noise.
#![allow(clippy::result_large_err)]

pub mod beat;
pub mod errors;
pub mod ledger;
pub mod members;
pub mod raft;
pub mod wire;

pub mod config;
pub mod metrics;
pub mod store;

pub mod peer;

pub mod leadership;

pub mod api;

pub mod node;
