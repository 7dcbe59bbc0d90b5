//! openraft's [`RaftNetwork`] over the peer client, and the place where the leader lease is
//! fed: the send time of every append-entries a follower accepts is recorded in
//! [`Leadership`], and any answer that shows a newer term revokes the lease at once (see
//! `docs/DESIGN.md`, the leader lease).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{NetworkError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::lease::Leadership;
use crate::metrics::Metrics;
use crate::peer::client::{CallError, PeerClient};
use crate::peer::contacts::Contacts;
use crate::peer::protocol;
use crate::raft::{
    vote_for, vote_term, AppendRequest, AppendResponse, InstallSnapshotError, NodeId, PeerNode,
    RaftError, RpcError, SnapshotRequest, SnapshotResponse, TypeConfig, Vote, VoteRequest,
    VoteResponse,
};

/// Why a silenced leader sends nothing.
#[derive(Debug, thiserror::Error)]
#[error("check-quorum silenced this leader: no quorum acknowledged it, so it sends one request per peer now and then, until its lease holds again or another leader is elected")]
struct Silenced;

/// What every connection to a peer shares.
struct Shared {
    client: PeerClient,
    me: NodeId,
    leadership: Arc<Leadership>,
    metrics: Arc<Metrics>,
    contacts: Arc<Contacts>,
    /// Pause before retrying a peer that openraft found unreachable.
    retry: Duration,
    /// Whether each peer answered its last RPC, so that only changes are logged: a dead peer
    /// would otherwise fill the log at the heartbeat rate.
    reachable: Mutex<HashMap<String, bool>>,
    /// Per peer, when the last request of a silenced leadership left.
    probed: Mutex<HashMap<NodeId, Instant>>,
}

impl Shared {
    /// Whether a request of this peer's leadership of `term` may leave for `target` now: any,
    /// unless check-quorum silenced it; then one per peer every
    /// [`Leadership::silenced_probe_every`]. Every append-entries a follower accepts renews its
    /// lease on this leader, as a heartbeat does, and openraft re-sends an unacknowledged
    /// entry at once, heartbeats off or not: unthrottled, a leader whose followers' answers
    /// are lost would keep them from electing for as long as the fault lasts. Yet a silenced
    /// leader may hold the entry its followers lack (then none of them can win a pre-vote
    /// against it): the probe delivers it once the link heals, and restores the lease.
    fn may_send(&self, target: NodeId, term: u64, now: Instant) -> bool {
        if !self.leadership.silenced(term) {
            return true;
        }
        let mut probed = self.probed.lock().unwrap_or_else(|p| p.into_inner());
        let every = self.leadership.silenced_probe_every();
        match probed.get(&target) {
            Some(last) if now.saturating_duration_since(*last) < every => false,
            _ => {
                probed.insert(target, now);
                true
            }
        }
    }

    /// Logs a peer becoming unreachable or reachable again, once per change.
    fn note_reachable(&self, peer: &str, ok: bool, error: Option<&CallError>) {
        let mut map = self.reachable.lock().unwrap_or_else(|p| p.into_inner());
        // The common case, nothing changed, allocates nothing.
        let before = match map.get_mut(peer) {
            Some(known) => Some(std::mem::replace(known, ok)),
            None => map.insert(peer.to_string(), ok),
        };
        match (before, ok, error) {
            (Some(true) | None, false, Some(e)) => {
                tracing::warn!(peer, error = %crate::errors::chain(e), "peer unreachable")
            }
            (Some(false), true, _) => tracing::info!(peer, "peer reachable again"),
            _ => {}
        }
    }
}

/// Builds one [`Connection`] per target for openraft.
pub struct NetworkFactory {
    shared: Arc<Shared>,
}

impl NetworkFactory {
    pub fn new(
        client: PeerClient,
        leadership: Arc<Leadership>,
        metrics: Arc<Metrics>,
        contacts: Arc<Contacts>,
        retry: Duration,
    ) -> Self {
        NetworkFactory {
            shared: Arc::new(Shared {
                client,
                me: leadership.me(),
                leadership,
                metrics,
                contacts,
                retry,
                reachable: Mutex::new(HashMap::new()),
                probed: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> Connection {
        Connection {
            shared: self.shared.clone(),
            target,
            node: node.clone(),
        }
    }
}

/// The RPC channel to one peer.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    target: NodeId,
    node: PeerNode,
}

impl Connection {
    /// An answer showing a newer term than the request's: stop claiming leadership now.
    fn revoke_if_newer(&self, answered: &Vote, asked: &Vote) {
        if vote_term(answered) > vote_term(asked) {
            self.shared.leadership.revoke();
        }
    }

    async fn rpc<Req: Serialize, Resp: DeserializeOwned, E: std::error::Error>(
        &self,
        path: &str,
        rpc_name: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, openraft::error::RPCError<NodeId, PeerNode, RaftError<E>>>
    where
        RaftError<E>: DeserializeOwned,
    {
        let shared = &self.shared;
        match shared
            .client
            .call::<_, Result<Resp, RaftError<E>>>(&self.node, path, body, timeout)
            .await
        {
            Ok(Ok(resp)) => {
                shared.contacts.heard(&self.node.name);
                shared.note_reachable(&self.node.name, true, None);
                Ok(resp)
            }
            Ok(Err(remote)) => Err(openraft::error::RPCError::RemoteError(
                RemoteError::new_with_node(self.target, self.node.clone(), remote),
            )),
            Err(e) => {
                shared.metrics.rpc_error(&self.node.name, rpc_name);
                shared.note_reachable(&self.node.name, false, Some(&e));
                tracing::debug!(peer = %self.node.name, rpc = rpc_name, error = %e, "peer RPC failed");
                Err(openraft::error::RPCError::Network(NetworkError::new(&e)))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.shared.retry))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendRequest,
        option: RPCOption,
    ) -> Result<AppendResponse, RpcError> {
        let term = vote_term(&rpc.vote);
        let mine = rpc.vote.is_committed() && vote_for(&rpc.vote) == Some(self.shared.me);
        if mine && !self.shared.may_send(self.target, term, Instant::now()) {
            return Err(openraft::error::RPCError::Unreachable(Unreachable::new(
                &Silenced,
            )));
        }
        // A message over the bound would be refused by the follower: openraft sends fewer
        // entries when told so (claims batched into entries make them larger than before).
        let entries = rpc.entries.len();
        if entries > 1 && crate::wire::encoded_len(&rpc) > crate::wire::MAX_MESSAGE {
            let hint = u64::try_from(entries / 2).unwrap_or(1).max(1);
            return Err(openraft::error::RPCError::PayloadTooLarge(
                openraft::error::PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        // The lease counts from the moment the request leaves, never from when the answer came.
        let sent = Instant::now();
        // openraft 0.9 gives up on an append-entries after one heartbeat interval, but the
        // follower still accepts it when it arrives later, and so keeps refusing to elect
        // anyone else. A leader whose round trip exceeded the heartbeat interval would then
        // never count an acknowledgement, and the cluster would have no leader for as long as
        // the link stays slow. So the call runs in its own task for up to the lease, and an
        // acknowledgement that comes after openraft stopped waiting still feeds the lease.
        let ttl = option.hard_ttl().max(self.shared.leadership.leader_lease());
        let path = if mine && self.shared.leadership.may_claim(term, sent) {
            protocol::APPEND_LEASED_PATH
        } else {
            protocol::APPEND_PATH
        };
        let conn = self.clone();
        let call = tokio::spawn(async move {
            let resp: AppendResponse = conn.rpc(path, "append", &rpc, ttl).await?;
            match &resp {
                AppendResponse::Success
                | AppendResponse::PartialSuccess(_)
                | AppendResponse::Conflict
                    if mine =>
                {
                    conn.shared.leadership.on_ack(conn.target, term, sent)
                }
                AppendResponse::HigherVote(_) => conn.shared.leadership.revoke(),
                _ => {}
            }
            Ok(resp)
        });
        match call.await {
            Ok(result) => result,
            Err(e) => Err(openraft::error::RPCError::Network(NetworkError::new(&e))),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: SnapshotRequest,
        option: RPCOption,
    ) -> Result<SnapshotResponse, RpcError<InstallSnapshotError>> {
        let mine = vote_for(&rpc.vote) == Some(self.shared.me);
        if mine
            && !self
                .shared
                .may_send(self.target, vote_term(&rpc.vote), Instant::now())
        {
            return Err(openraft::error::RPCError::Unreachable(Unreachable::new(
                &Silenced,
            )));
        }
        let resp: SnapshotResponse = self
            .rpc(protocol::SNAPSHOT_PATH, "snapshot", &rpc, option.hard_ttl())
            .await?;
        self.revoke_if_newer(&resp.vote, &rpc.vote);
        Ok(resp)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RpcError> {
        if vote_for(&rpc.vote) == Some(self.shared.me)
            && self.shared.metrics.campaign(vote_term(&rpc.vote))
        {
            // openraft persisted this self-vote before sending any vote request.
            tracing::info!(term = vote_term(&rpc.vote), "campaigning: voted for self");
        }
        let resp: VoteResponse = self
            .rpc(protocol::VOTE_PATH, "vote", &rpc, option.hard_ttl())
            .await?;
        self.revoke_if_newer(&resp.vote, &rpc.vote);
        Ok(resp)
    }
}
