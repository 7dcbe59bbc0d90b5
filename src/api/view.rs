//! The narrow interface the application API is built on, declared by the API itself: "who
//! leads, as far as this peer can tell right now", the metrics text and resigning. Handlers
//! see nothing of Raft, the lease or sled, so they are tested against a fake view;
//! [`crate::node`] implements it over the running peer.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

/// This peer's role as Raft sees it (informational; `is_leader` is what counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Stopped,
}

/// One answer to "who leads?", made at the moment it is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// The leader's name; empty when no leader is known for sure.
    pub name: String,
    /// The term of that leadership (or this peer's current term when none is known): the
    /// fencing token applications can compare.
    pub term: u64,
    /// Whether this peer is the leader, checked against its lease at this moment.
    pub is_leader: bool,
    /// This peer's name.
    pub id: String,
    /// The election this peer belongs to.
    pub election: String,
    /// This peer's Raft role.
    pub role: Role,
    /// For how long, at most, this answer stays true: the leader's remaining lease, or how
    /// long a follower will keep naming the leader without hearing from it again.
    pub valid_ms: u64,
}

impl Observation {
    pub fn leader_known(&self) -> bool {
        !self.name.is_empty()
    }
}

/// A boxed future, so that the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the application API needs from a peer.
pub trait NodeView: Send + Sync + 'static {
    /// Who leads, checked now.
    fn observe(&self) -> Observation;
    /// The Prometheus metrics text.
    fn render_metrics(&self) -> String;
    /// Gives up leadership (if this peer leads) by handing it to another peer.
    fn resign(&self) -> BoxFuture<'_, Resigned>;
}

/// How a request to resign ended: the hand-off's own outcome (layer 3), which the API
/// reports as it is.
pub use crate::leadership::handoff::Outcome as Resigned;
