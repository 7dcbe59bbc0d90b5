//! The openraft type configuration and the aliases every other module uses.
//!
//! Raft node ids are `u64`s derived from the peer names (see [`crate::config::node_id`]); the
//! human-readable name and the peer address travel in [`PeerNode`], which openraft stores in
//! the membership.

pub mod network;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// Raft node id: a stable hash of the peer name.
pub type NodeId = u64;

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

/// The application data replicated through the log. An elector replicates nothing but the
/// blank entries a new leader appends and membership entries, so the only command is a no-op
/// kept for forward compatibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Noop,
}

/// The response to applying a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Applied;

openraft::declare_raft_types!(
    /// Type configuration of the elector's Raft group.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = NodeId,
        Node = PeerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
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
