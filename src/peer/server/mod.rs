//! The incoming side of peer traffic: admission (protocol version, election, sender, MAC),
//! decoding with the checks of [`super::checks`], and the dispatch of each request to the
//! local peer through [`PeerService`], the narrow interface this module declares.
//!
//! Requests are checked before their body is decoded: a peer of another election, a
//! non-member or a request with a bad MAC is refused (and counted) without its payload ever
//! being read. What the local peer does with an admitted request (the lease, pre-vote,
//! hand-off) is the business of [`crate::leadership`], which implements the trait.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

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
use super::tls::{self, PeerCertificate};
use crate::metrics::{LogGate, Metrics};
use crate::raft::{
    node_id, AppendRequest, AppendResponse, InstallSnapshotError, NodeId, RaftError,
    SnapshotRequest, SnapshotResponse, VoteRequest, VoteResponse,
};
use crate::wire;

pub mod stream;
pub use stream::Streams;

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

/// The names a sender's certificate may carry ([`crate::config::Config::tls_names`]).
pub type TlsNames = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

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
    /// With peer TLS: the names a sender's certificate may carry ([`crate::peer::tls`]); a
    /// request whose connection's certificate carries none of its sender's is refused.
    pub tls_names: Option<TlsNames>,
}

/// The handlers' state: the admission rules, the local peer and the peer streams served.
pub struct PeerServer<S> {
    admission: Admission,
    service: S,
    streams: Arc<Streams>,
    /// Refusals are logged at most every 10 s, to keep a flood out of the log.
    refusal_log: LogGate,
}

type Shared<S> = Arc<PeerServer<S>>;

/// The peer requests, by path: those that carry a body are POSTed over HTTP.
const ROUTES: &[(&str, bool)] = &[
    (protocol::APPEND_PATH, true),
    (protocol::VOTE_PATH, true),
    (protocol::SNAPSHOT_PATH, true),
    (protocol::HANDOFF_PATH, true),
    (protocol::STATUS_PATH, false),
    (protocol::PREVOTE_PATH, true),
    (protocol::INFO_PATH, false),
    (protocol::APP_HEALTH_PATH, false),
    (protocol::JOIN_PATH, true),
    (protocol::LEAVE_PATH, true),
    (protocol::FEATURES_PATH, false),
    (protocol::CAPABILITIES_PATH, false),
    (protocol::CLAIM_PATH, true),
    (protocol::DONE_PATH, true),
];

/// Builds the peer router: every peer request over HTTP, and the upgrade to a peer stream
/// ([`stream`]), whose connections `streams` keeps.
pub fn router<S: PeerService>(admission: Admission, service: S, streams: Arc<Streams>) -> Router {
    let state = Arc::new(PeerServer {
        admission,
        service,
        streams,
        refusal_log: LogGate::default(),
    });
    let mut router = Router::new();
    for &(path, posted) in ROUTES {
        router = match posted {
            true => router.route(path, post(http::<S>)),
            false => router.route(path, get(http::<S>)),
        };
    }
    router
        .route(protocol::STREAM_PATH, get(stream::upgrade::<S>))
        .layer(DefaultBodyLimit::max(wire::MAX_MESSAGE))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit::<S>))
        .with_state(state)
}

/// What a peer request is answered: a status and a body, as an HTTP response or an answer
/// frame carries them. 200 carries the bincode answer, any other status a one-line reason.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    fn ok<T: Serialize>(value: &T) -> Self {
        Reply {
            status: 200,
            body: wire::encode(value),
        }
    }

    fn text(status: StatusCode, text: String) -> Self {
        Reply {
            status: status.as_u16(),
            body: format!("{text}\n").into_bytes(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, self.body).into_response()
    }
}

impl<S> PeerServer<S> {
    /// Counts a refusal under `reason`, logs it (at most every 10 s) and makes its answer.
    fn refuse(&self, status: StatusCode, reason: &'static str, detail: String) -> Reply {
        self.note_refusal(reason, &detail);
        Reply::text(status, detail)
    }

    fn note_refusal(&self, reason: &'static str, detail: &str) {
        self.admission.metrics.refused(reason);
        if self.refusal_log.due() {
            tracing::warn!(reason, %detail, "refused a peer request (logged at most every 10 s; see raft_elector_peer_requests_refused_total)");
        }
    }
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
    let refuse = |status, reason: &'static str, detail: String| {
        if let Some(what) = membership {
            a.metrics.membership_refused(what, reason);
        }
        state.refuse(status, reason, detail).into_response()
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
    if let Some(names) = &a.tls_names {
        let cert = req.extensions().get::<PeerCertificate>();
        if !cert.is_some_and(|c| tls::valid_for(&c.0, &names(&from))) {
            let detail = format!(
                "the connection's certificate is not {from:?}'s (it must carry one of {:?})",
                names(&from)
            );
            return refuse(StatusCode::FORBIDDEN, "tls-name", detail);
        }
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

/// Every peer request that comes over HTTP (admitted already).
async fn http<S: PeerService>(
    State(state): State<Shared<S>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    let from = header(&headers, protocol::FROM_HEADER);
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    dispatch(&state, path, from, &body, received)
        .await
        .into_response()
}

fn decode<S, T: serde::de::DeserializeOwned>(
    state: &PeerServer<S>,
    body: &[u8],
) -> Result<T, Reply> {
    wire::decode(body)
        .map_err(|e| state.refuse(StatusCode::BAD_REQUEST, "malformed", e.to_string()))
}

/// Decodes a body and checks it is a possible request from its sender.
fn accept<S, T: serde::de::DeserializeOwned>(
    state: &PeerServer<S>,
    from: &str,
    body: &[u8],
    check: fn(&T, NodeId) -> Result<(), &'static str>,
) -> Result<T, Reply> {
    let req: T = decode(state, body)?;
    check(&req, node_id(from))
        .map_err(|why| state.refuse(StatusCode::BAD_REQUEST, "invalid", why.to_string()))?;
    Ok(req)
}

/// Answers one admitted request of peer `from`, whichever way it came: `path` is what an
/// HTTP request names (with the query), `received` when it arrived.
pub async fn dispatch<S: PeerService>(
    state: &PeerServer<S>,
    path: &str,
    from: &str,
    body: &[u8],
    received: Instant,
) -> Reply {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let service = &state.service;
    // The decoded request, or the refusal to answer at once.
    macro_rules! take {
        ($decoded:expr) => {
            match $decoded {
                Ok(req) => req,
                Err(refused) => return refused,
            }
        };
    }
    match path {
        protocol::APPEND_PATH => {
            let req = take!(accept(state, from, body, checks::append));
            let leased = query == Some(protocol::LEASED_QUERY);
            Reply::ok(&service.append(req, leased, received).await)
        }
        protocol::VOTE_PATH => {
            let req = take!(accept(state, from, body, checks::vote));
            Reply::ok(&service.vote(req).await)
        }
        protocol::SNAPSHOT_PATH => {
            let req = take!(accept(state, from, body, checks::snapshot));
            Reply::ok(&service.snapshot(req).await)
        }
        protocol::PREVOTE_PATH => {
            let req: PreVoteRequest = take!(decode(state, body));
            Reply::ok(&service.pre_vote(req, node_id(from)).await)
        }
        protocol::JOIN_PATH => {
            let req: JoinRequest = take!(decode(state, body));
            let answer = service.join(req, from.to_string()).await;
            membership_reply(state, "join", answer)
        }
        protocol::LEAVE_PATH => {
            let req: LeaveRequest = take!(decode(state, body));
            let answer = service.leave(req, from.to_string()).await;
            membership_reply(state, "leave", answer)
        }
        protocol::CLAIM_PATH => {
            let req: ClaimRequest = take!(decode(state, body));
            Reply::ok(&service.claim(req, from.to_string()).await)
        }
        protocol::DONE_PATH => {
            let req: DoneRequest = take!(decode(state, body));
            Reply::ok(&service.done(req, from.to_string()).await)
        }
        protocol::HANDOFF_PATH => {
            let () = take!(decode(state, body));
            handoff(state, from).await
        }
        protocol::STATUS_PATH => Reply::ok(&service.status()),
        protocol::INFO_PATH => Reply::ok(&service.info()),
        protocol::APP_HEALTH_PATH => Reply::ok(&service.app_health()),
        protocol::FEATURES_PATH => Reply::ok(&service.features()),
        protocol::CAPABILITIES_PATH => Reply::ok(&protocol::CAPABILITIES.to_vec()),
        _ => {
            let detail = format!(
                "no peer request {path:?} in protocol {}",
                protocol::PROTOCOL_VERSION
            );
            Reply::text(StatusCode::NOT_FOUND, detail)
        }
    }
}

/// A join or leave was refused for good: counted and logged like every refusal.
fn membership_reply<S>(
    state: &PeerServer<S>,
    what: &'static str,
    answer: MembershipAnswer,
) -> Reply {
    if let MembershipAnswer::Refused { code, reason } = &answer {
        state.admission.metrics.membership_refused(what, code);
        tracing::warn!(code = %code, reason = %reason, "refused a {what}");
    }
    Reply::ok(&answer)
}

/// The leader is shutting down and picked this peer to take over.
async fn handoff<S: PeerService>(state: &PeerServer<S>, from: &str) -> Reply {
    match state.service.handoff(node_id(from)).await {
        Ok(()) => Reply::ok(&()),
        Err(HandoffRefused::NotMyLeader) => {
            let detail = format!("{from:?} is not this peer's leader; hand-off refused");
            state.refuse(StatusCode::CONFLICT, "handoff", detail)
        }
        Err(e @ (HandoffRefused::CannotCampaign(_) | HandoffRefused::Unwilling(_))) => {
            Reply::text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests;
