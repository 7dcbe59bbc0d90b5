//! The outgoing side of peer traffic: openraft's [`RaftNetwork`] over HTTP.
//!
//! Besides carrying RPCs, this is where the leader lease is fed: the send time of every
//! append-entries a follower accepts is recorded in [`Leadership`], and any answer that shows
//! a newer term revokes the lease at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{NetworkError, RemoteError};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    vote_for, vote_term, AppendRequest, AppendResponse, InstallSnapshotError, NodeId, PeerNode,
    RaftError, RpcError, SnapshotRequest, SnapshotResponse, TypeConfig, VoteRequest, VoteResponse,
};
use crate::auth::{self, PeerAuth, Signed};
use crate::leadership::Leadership;
use crate::metrics::Metrics;
use crate::protocol::{self, PeerStatus};
use crate::wire::{self, DecodeError};

/// Why a peer call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach peer at {addr}: {source}")]
    Transport {
        addr: String,
        source: reqwest::Error,
    },
    #[error("peer at {addr} refused the request ({status}): {reason}")]
    Refused {
        addr: String,
        status: u16,
        reason: String,
    },
    #[error("undecodable answer from peer at {addr}: {source}")]
    Decode { addr: String, source: DecodeError },
}

/// An HTTP client for peer RPCs, shared by all connections of a peer.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    election: String,
    me: String,
    me_id: NodeId,
    leadership: Arc<Leadership>,
    metrics: Arc<Metrics>,
    /// Signs every request when the election has a peer secret.
    auth: Option<Arc<PeerAuth>>,
    /// Pause before retrying a peer that openraft found unreachable.
    retry: Duration,
    /// Whether each peer answered its last RPC, so that only changes are logged: a dead peer
    /// would otherwise fill the log at the heartbeat rate.
    reachable: Arc<Mutex<HashMap<String, bool>>>,
}

impl PeerClient {
    pub fn new(
        election: &str,
        me: &str,
        leadership: Arc<Leadership>,
        metrics: Arc<Metrics>,
        connect_timeout: Duration,
        retry: Duration,
        auth: Option<Arc<PeerAuth>>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(PeerClient {
            http,
            election: election.to_string(),
            me: me.to_string(),
            me_id: crate::config::node_id(me),
            leadership,
            metrics,
            auth,
            retry,
            reachable: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Logs a peer becoming unreachable or reachable again, once per change.
    fn note_reachable(&self, peer: &str, ok: bool, error: Option<&CallError>) {
        let mut map = self.reachable.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.insert(peer.to_string(), ok);
        match (before, ok, error) {
            (Some(true) | None, false, Some(e)) => {
                tracing::warn!(peer, error = %crate::errors::chain(e), "peer unreachable")
            }
            (Some(false), true, _) => tracing::info!(peer, "peer reachable again"),
            _ => {}
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        to: &PeerNode,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let time_ms = auth::now_ms();
        let mut req = self
            .http
            .request(method.clone(), format!("http://{}{path}", to.addr))
            .header(protocol::ELECTION_HEADER, &self.election)
            .header(protocol::FROM_HEADER, &self.me)
            .header(protocol::PROTOCOL_HEADER, protocol::PROTOCOL_VERSION)
            .header(auth::TO_HEADER, &to.name)
            .header(auth::TIME_HEADER, time_ms.to_string());
        if let Some(a) = &self.auth {
            let signed = Signed {
                method: method.as_str(),
                path,
                election: &self.election,
                from: &self.me,
                to: &to.name,
                time_ms,
            };
            req = req.header(auth::MAC_HEADER, a.sign(&signed, &body));
        }
        req.body(body)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        addr: &str,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let transport = |source| CallError::Transport {
            addr: addr.to_string(),
            source,
        };
        let resp = req.timeout(timeout).send().await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let reason = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            return Err(CallError::Refused {
                addr: addr.to_string(),
                status: status.as_u16(),
                reason,
            });
        }
        wire::decode(&body).map_err(|source| CallError::Decode {
            addr: addr.to_string(),
            source,
        })
    }

    /// POSTs `body` to `path` on peer `to` and decodes the answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        to: &PeerNode,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let req = self.request(reqwest::Method::POST, to, path, wire::encode(body));
        self.send(&to.addr, req, timeout).await
    }

    /// Asks peer `to` about itself.
    pub async fn status(&self, to: &PeerNode, timeout: Duration) -> Result<PeerStatus, CallError> {
        let req = self.request(reqwest::Method::GET, to, protocol::STATUS_PATH, Vec::new());
        self.send(&to.addr, req, timeout).await
    }

    /// Asks peer `to` whether it would vote for this peer.
    pub async fn pre_vote(
        &self,
        to: &PeerNode,
        req: &crate::prevote::PreVoteRequest,
        timeout: Duration,
    ) -> Result<crate::prevote::PreVoteResponse, CallError> {
        self.call(to, protocol::PREVOTE_PATH, req, timeout).await
    }

    /// Asks peer `to` to campaign now (this leader is handing over to it).
    pub async fn handoff(&self, to: &PeerNode, timeout: Duration) -> Result<(), CallError> {
        self.call(to, protocol::HANDOFF_PATH, &(), timeout).await
    }
}

/// Builds one [`Connection`] per target for openraft.
pub struct NetworkFactory {
    pub client: PeerClient,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> Connection {
        Connection {
            client: self.client.clone(),
            target,
            node: node.clone(),
        }
    }
}

/// The RPC channel to one peer.
#[derive(Clone)]
pub struct Connection {
    client: PeerClient,
    target: NodeId,
    node: PeerNode,
}

impl Connection {
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
        match self
            .client
            .call::<_, Result<Resp, RaftError<E>>>(&self.node, path, body, timeout)
            .await
        {
            Ok(Ok(resp)) => {
                self.client.note_reachable(&self.node.name, true, None);
                Ok(resp)
            }
            Ok(Err(remote)) => Err(openraft::error::RPCError::RemoteError(
                RemoteError::new_with_node(self.target, self.node.clone(), remote),
            )),
            Err(e) => {
                self.client.metrics.rpc_error(&self.node.name, rpc_name);
                self.client.note_reachable(&self.node.name, false, Some(&e));
                tracing::debug!(peer = %self.node.name, rpc = rpc_name, error = %e, "peer RPC failed");
                Err(openraft::error::RPCError::Network(NetworkError::new(&e)))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.client.retry))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendRequest,
        option: RPCOption,
    ) -> Result<AppendResponse, RpcError> {
        let term = vote_term(&rpc.vote);
        let mine = rpc.vote.is_committed() && vote_for(&rpc.vote) == Some(self.client.me_id);
        // The lease counts from the moment the request leaves, never from when the answer came.
        let sent = Instant::now();
        // openraft 0.9 gives up on an append-entries after one heartbeat interval, but the
        // follower still accepts it when it arrives later, and so keeps refusing to elect
        // anyone else. A leader whose round trip exceeded the heartbeat interval would then
        // never count an acknowledgement, and the cluster would have no leader for as long as
        // the link stays slow. So the call runs in its own task for up to the lease, and an
        // acknowledgement that comes after openraft stopped waiting still feeds the lease.
        let ttl = option.hard_ttl().max(self.client.leadership.leader_lease());
        let path = if mine && self.client.leadership.lease_valid(term, sent) {
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
                    conn.client.leadership.on_ack(conn.target, term, sent)
                }
                AppendResponse::HigherVote(_) => conn.client.leadership.revoke(),
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
        let resp: SnapshotResponse = self
            .rpc(protocol::SNAPSHOT_PATH, "snapshot", &rpc, option.hard_ttl())
            .await?;
        if vote_term(&resp.vote) > vote_term(&rpc.vote) {
            self.client.leadership.revoke();
        }
        Ok(resp)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RpcError> {
        if vote_for(&rpc.vote) == Some(self.client.me_id)
            && self.client.metrics.campaign(vote_term(&rpc.vote))
        {
            {
                // openraft persisted this self-vote before sending any vote request.
                tracing::info!(term = vote_term(&rpc.vote), "campaigning: voted for self");
            }
        }
        let resp: VoteResponse = self
            .rpc(protocol::VOTE_PATH, "vote", &rpc, option.hard_ttl())
            .await?;
        if vote_term(&resp.vote) > vote_term(&rpc.vote) {
            self.client.leadership.revoke();
        }
        Ok(resp)
    }
}
