//! The openraft type configuration, the aliases every other module uses, and the few facts
//! read from openraft's metrics that several modules need, computed in one place.
//!
//! Raft node ids are `u64`s derived from the peer names ([`node_id`]); the human-readable
//! name and the peer address travel in [`PeerNode`], which openraft stores in the membership.

use std::io::Cursor;

use openraft::ServerState;
use serde::{Deserialize, Serialize};

/// Raft node id: a stable hash of the peer name.
pub type NodeId = u64;

/// The Raft id of a peer name: a stable 64-bit hash, the same on every peer and every version.
pub fn node_id(name: &str) -> NodeId {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// What openraft keeps for each member: its name and its peer (Raft) address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// The peer's name, e.g. the pod name `web-0`.
    pub name: String,
    /// `host:port` of the peer listener; a DNS name in Kubernetes, never a pod IP.
    pub addr: String,
}

impl std::fmt::Display for PeerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

/// The application data replicated through the log: the blank entries a new leader appends
/// and membership entries are openraft's; the elector's own are the job ledger's claims and
/// completions ([`crate::ledger`]). Variants are only ever added at the end: bincode encodes
/// the variant's position, and a peer of an earlier release must never be sent one it does not
/// know (the leader checks every member's release first, `crate::jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Noop,
    Claim(crate::ledger::Claim),
    Done(crate::ledger::Done),
    Missed(crate::ledger::Missed),
    /// Claims batched into one entry by a leader whose members all apply them
    /// (`crate::leadership::jobs`); each is decided as a [`Command::Claim`] would be, in order.
    Claims(Vec<crate::ledger::Claim>),
}

/// The response to applying a [`Command`] (kept in memory by the leader that appended it;
/// never sent between peers nor stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Applied {
    #[default]
    Nothing,
    Claim(crate::ledger::ClaimOutcome),
    Done(crate::ledger::DoneOutcome),
    /// How many slots were recorded as missed.
    Missed(usize),
    /// The outcome of each claim of a [`Command::Claims`], in order.
    Claims(Vec<crate::ledger::ClaimOutcome>),
}

openraft::declare_raft_types!(
    /// Type configuration of the elector's Raft group.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = NodeId,
        Node = PeerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = crate::beat::GridRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Vote = openraft::Vote<NodeId>;
pub type LogId = openraft::LogId<NodeId>;
pub type Membership = openraft::Membership<NodeId, PeerNode>;
pub type StoredMembership = openraft::StoredMembership<NodeId, PeerNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, PeerNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, PeerNode>;
/// The part of openraft's metrics that changes only with the server's state, leader, vote or
/// membership: openraft publishes it only when it changed, while [`RaftMetrics`] goes out at
/// every turn of its core (on a leader, each replication acknowledgement). Loops that care only
/// about this part watch it and wake that much less.
pub type ServerMetrics = openraft::metrics::RaftServerMetrics<NodeId, PeerNode>;

pub type AppendRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
pub type AppendResponse = openraft::raft::AppendEntriesResponse<NodeId>;
pub type VoteRequest = openraft::raft::VoteRequest<NodeId>;
pub type VoteResponse = openraft::raft::VoteResponse<NodeId>;
pub type SnapshotRequest = openraft::raft::InstallSnapshotRequest<TypeConfig>;
pub type SnapshotResponse = openraft::raft::InstallSnapshotResponse<NodeId>;

pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
pub type RpcError<E = openraft::error::Infallible> =
    openraft::error::RPCError<NodeId, PeerNode, RaftError<E>>;
pub type InstallSnapshotError = openraft::error::InstallSnapshotError;

/// The term a vote belongs to.
pub fn vote_term(vote: &Vote) -> u64 {
    vote.leader_id().get_term()
}

/// The node a vote was cast for, if any.
pub fn vote_for(vote: &Vote) -> Option<NodeId> {
    vote.leader_id().voted_for()
}

/// Whether a node has any Raft state (a vote, a log or a membership): a cluster exists.
pub fn has_state(m: &RaftMetrics) -> bool {
    m.current_term > 0
        || m.last_log_index.is_some()
        || m.membership_config
            .membership()
            .voter_ids()
            .next()
            .is_some()
}

/// What openraft says about this peer at one moment, read once from its metrics.
///
/// openraft's own view is never enough to tell the application "I lead": it keeps a leader
/// that lost its quorum `Leader`, and brings a restarted leader back as `Leader` at once. The
/// lease ([`crate::leadership::Leadership`]) decides that. The predicates below name the
/// weaker questions the controllers ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftStatus {
    pub state: ServerState,
    pub term: u64,
    pub vote: Vote,
    pub leader: Option<NodeId>,
}

impl RaftStatus {
    pub fn of(raft: &Raft) -> Self {
        Self::from_metrics(&raft.metrics().borrow())
    }

    pub fn from_metrics(m: &RaftMetrics) -> Self {
        RaftStatus {
            state: m.state,
            term: m.current_term,
            vote: m.vote,
            leader: m.current_leader,
        }
    }

    /// The same from [`ServerMetrics`] (openraft's `current_term` is its vote's term).
    pub fn from_server(m: &ServerMetrics) -> Self {
        RaftStatus {
            state: m.state,
            term: vote_term(&m.vote),
            vote: m.vote,
            leader: m.current_leader,
        }
    }

    /// openraft's state is `Leader` (possibly cut off from its quorum).
    pub fn raft_leader(&self) -> bool {
        self.state == ServerState::Leader
    }

    /// openraft's state is `Leader` and it reports this peer as the current leader: there is
    /// a leadership to hand over.
    pub fn reported_leader(&self, me: NodeId) -> bool {
        self.raft_leader() && self.leader == Some(me)
    }

    /// openraft's state is `Leader` with this peer's own committed vote: it won the election
    /// of this term. It may claim leadership only while its lease also holds.
    pub fn elected(&self, me: NodeId) -> bool {
        self.raft_leader() && self.vote.is_committed() && vote_for(&self.vote) == Some(me)
    }
}
