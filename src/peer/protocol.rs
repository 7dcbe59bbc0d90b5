//! Everything peers say to each other: paths, headers and the messages of their own (the
//! status record and pre-vote); openraft's RPCs travel as openraft defines them.
//!
//! Every peer request names its election and its sender in headers, which the receiver checks
//! before it reads the body: a peer of another election (or a stranger) is refused without its
//! payload ever being decoded. Bodies are bincode ([`crate::wire`]); a 200 answer carries the
//! openraft `Result`, any other status a one-line reason in plain text. Authentication headers
//! are [`super::auth`]'s.

use serde::{Deserialize, Serialize};

pub use crate::members::Standing;
use crate::raft::LogId;

/// Header naming the sender's election.
pub const ELECTION_HEADER: &str = "x-raft-elector-election";
/// Header naming the sending peer.
pub const FROM_HEADER: &str = "x-raft-elector-from";
/// Header carrying the protocol version.
pub const PROTOCOL_HEADER: &str = "x-raft-elector-protocol";
/// The protocol version spoken by this build.
pub const PROTOCOL_VERSION: &str = "1";

/// GET with `Upgrade: raft-elector-frames/1`: turns the connection into a peer stream, one
/// long-lived connection that carries every request of the opening peer as frames
/// ([`super::frames`]); a release before streams answers 404 and is spoken to over HTTP. The
/// query carries the opener's nonce (`?nonce=` and 32 hex digits), the answer's
/// [`NONCE_HEADER`] the other's.
pub const STREAM_PATH: &str = "/raft/v2/stream";
/// The `Upgrade` protocol of a peer stream.
pub const STREAM_UPGRADE: &str = "raft-elector-frames/1";
/// Header of the accepting peer's nonce in a stream's handshake.
pub const NONCE_HEADER: &str = "x-raft-elector-nonce";

pub const APPEND_PATH: &str = "/raft/v1/append";
/// The same, from a leader whose lease is valid as it sends: only such heartbeats let a
/// follower name the leader (a leader cut off from its quorum keeps sending to the followers
/// it still reaches, and they must not keep naming it).
pub const APPEND_LEASED_PATH: &str = "/raft/v1/append?leased=1";
/// The query that marks a leased append-entries.
pub const LEASED_QUERY: &str = "leased=1";
pub const VOTE_PATH: &str = "/raft/v1/vote";
pub const SNAPSHOT_PATH: &str = "/raft/v1/snapshot";
pub const STATUS_PATH: &str = "/raft/v1/status";
pub const HANDOFF_PATH: &str = "/raft/v1/handoff";
pub const PREVOTE_PATH: &str = "/raft/v1/prevote";

/// What a peer tells another about itself; used to bootstrap safely and by operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub election: String,
    pub peer: String,
    /// Fingerprint of the member names it was configured with.
    pub members_digest: u64,
    /// Whether it has Raft state (a vote, a log or a membership): a cluster exists.
    pub initialized: bool,
    pub term: u64,
    pub last_log_index: Option<u64>,
}

/// "Would you vote for me?" (see `docs/DESIGN.md`, pre-vote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    /// The candidate's last log id.
    pub last_log_id: Option<LogId>,
}

/// The answer to a [`PreVoteRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteResponse {
    pub granted: bool,
}

pub const JOIN_PATH: &str = "/raft/v1/join";
pub const LEAVE_PATH: &str = "/raft/v1/leave";
pub const INFO_PATH: &str = "/raft/v1/info";
/// GET: the peer's application health ([`AppHealthAnswer`]), asked by a leader whose own
/// application is unhealthy. A peer of an earlier release answers 404: not a target.
pub const APP_HEALTH_PATH: &str = "/raft/v1/app-health";

/// "Make me a member": sent by a peer that is not a member (a new pod, a pod that left) to any
/// peer it can reach; a follower forwards it to its leader. Idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The joining peer's name and peer address.
    pub name: String,
    pub addr: String,
    /// The joining peer is a witness (it votes, never leads).
    pub witness: bool,
}

/// "Remove me": sent by a peer shutting down, to its leader (a follower forwards it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveRequest {
    pub name: String,
}

/// What became of a join or a leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipAnswer {
    /// Done (committed) or nothing to do: the peer's standing now, with the membership's log
    /// index.
    Done { standing: Standing, index: u64 },
    /// Refused for good: a short code (the metric's label) and the reason (logged by both
    /// sides).
    Refused { code: String, reason: String },
    /// Not now (no leader known, a change in progress that did not end in time): retry.
    Later { reason: String },
}

/// A peer's application health: `None` when it runs without `--app-health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHealthAnswer {
    pub healthy: Option<bool>,
}

/// What a peer says about itself to members that probe it (roles and reachability shown by
/// `/v1/members`, and the hand-off's choice of target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub peer: String,
    pub witness: bool,
    /// The peer is shutting down (it may be leaving the membership). A leave request for a
    /// peer that answers `false` was sent by an earlier run of it: the leader refuses it.
    pub leaving: bool,
    pub term: u64,
    pub last_log_index: Option<u64>,
}

/// GET: what this peer's release supports ([`Features`]). A peer of a release before the job
/// ledger answers 404: the leader appends no claim until every member supports it.
pub const FEATURES_PATH: &str = "/raft/v1/features";
/// GET: the capabilities of this peer's release, names ([`CAPABILITIES`]); a release before
/// batched claims answers 404.
pub const CAPABILITIES_PATH: &str = "/raft/v1/capabilities";

/// What this release can do that an earlier one could not, by name. Only ever added to.
pub const CAPABILITIES: &[&str] = &[LEDGER, CLAIM_BATCHES];
/// It applies the job ledger's entries (as [`Features::ledger`] says).
pub const LEDGER: &str = "ledger";
/// It applies claims batched into one entry (`Command::Claims`) and the token floor that
/// comes with them.
pub const CLAIM_BATCHES: &str = "claim-batches";

/// POST: a claim of a job slot ([`ClaimRequest`]), forwarded by a follower to its leader; the
/// holder is the sender.
pub const CLAIM_PATH: &str = "/raft/v1/claim";
/// POST: the outcome of a granted slot ([`DoneRequest`]), forwarded to the leader.
pub const DONE_PATH: &str = "/raft/v1/done";

/// What a peer's release supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// It applies the job ledger's entries ([`crate::ledger`]).
    pub ledger: bool,
}

/// "Grant me this slot": the holder is the peer that sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub job: String,
    pub slot: String,
}

/// "This slot, granted with this token, ended so."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRequest {
    pub job: String,
    pub slot: String,
    pub token: u64,
    pub outcome: crate::ledger::Outcome,
    pub detail: String,
}

/// What became of a claim or a completion report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobAnswer {
    /// The claim's entry was committed and applied: this is what it decided.
    Claimed(crate::ledger::ClaimOutcome),
    /// The report's entry was committed and applied.
    Reported(crate::ledger::DoneOutcome),
    /// A record of missed slots was committed: how many were recorded (the leader's own
    /// scheduler; never sent between peers).
    Missed(usize),
    /// Not now (no leader, no quorum in time, a member of an earlier release): retry.
    Later { reason: String },
    /// Never (a bad key): the reason.
    Refused { reason: String },
}
