//! The narrow interface the application API is built on, declared by the API itself: "who
//! leads, as far as this peer can tell right now", the metrics text and resigning. Handlers
//! see nothing of Raft, the lease or sled, so they are tested against a fake view;
//! [`crate::node`] implements it over the running peer.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use serde::Serialize;

/// This peer's role as Raft sees it (informational; `is_leader` is what counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    #[default]
    Follower,
    Candidate,
    Learner,
    Stopped,
}

/// One answer to "who leads?", made at the moment it is asked. The default names nobody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
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
    /// Voters of the membership in force, as this peer knows it.
    pub voters: usize,
    /// With `--app-health`: whether this peer's application is healthy (absent without). A
    /// leader that says `false` found no peer with a healthy application to hand over to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_healthy: Option<bool>,
    /// This peer is a learner that will be promoted once caught up (the cluster has fewer
    /// voters than its cap): not ready yet, so that a rolling update waits for it.
    #[serde(skip)]
    pub awaiting_promotion: bool,
}

impl Observation {
    pub fn leader_known(&self) -> bool {
        !self.name.is_empty()
    }

    /// What `/readyz` says: a leader is known and this peer is not waiting to become a voter.
    pub fn ready(&self) -> bool {
        self.leader_known() && !self.awaiting_promotion
    }
}

/// What the push source publishes: the observation made when the leader, the term or this
/// peer's role last changed, and when the leader's name last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub obs: Observation,
    /// When the leader's name last changed, as this peer saw it (kept in memory only: after a
    /// restart, the time this peer first named a leader, or its start while it names none).
    pub last_update: SystemTime,
}

impl Published {
    /// What a change is: the leader, the term or this peer's role (not `valid_ms`).
    pub fn key(&self) -> (&str, u64, bool, Role) {
        key(&self.obs)
    }

    /// `last_update` in RFC 3339 (UTC, milliseconds), as nais/elector gives it.
    pub fn last_update_rfc3339(&self) -> String {
        humantime::format_rfc3339_millis(self.last_update).to_string()
    }
}

/// The part of an observation whose change is pushed.
pub fn key(obs: &Observation) -> (&str, u64, bool, Role) {
    (obs.name.as_str(), obs.term, obs.is_leader, obs.role)
}

/// A member's role in `/v1/members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Voter,
    Learner,
    /// A voter that never leads.
    Witness,
}

/// One member, as this peer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: String,
    pub address: String,
    pub role: MemberRole,
    /// This peer heard from it lately (itself: always).
    pub reachable: bool,
    /// How long ago this peer last heard from it (0 for itself; null if never).
    pub last_contact_ms: Option<u64>,
}

/// The membership in force on this peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembersAnswer {
    /// Log index of the membership entry (null before the first cluster exists).
    pub index: Option<u64>,
    /// Log index of the last entry this peer applied (null before any): applied entries are
    /// committed, so the membership is committed once `applied >= index`.
    pub applied: Option<u64>,
    pub voters: usize,
    pub learners: usize,
    /// A joint change is under way.
    pub joint: bool,
    pub members: Vec<Member>,
}

/// A boxed future, so that the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the application API needs from a peer.
pub trait NodeView: Send + Sync + 'static {
    /// Who leads, checked now.
    fn observe(&self) -> Observation;
    /// The Prometheus metrics text.
    fn render_metrics(&self) -> String;
    /// The membership in force, with reachability.
    fn members(&self) -> MembersAnswer;
    /// Gives up leadership (if this peer leads) by handing it to another peer.
    fn resign(&self) -> BoxFuture<'_, Resigned>;
    /// The pushed state: changes only when the leader, the term or this peer's role does (a
    /// reader that falls behind sees only the newest). Closed when the peer stops.
    fn subscribe(&self) -> watch::Receiver<Published>;
}

/// How a request to resign ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resigned {
    /// This peer did not lead: nothing to hand over.
    NotLeader,
    /// Another peer leads now.
    HandedOver {
        to: String,
        term: u64,
        elapsed: Duration,
    },
    /// No other peer took over in time; this peer still leads.
    TimedOut,
    /// The election has a single peer: there is nobody to hand over to.
    Alone,
}
