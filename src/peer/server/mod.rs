//! The incoming side of peer traffic: admission (protocol version, election, sender, MAC),
//! decoding with the checks of [`super::checks`], and the dispatch of each request to the
//! local peer through [`PeerService`], the narrow interface this module declares.
//!
//! Requests are checked before their body is decoded: a peer of another election, a
//! non-member or a request with a bad MAC is refused (and counted) without its payload ever
//! being read. What the local peer does with an admitted request (the lease, pre-vote,
//! hand-off) is the business of [`crate::leadership`], which implements the trait.

use std::future::Future;
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

use super::auth::{self, PeerAuth, Signed};
use super::checks;
use super::contacts::Contacts;
use super::protocol::{
    self, AppHealthAnswer, ClaimRequest, DoneRequest, Features, JobAnswer, JoinRequest,
    LeaveRequest, MembershipAnswer, PeerInfo, PeerStatus, PreVoteRequest, PreVoteResponse,
};
use crate::metrics::Metrics;
use crate::raft::{
    node_id, AppendRequest, AppendResponse, InstallSnapshotError, NodeId, RaftError,
    SnapshotRequest, SnapshotResponse, VoteRequest, VoteResponse,
};
use crate::wire;

/// Why a hand-off request was not followed.
#[derive(Debug, thiserror::Error)]
pub enum HandoffRefused {
    #[error("the sender is not this peer's leader")]
    NotMyLeader,
    #[error("cannot campaign: {0}")]
    CannotCampaign(String),
    #[error("{0}")]
    Unwilling(&'static str),
}

/// What the handlers need from the local peer, once a request is admitted and decoded.
pub trait PeerService: Send + Sync + 'static {
    /// An append-entries (heartbeat) from `from`; `leased` when its leader held its lease as
    /// it sent it; `received` is when it arrived.
    fn append(
        &self,
        req: AppendRequest,
        leased: bool,
        received: Instant,
    ) -> impl Future<Output = Result<AppendResponse, RaftError>> + Send;
    fn vote(
        &self,
        req: VoteRequest,
    ) -> impl Future<Output = Result<VoteResponse, RaftError>> + Send;
    fn snapshot(
        &self,
        req: SnapshotRequest,
    ) -> impl Future<Output = Result<SnapshotResponse, RaftError<InstallSnapshotError>>> + Send;
    /// A pre-vote request of `from`.
    fn pre_vote(
        &self,
        req: PreVoteRequest,
        from: NodeId,
    ) -> impl Future<Output = PreVoteResponse> + Send;
    fn status(&self) -> PeerStatus;
    fn info(&self) -> PeerInfo;
    /// This peer's application health.
    fn app_health(&self) -> AppHealthAnswer;
    /// `from` asks that the peer the request names become a member (its own join, or one
    /// it forwards).
    fn join(&self, req: JoinRequest, from: String)
        -> impl Future<Output = MembershipAnswer> + Send;
    /// `from` asks that the peer the request names be removed.
    fn leave(
        &self,
        req: LeaveRequest,
        from: String,
    ) -> impl Future<Output = MembershipAnswer> + Send;
    /// What this peer's release supports.
    fn features(&self) -> Features;
    /// `from` claims a job slot for itself (its application asked it).
    fn claim(&self, req: ClaimRequest, from: String) -> impl Future<Output = JobAnswer> + Send;
    /// `from` reports a slot's outcome.
    fn done(&self, req: DoneRequest, from: String) -> impl Future<Output = JobAnswer> + Send;
    /// The leader `from` asks this peer to campaign now.
    fn handoff(&self, from: NodeId) -> impl Future<Output = Result<(), HandoffRefused>> + Send;
}

/// Who may talk to this peer.
pub struct Admission {
    pub election: String,
    pub me: String,
    /// Whether a sender name may talk to this peer at all (a valid peer name of this
    /// election; a StatefulSet sibling when the peers are derived from `--replicas`).
    /// Membership is not checked here: a peer that lags behind a membership change must still
    /// hear its new leader. Votes are checked against the membership by the local peer.
    pub senders: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// Records when each sender was last heard from.
    pub contacts: Arc<Contacts>,
    /// Counts refusals.
    pub metrics: Arc<Metrics>,
    /// Checks every request's MAC when the election has a peer secret.
    pub auth: Option<Arc<PeerAuth>>,
}

/// The handlers' state: the admission rules and the local peer.
pub struct PeerServer<S> {
    admission: Admission,
    service: S,
    /// Last time (unix seconds) a refusal was logged, to keep a flood out of the log.
    last_refusal_log: AtomicU64,
}

type Shared<S> = Arc<PeerServer<S>>;

/// Builds the peer router.
pub fn router<S: PeerService>(admission: Admission, service: S) -> Router {
    let state = Arc::new(PeerServer {
        admission,
        service,
        last_refusal_log: AtomicU64::new(0),
    });
    Router::new()
        .route(protocol::APPEND_PATH, post(append::<S>))
        .route(protocol::VOTE_PATH, post(vote::<S>))
        .route(protocol::SNAPSHOT_PATH, post(snapshot::<S>))
        .route(protocol::HANDOFF_PATH, post(handoff::<S>))
        .route(protocol::STATUS_PATH, get(status::<S>))
        .route(protocol::PREVOTE_PATH, post(pre_vote::<S>))
        .route(protocol::INFO_PATH, get(info::<S>))
        .route(protocol::APP_HEALTH_PATH, get(app_health::<S>))
        .route(protocol::JOIN_PATH, post(join::<S>))
        .route(protocol::LEAVE_PATH, post(leave::<S>))
        .route(protocol::FEATURES_PATH, get(features::<S>))
        .route(protocol::CAPABILITIES_PATH, get(capabilities))
        .route(protocol::CLAIM_PATH, post(claim::<S>))
        .route(protocol::DONE_PATH, post(done::<S>))
        .layer(DefaultBodyLimit::max(wire::MAX_MESSAGE))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit::<S>))
        .with_state(state)
}

fn refuse<S>(
    state: &PeerServer<S>,
    status: StatusCode,
    reason: &'static str,
    detail: String,
) -> Response {
    state.admission.metrics.refused(reason);
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
async fn admit<S: PeerService>(
    State(state): State<Shared<S>>,
    req: Request,
    next: Next,
) -> Response {
    let a = &state.admission;
    let path = req.uri().path();
    let membership = match path {
        protocol::JOIN_PATH => Some("join"),
        protocol::LEAVE_PATH => Some("leave"),
        _ => None,
    };
    let state = &state;
    let refuse = |status, reason: &'static str, detail: String| {
        if let Some(what) = membership {
            a.metrics.membership_refused(what, reason);
        }
        refuse(state, status, reason, detail)
    };
    let headers = req.headers();
    let version = header(headers, protocol::PROTOCOL_HEADER);
    if version != protocol::PROTOCOL_VERSION {
        let detail = format!(
            "unsupported peer protocol {version:?}; this peer speaks {:?}",
            protocol::PROTOCOL_VERSION
        );
        return refuse(StatusCode::BAD_REQUEST, "protocol", detail);
    }
    let election = header(headers, protocol::ELECTION_HEADER);
    if election != a.election {
        let detail = format!(
            "this peer belongs to election {:?}, not {election:?}",
            a.election
        );
        return refuse(StatusCode::FORBIDDEN, "election", detail);
    }
    let from = header(headers, protocol::FROM_HEADER).to_string();
    if !(a.senders)(&from) || from == a.me {
        let detail = format!("{from:?} is not another peer of election {:?}", a.election);
        return refuse(StatusCode::FORBIDDEN, "sender", detail);
    }
    let Some(peer_auth) = &a.auth else {
        a.contacts.heard(&from);
        return next.run(req).await;
    };
    // The MAC covers the body, so it is read here (bounded) and handed on afterwards.
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, wire::MAX_MESSAGE).await {
        Ok(b) => b,
        Err(e) => {
            let detail = format!("unreadable or oversized body: {e}");
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "size", detail);
        }
    };
    let h = &parts.headers;
    let signed = Signed {
        method: parts.method.as_str(),
        path: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        election: &a.election,
        from: &from,
        to: header(h, auth::TO_HEADER),
        time_ms: header(h, auth::TIME_HEADER).parse::<u64>().unwrap_or(0),
    };
    let mac = header(h, auth::MAC_HEADER);
    if let Err(e) = peer_auth.verify(&signed, mac, &bytes, &a.me, auth::now_ms()) {
        return refuse(StatusCode::UNAUTHORIZED, "auth", format!("{from:?}: {e}"));
    }
    a.contacts.heard(&from);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn decode<S, T: serde::de::DeserializeOwned>(
    state: &PeerServer<S>,
    body: &[u8],
) -> Result<T, Response> {
    wire::decode(body)
        .map_err(|e| refuse(state, StatusCode::BAD_REQUEST, "malformed", e.to_string()))
}

fn reply<T: Serialize>(value: &T) -> Response {
    wire::encode(value).into_response()
}

/// The Raft id of the (already admitted) sender.
fn sender(headers: &HeaderMap) -> NodeId {
    node_id(header(headers, protocol::FROM_HEADER))
}

/// Decodes a body and checks it is a possible request from its sender.
fn accept<S, T: serde::de::DeserializeOwned>(
    state: &PeerServer<S>,
    headers: &HeaderMap,
    body: &[u8],
    check: fn(&T, NodeId) -> Result<(), &'static str>,
) -> Result<T, Response> {
    let req: T = decode(state, body)?;
    check(&req, sender(headers))
        .map_err(|why| refuse(state, StatusCode::BAD_REQUEST, "invalid", why.to_string()))?;
    Ok(req)
}

async fn append<S: PeerService>(
    State(state): State<Shared<S>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    let req: AppendRequest = match accept(&state, &headers, &body, checks::append) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let leased = uri.query() == Some(protocol::LEASED_QUERY);
    reply(&state.service.append(req, leased, received).await)
}

/// A snapshot chunk.
async fn snapshot<S: PeerService>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept::<S, SnapshotRequest>(&state, &headers, &body, checks::snapshot) {
        Ok(req) => reply(&state.service.snapshot(req).await),
        Err(refused) => refused,
    }
}

async fn vote<S: PeerService>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept::<S, VoteRequest>(&state, &headers, &body, checks::vote) {
        Ok(req) => reply(&state.service.vote(req).await),
        Err(refused) => refused,
    }
}

async fn pre_vote<S: PeerService>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match decode::<S, PreVoteRequest>(&state, &body) {
        Ok(req) => reply(&state.service.pre_vote(req, sender(&headers)).await),
        Err(refused) => refused,
    }
}

async fn info<S: PeerService>(State(state): State<Shared<S>>) -> Response {
    reply(&state.service.info())
}

async fn app_health<S: PeerService>(State(state): State<Shared<S>>) -> Response {
    reply(&state.service.app_health())
}

/// A join or leave was refused for good: counted and logged like every refusal.
fn membership_reply<S>(
    state: &PeerServer<S>,
    what: &'static str,
    answer: MembershipAnswer,
) -> Response {
    if let MembershipAnswer::Refused { code, reason } = &answer {
        state.admission.metrics.membership_refused(what, code);
        tracing::warn!(code = %code, reason = %reason, "refused a {what}");
    }
    reply(&answer)
}

async fn join<S: PeerService>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match decode::<S, JoinRequest>(&state, &body) {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    let from = header(&headers, protocol::FROM_HEADER).to_string();
    let answer = state.service.join(req, from).await;
    membership_reply(&state, "join", answer)
}

async fn leave<S: PeerService>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match decode::<S, LeaveRequest>(&state, &body) {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    let from = header(&headers, protocol::FROM_HEADER).to_string();
    let answer = state.service.leave(req, from).await;
    membership_reply(&state, "leave", answer)
}

async fn features<S: PeerService>(State(state): State<Shared<S>>) -> Response {
    reply(&state.service.features())
}

async fn capabilities() -> Response {
    let names: Vec<&str> = protocol::CAPABILITIES.to_vec();
    reply(&names)
}

async fn claim<S: PeerService>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match decode::<S, ClaimRequest>(&state, &body) {
        Ok(req) => {
            let from = header(&headers, protocol::FROM_HEADER).to_string();
            reply(&state.service.claim(req, from).await)
        }
        Err(refused) => refused,
    }
}

async fn done<S: PeerService>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match decode::<S, DoneRequest>(&state, &body) {
        Ok(req) => {
            let from = header(&headers, protocol::FROM_HEADER).to_string();
            reply(&state.service.done(req, from).await)
        }
        Err(refused) => refused,
    }
}

async fn status<S: PeerService>(State(state): State<Shared<S>>) -> Response {
    reply(&state.service.status())
}

/// The leader is shutting down and picked this peer to take over.
async fn handoff<S: PeerService>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = decode::<S, ()>(&state, &body) {
        return resp;
    }
    let from = header(&headers, protocol::FROM_HEADER).to_string();
    match state.service.handoff(node_id(&from)).await {
        Ok(()) => reply(&()),
        Err(HandoffRefused::NotMyLeader) => {
            let detail = format!("{from:?} is not this peer's leader; hand-off refused");
            refuse(&state, StatusCode::CONFLICT, "handoff", detail)
        }
        Err(e @ (HandoffRefused::CannotCampaign(_) | HandoffRefused::Unwilling(_))) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests;
