//! What this peer does with an admitted peer request: the lease bookkeeping around openraft's
//! RPCs, the pre-vote answer, the status record and a leader's hand-off request. The handlers
//! of [`crate::peer::server`] call it through [`PeerService`].

use std::sync::Arc;
use std::time::Instant;

use super::lease::Leadership;
use super::prevote;
use crate::config::Config;
use crate::peer::protocol::{PeerStatus, PreVoteRequest, PreVoteResponse};
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
        self.leadership.on_newer_term(term);
        let res = self.raft.vote(req).await;
        if let Ok(resp) = &res {
            self.leadership.on_vote_moved(vote_term(&resp.vote));
            if resp.vote_granted {
                // Logged after openraft persisted the vote: an audit trail of one vote per term.
                let candidate = candidate
                    .and_then(|id| self.config.name_of(id))
                    .unwrap_or("?");
                tracing::info!(term, candidate, "vote granted");
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

    async fn pre_vote(&self, req: PreVoteRequest) -> PreVoteResponse {
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

    /// The old leader grants its vote, so in a 3-peer cluster this takes about one round trip.
    async fn handoff(&self, from: NodeId) -> Result<(), HandoffRefused> {
        if self.raft.metrics().borrow().current_leader != Some(from) {
            return Err(HandoffRefused::NotMyLeader);
        }
        let name = self.config.name_of(from).unwrap_or("?");
        tracing::info!(from = %name, "leader hands over: campaigning now");
        self.leadership.forget_leader();
        self.raft
            .trigger()
            .elect()
            .await
            .map_err(|e| HandoffRefused::CannotCampaign(e.to_string()))
    }
}
