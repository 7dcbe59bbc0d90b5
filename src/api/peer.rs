//! The incoming side of peer traffic: openraft's RPCs, the status used at bootstrap, and the
//! hand-off request of a leader that shuts down.
//!
//! Requests are checked before their body is read: the protocol version, the election name
//! and the sender must match, or the request is refused (and counted) without decoding.
//! Before a request that carries a newer term reaches openraft, the leader lease is revoked
//! (see [`crate::leadership`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use super::checks;
use crate::auth::{self, PeerAuth, Signed};
use crate::leadership::Leadership;
use crate::metrics::Metrics;
use crate::prevote::{self, PreVoteRequest};
use crate::protocol::{self, PeerStatus};
use crate::raft::{
    vote_for, vote_term, AppendRequest, AppendResponse, Raft, SnapshotRequest, VoteRequest,
};
use crate::store::LogStore;
use crate::wire;

/// What the peer handlers share.
pub struct PeerState {
    pub raft: Raft,
    /// Read-only use: the last log id, for pre-votes.
    pub log: LogStore,
    pub leadership: Arc<Leadership>,
    pub metrics: Arc<Metrics>,
    pub election: String,
    pub me: String,
    /// Names of the voters: requests from anyone else are refused.
    pub members: HashSet<String>,
    pub members_digest: u64,
    /// Checks every request's MAC when the election has a peer secret.
    pub auth: Option<Arc<PeerAuth>>,
    /// Last time (unix seconds) a refusal was logged, to keep a flood out of the log.
    last_refusal_log: AtomicU64,
}

impl PeerState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        raft: Raft,
        log: LogStore,
        leadership: Arc<Leadership>,
        metrics: Arc<Metrics>,
        election: String,
        me: String,
        members: HashSet<String>,
        members_digest: u64,
        auth: Option<Arc<PeerAuth>>,
    ) -> Self {
        PeerState {
            raft,
            log,
            leadership,
            metrics,
            election,
            me,
            members,
            members_digest,
            auth,
            last_refusal_log: AtomicU64::new(0),
        }
    }
}

impl PeerState {
    /// A member's name by its Raft id.
    fn name_of(&self, id: crate::raft::NodeId) -> Option<&str> {
        self.members
            .iter()
            .find(|m| crate::config::node_id(m) == id)
            .map(String::as_str)
    }
}

type Shared = Arc<PeerState>;

/// Builds the peer router.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route(protocol::APPEND_PATH, post(append))
        .route(protocol::VOTE_PATH, post(vote))
        .route(protocol::SNAPSHOT_PATH, post(snapshot))
        .route(protocol::HANDOFF_PATH, post(handoff))
        .route(protocol::STATUS_PATH, get(status))
        .route(protocol::PREVOTE_PATH, post(pre_vote))
        .layer(DefaultBodyLimit::max(wire::MAX_MESSAGE))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

fn refuse(state: &PeerState, status: StatusCode, reason: &'static str, detail: String) -> Response {
    state.metrics.refused(reason);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let last = state.last_refusal_log.load(Ordering::Relaxed);
    if now >= last + 10
        && state
            .last_refusal_log
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(reason, %detail, "refused a peer request (logged at most every 10 s; see raft_elector_peer_requests_refused_total)");
    }
    (status, format!("{detail}\n")).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Admits only requests of this election's members speaking this protocol.
async fn admit(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let version = header(headers, protocol::PROTOCOL_HEADER);
    if version != protocol::PROTOCOL_VERSION {
        let detail = format!(
            "unsupported peer protocol {version:?}; this peer speaks {:?}",
            protocol::PROTOCOL_VERSION
        );
        return refuse(&state, StatusCode::BAD_REQUEST, "protocol", detail);
    }
    let election = header(headers, protocol::ELECTION_HEADER);
    if election != state.election {
        let detail = format!(
            "this peer belongs to election {:?}, not {election:?}",
            state.election
        );
        return refuse(&state, StatusCode::FORBIDDEN, "election", detail);
    }
    let from = header(headers, protocol::FROM_HEADER).to_string();
    if !state.members.contains(&from) || from == state.me {
        let detail = format!(
            "{from:?} is not another member of election {:?}",
            state.election
        );
        return refuse(&state, StatusCode::FORBIDDEN, "sender", detail);
    }
    let Some(peer_auth) = &state.auth else {
        return next.run(req).await;
    };
    // The MAC covers the body, so it is read here (bounded) and handed on afterwards.
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, wire::MAX_MESSAGE).await {
        Ok(b) => b,
        Err(e) => {
            let detail = format!("unreadable or oversized body: {e}");
            return refuse(&state, StatusCode::PAYLOAD_TOO_LARGE, "size", detail);
        }
    };
    let h = &parts.headers;
    let signed = Signed {
        method: parts.method.as_str(),
        path: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        election: &state.election,
        from: &from,
        to: header(h, auth::TO_HEADER),
        time_ms: header(h, auth::TIME_HEADER).parse::<u64>().unwrap_or(0),
    };
    let mac = header(h, auth::MAC_HEADER);
    if let Err(e) = peer_auth.verify(&signed, mac, &bytes, &state.me, auth::now_ms()) {
        return refuse(
            &state,
            StatusCode::UNAUTHORIZED,
            "auth",
            format!("{from:?}: {e}"),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn decode<T: serde::de::DeserializeOwned>(state: &PeerState, body: &[u8]) -> Result<T, Response> {
    wire::decode(body)
        .map_err(|e| refuse(state, StatusCode::BAD_REQUEST, "malformed", e.to_string()))
}

fn reply<T: Serialize>(value: &T) -> Response {
    wire::encode(value).into_response()
}

/// The Raft id of the (already admitted) sender.
fn sender(headers: &HeaderMap) -> crate::raft::NodeId {
    crate::config::node_id(header(headers, protocol::FROM_HEADER))
}

/// Decodes a body and checks it is a possible request from its sender.
fn accept<T: serde::de::DeserializeOwned>(
    state: &PeerState,
    headers: &HeaderMap,
    body: &[u8],
    check: fn(&T, crate::raft::NodeId) -> Result<(), &'static str>,
) -> Result<T, Response> {
    let req: T = decode(state, body)?;
    check(&req, sender(headers))
        .map_err(|why| refuse(state, StatusCode::BAD_REQUEST, "invalid", why.to_string()))?;
    Ok(req)
}

async fn append(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    let req: AppendRequest = match accept(&state, &headers, &body, checks::append) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let (term, leader) = (vote_term(&req.vote), vote_for(&req.vote));
    state.leadership.on_newer_term(term);
    let leased = uri.query() == Some(protocol::LEASED_QUERY);
    let res = state.raft.append_entries(req).await;
    if let (
        Ok(AppendResponse::Success | AppendResponse::PartialSuccess(_) | AppendResponse::Conflict),
        Some(leader),
    ) = (&res, leader)
    {
        state.leadership.on_append(received);
        if leased {
            state.leadership.on_heard(leader, term, received);
        }
    }
    reply(&res)
}

/// A snapshot chunk. It does not let this peer name the leader: only leased heartbeats do.
async fn snapshot(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: SnapshotRequest = match accept(&state, &headers, &body, checks::snapshot) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    state.leadership.on_newer_term(vote_term(&req.vote));
    reply(&state.raft.install_snapshot(req).await)
}

async fn vote(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: VoteRequest = match accept(&state, &headers, &body, checks::vote) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let (term, candidate) = (vote_term(&req.vote), vote_for(&req.vote));
    state.leadership.on_newer_term(term);
    let res = state.raft.vote(req).await;
    if let Ok(resp) = &res {
        state.leadership.on_vote_moved(vote_term(&resp.vote));
        if resp.vote_granted {
            // Logged after openraft persisted the vote: an audit trail of one vote per term.
            let candidate = candidate.and_then(|id| state.name_of(id)).unwrap_or("?");
            tracing::info!(term, candidate, "vote granted");
        }
    }
    reply(&res)
}

async fn pre_vote(State(state): State<Shared>, body: Bytes) -> Response {
    let req: PreVoteRequest = match decode(&state, &body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    reply(&prevote::answer(&state.raft, &state.log, &state.leadership, &req).await)
}

async fn status(State(state): State<Shared>) -> Response {
    let m = state.raft.metrics().borrow().clone();
    let initialized = m.current_term > 0
        || m.last_log_index.is_some()
        || m.membership_config
            .membership()
            .voter_ids()
            .next()
            .is_some();
    reply(&PeerStatus {
        election: state.election.clone(),
        peer: state.me.clone(),
        members_digest: state.members_digest,
        initialized,
        term: m.current_term,
        last_log_index: m.last_log_index,
    })
}

/// The leader is shutting down and picked this peer to take over: campaign now. The old
/// leader grants its vote, so in a 3-peer cluster this takes about one round trip.
async fn handoff(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = decode::<()>(&state, &body) {
        return resp;
    }
    let from = header(&headers, protocol::FROM_HEADER).to_string();
    let leader = state.raft.metrics().borrow().current_leader;
    if leader != Some(crate::config::node_id(&from)) {
        let detail = format!("{from:?} is not this peer's leader; hand-off refused");
        return refuse(&state, StatusCode::CONFLICT, "handoff", detail);
    }
    tracing::info!(from = %from, "leader hands over: campaigning now");
    state.leadership.forget_leader();
    match state.raft.trigger().elect().await {
        Ok(()) => reply(&()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot campaign: {e}\n"),
        )
            .into_response(),
    }
}
