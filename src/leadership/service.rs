//! What this peer does with an admitted peer request: the lease bookkeeping around openraft's
//! RPCs, the pre-vote answer, the status record and a leader's hand-off request. The handlers
//! of [`crate::peer::server`] call it through [`PeerService`].

use std::sync::Arc;
use std::time::Instant;

use super::jobs::{Jobs, Unsupported};
use super::lease::Leadership;
use super::membership::Changes;
use super::prevote;
use crate::config::Config;
use crate::members::member_name;
use crate::peer::protocol::{
    AppHealthAnswer, ClaimRequest, DoneRequest, Features, JobAnswer, JoinRequest, LeaveRequest,
    MembershipAnswer, PeerInfo, PeerStatus, PreVoteRequest, PreVoteResponse,
};
use crate::peer::server::{HandoffRefused, PeerService};
use crate::raft::{
    has_state, vote_for, vote_term, AppendRequest, AppendResponse, InstallSnapshotError, NodeId,
    Raft, RaftError, SnapshotRequest, SnapshotResponse, VoteRequest, VoteResponse,
};
use crate::store::LogStore;

/// The local peer as its peers see it.
pub struct LocalPeer {
    pub raft: Raft,
    /// Read-only use: the last log id, for pre-votes.
    pub log: LogStore,
    pub leadership: Arc<Leadership>,
    pub config: Arc<Config>,
    pub changes: Arc<Changes>,
    pub jobs: Arc<Jobs>,
}

impl LocalPeer {
    /// Whether `id` votes in the membership in force here. Votes and pre-votes of anyone else
    /// (a removed peer campaigning with its old membership, a learner) are refused. A peer
    /// with no membership yet (a fresh one while the first cluster forms) does not judge.
    fn votes(&self, id: NodeId) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        let joint = m.membership_config.membership().get_joint_config();
        joint.iter().all(|c| c.is_empty()) || joint.iter().any(|c| c.contains(&id))
    }

    fn name_of(&self, id: NodeId) -> String {
        member_name(&self.raft.metrics().borrow(), id).unwrap_or_else(|| "?".into())
    }
}

impl PeerService for LocalPeer {
    async fn append(
        &self,
        req: AppendRequest,
        leased: bool,
        received: Instant,
    ) -> Result<AppendResponse, RaftError> {
        let (term, leader) = (vote_term(&req.vote), vote_for(&req.vote));
        // Before openraft sees a newer term, this peer stops claiming the older one.
        self.leadership.on_newer_term(term);
        let res = self.raft.append_entries(req).await;
        if let (
            Ok(
                AppendResponse::Success
                | AppendResponse::PartialSuccess(_)
                | AppendResponse::Conflict,
            ),
            Some(leader),
        ) = (&res, leader)
        {
            self.leadership.on_append(received);
            // Only heartbeats a leader sent while leased let a follower name it.
            if leased {
                self.leadership.on_heard(leader, term, received);
            }
        }
        res
    }

    async fn vote(&self, req: VoteRequest) -> Result<VoteResponse, RaftError> {
        let (term, candidate) = (vote_term(&req.vote), vote_for(&req.vote));
        if !candidate.is_some_and(|id| self.votes(id)) {
            tracing::debug!(term, candidate = ?candidate, "vote refused: the candidate is no voter here");
            // The candidate's own vote back, not granted: it neither counts nor moves anyone.
            return Ok(VoteResponse::new(req.vote, req.last_log_id, false));
        }
        self.leadership.on_newer_term(term);
        let res = self.raft.vote(req).await;
        if let Ok(resp) = &res {
            self.leadership.on_vote_moved(vote_term(&resp.vote));
            if resp.vote_granted {
                // Logged after openraft persisted the vote: an audit trail of one vote per term.
                let candidate = candidate.map_or_else(|| "?".into(), |id| self.name_of(id));
                tracing::info!(term, candidate = %candidate, "vote granted");
            }
        }
        res
    }

    /// A snapshot chunk. It does not let this peer name the leader: only leased heartbeats do.
    async fn snapshot(
        &self,
        req: SnapshotRequest,
    ) -> Result<SnapshotResponse, RaftError<InstallSnapshotError>> {
        self.leadership.on_newer_term(vote_term(&req.vote));
        self.raft.install_snapshot(req).await
    }

    async fn pre_vote(&self, req: PreVoteRequest, from: NodeId) -> PreVoteResponse {
        if !self.votes(from) {
            return PreVoteResponse { granted: false };
        }
        prevote::answer(&self.raft, &self.log, &self.leadership, &req).await
    }

    fn status(&self) -> PeerStatus {
        let m = self.raft.metrics().borrow().clone();
        PeerStatus {
            election: self.config.election.clone(),
            peer: self.config.me.name.clone(),
            members_digest: self.config.members_digest(),
            initialized: has_state(&m),
            term: m.current_term,
            last_log_index: m.last_log_index,
        }
    }

    fn app_health(&self) -> AppHealthAnswer {
        AppHealthAnswer {
            healthy: self.leadership.app().reported(),
        }
    }

    fn info(&self) -> PeerInfo {
        let m = self.raft.metrics().borrow().clone();
        PeerInfo {
            peer: self.config.me.name.clone(),
            witness: self.config.membership.witness,
            leaving: self.leadership.relinquished(),
            term: m.current_term,
            last_log_index: m.last_log_index,
        }
    }

    async fn join(&self, req: JoinRequest, from: String) -> MembershipAnswer {
        let node = crate::raft::PeerNode {
            name: req.name.clone(),
            addr: req.addr.clone(),
        };
        match self.jobs.may_join(&node).await {
            Ok(()) => self.changes.join(req, from).await,
            Err(e @ (Unsupported::EarlierRelease(_) | Unsupported::NoBatches(_))) => {
                MembershipAnswer::Refused {
                    code: "release".into(),
                    reason: format!("the job ledger holds grants: {e}"),
                }
            }
            Err(e @ (Unsupported::Unconfirmed(..) | Unsupported::BatchesUnconfirmed(..))) => {
                MembershipAnswer::Later {
                    reason: e.to_string(),
                }
            }
        }
    }

    fn features(&self) -> Features {
        Features { ledger: true }
    }

    async fn claim(&self, req: ClaimRequest, from: String) -> JobAnswer {
        self.jobs.claim(req, from, true).await
    }

    async fn done(&self, req: DoneRequest, _from: String) -> JobAnswer {
        self.jobs.done(req, true).await
    }

    async fn leave(&self, req: LeaveRequest, from: String) -> MembershipAnswer {
        self.changes.leave(req, from).await
    }

    /// The old leader grants its vote, so in a 3-peer cluster this takes about one round trip.
    /// A witness, a peer shutting down, one whose application is unhealthy and a non-voter
    /// refuse.
    async fn handoff(&self, from: NodeId) -> Result<(), HandoffRefused> {
        if self.raft.metrics().borrow().current_leader != Some(from) {
            return Err(HandoffRefused::NotMyLeader);
        }
        if self.config.membership.witness {
            return Err(HandoffRefused::Unwilling(
                "this peer is a witness: it never leads",
            ));
        }
        if self.leadership.relinquished() {
            return Err(HandoffRefused::Unwilling("this peer is shutting down"));
        }
        if !self.leadership.app().may_lead() {
            return Err(HandoffRefused::Unwilling(
                "this peer's application is unhealthy",
            ));
        }
        if !self.votes(self.config.me.id) {
            return Err(HandoffRefused::Unwilling("this peer is no voter"));
        }
        let name = self.name_of(from);
        tracing::info!(from = %name, "leader hands over: campaigning now");
        self.leadership.forget_leader();
        self.raft
            .trigger()
            .elect()
            .await
            .map_err(|e| HandoffRefused::CannotCampaign(e.to_string()))
    }
}
