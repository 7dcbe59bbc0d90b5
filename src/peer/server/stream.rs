//! The accepting side of a peer stream: the handshake (an HTTP upgrade, admitted like any
//! peer request) and the loop that answers the frames of one connection.
//!
//! A stream is admitted once, at its handshake: protocol version, election, sender and, with
//! a peer secret, the request's MAC, time and freshness ([`super::admit`]). Each frame after
//! that is checked by its MAC and sequence number ([`crate::peer::frames`]); a frame that
//! fails, or that does not decode, ends the connection and is counted. Calls are answered as
//! they complete, several at a time; a peer that stops reading is cut off once an answer
//! waits longer than the stall bound to be written. A newer stream of the same peer replaces
//! its older one (the peer restarted, or found its connection dead).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{dispatch, PeerService, Reply, Shared};
use crate::metrics::Metrics;
use crate::peer::frames::{self, Ends, Head, Session};
use crate::peer::protocol;

/// Calls of one stream answered at once; further frames wait in the socket.
const MAX_IN_FLIGHT: usize = 64;
/// Streams served at once (one per peer).
const MAX_STREAMS: usize = 64;
/// Time a call may take to be answered, as over HTTP (the peer listener's handler limit).
const HANDLER_TIME: Duration = Duration::from_secs(10);

/// The length-delimited codec of peer streams, bounded by [`frames::MAX_FRAME`].
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(frames::MAX_FRAME)
        .new_codec()
}

/// The peer streams a peer serves: at most one per sending peer, each ended when `stop`
/// fires, all awaited by [`Streams::close`].
pub struct Streams {
    stop: CancellationToken,
    tracker: TaskTracker,
    /// Longest time an answer may wait to be written.
    stall: Duration,
    open: Mutex<HashMap<String, (u64, CancellationToken)>>,
    next: AtomicU64,
    metrics: Arc<Metrics>,
}

/// One admitted stream's place in [`Streams`].
struct Slot {
    from: Arc<str>,
    generation: u64,
    ended: CancellationToken,
}

impl Streams {
    pub fn new(stop: CancellationToken, stall: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Streams {
            stop,
            tracker: TaskTracker::new(),
            stall,
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            metrics,
        })
    }

    /// Waits for every stream to end (they end when `stop` fires).
    pub async fn close(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Makes room for a stream of `from`, ending its older one; `None` when full.
    fn admit(&self, from: &str) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, older)) = open.get(from) {
            older.cancel();
        } else if open.len() >= MAX_STREAMS {
            return None;
        }
        let generation = self.next.fetch_add(1, Ordering::Relaxed);
        let ended = self.stop.child_token();
        open.insert(from.to_string(), (generation, ended.clone()));
        self.metrics.peer_streams.set(open.len() as i64);
        Some(Slot {
            from: from.into(),
            generation,
            ended,
        })
    }

    fn release(&self, slot: &Slot) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open
            .get(&*slot.from)
            .is_some_and(|(g, _)| *g == slot.generation)
        {
            open.remove(&*slot.from);
        }
        self.metrics.peer_streams.set(open.len() as i64);
    }
}

/// The handshake: `GET` [`protocol::STREAM_PATH`]`?nonce=…` with the upgrade headers, from an
/// admitted peer. Answers 101 with this peer's nonce, then serves the connection.
pub async fn upgrade<S: PeerService>(State(state): State<Shared<S>>, mut req: Request) -> Response {
    let headers = req.headers();
    let wanted = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes() == protocol::STREAM_UPGRADE.as_bytes());
    let from = super::header(headers, protocol::FROM_HEADER).to_string();
    let client_nonce = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("nonce="))
        .and_then(frames::parse_nonce);
    let (true, Some(client_nonce)) = (wanted, client_nonce) else {
        let detail = format!(
            "a peer stream's handshake needs `Upgrade: {}` and `?nonce=` with {} hex digits",
            protocol::STREAM_UPGRADE,
            frames::NONCE_LEN * 2
        );
        return state
            .refuse(StatusCode::BAD_REQUEST, "handshake", detail)
            .into_response();
    };
    let Some(slot) = state.streams.admit(&from) else {
        let detail = format!("{MAX_STREAMS} peer streams are open; speak HTTP");
        return Reply::text(StatusCode::SERVICE_UNAVAILABLE, detail).into_response();
    };
    let server_nonce = frames::nonce();
    let a = &state.admission;
    let session = Session::server(
        a.auth.as_deref(),
        &Ends {
            election: &a.election,
            client: &from,
            server: &a.me,
            client_nonce: &client_nonce,
            server_nonce: &server_nonce,
        },
    );
    let upgraded = hyper::upgrade::on(&mut req);
    let served = state.clone();
    state.streams.tracker.spawn(async move {
        match upgraded.await {
            Ok(io) => serve(&served, TokioIo::new(io), session, &slot).await,
            Err(e) => tracing::debug!(peer = %slot.from, error = %e, "peer stream upgrade failed"),
        }
        served.streams.release(&slot);
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(
        header::UPGRADE,
        HeaderValue::from_static(protocol::STREAM_UPGRADE),
    );
    if let Ok(v) = HeaderValue::from_str(&hex::encode(server_nonce)) {
        h.insert(protocol::NONCE_HEADER, v);
    }
    resp
}

/// Why a stream ended.
#[derive(Debug)]
enum End {
    /// The peer closed it, or this peer is stopping, or a newer stream replaced it.
    Closed,
    /// Counted as a refusal under the reason, logged with the detail.
    Refused(&'static str, String),
}

/// Answers the calls of one stream until it ends.
async fn serve<S, IO>(state: &Shared<S>, io: IO, session: Session, slot: &Slot)
where
    S: PeerService,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(peer = %slot.from, "peer stream opened");
    match answer_calls(state, Framed::new(io, codec()), session, slot).await {
        End::Closed => tracing::debug!(peer = %slot.from, "peer stream closed"),
        End::Refused(reason, detail) => {
            let detail = format!("{:?}: {detail}; connection closed", &*slot.from);
            state.note_refusal(reason, &detail);
        }
    }
}

async fn answer_calls<S, IO>(
    state: &Shared<S>,
    mut framed: Framed<IO, LengthDelimitedCodec>,
    mut session: Session,
    slot: &Slot,
) -> End
where
    S: PeerService,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let contacts = &state.admission.contacts;
    let stall = state.streams.stall;
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            _ = slot.ended.cancelled() => return End::Closed,
            frame = framed.next(), if in_flight.len() < MAX_IN_FLIGHT => {
                let bytes = match frame {
                    None => return End::Closed,
                    Some(Ok(bytes)) => bytes,
                    Some(Err(e)) => return End::Refused("frame", e.to_string()),
                };
                let received = Instant::now();
                match session.open(&bytes) {
                    Ok((Head::Call { id, path }, body)) => {
                        contacts.heard(&slot.from);
                        let from = slot.from.clone();
                        in_flight.push(async move {
                            let answer = dispatch(state, &path, &from, &body, received);
                            let reply = match tokio::time::timeout(HANDLER_TIME, answer).await {
                                Ok(reply) => reply,
                                Err(_) => Reply::text(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    "not answered in time".into(),
                                ),
                            };
                            (id, reply)
                        });
                    }
                    Ok((Head::Ping, _)) => {
                        contacts.heard(&slot.from);
                        let pong = session.seal(&Head::Pong, &[]);
                        if !send_within(&mut framed, pong, stall).await {
                            return End::Refused("stalled", "the peer stopped reading".into());
                        }
                    }
                    Ok((head, _)) => {
                        return End::Refused("frame", format!("unexpected {head:?} from the opening peer"))
                    }
                    Err(e) => return End::Refused(e.reason(), e.to_string()),
                }
            }
            Some((id, reply)) = in_flight.next(), if !in_flight.is_empty() => {
                let frame = session.seal(&Head::Answer { id, status: reply.status }, &reply.body);
                if !send_within(&mut framed, frame, stall).await {
                    return End::Refused("stalled", "the peer stopped reading".into());
                }
            }
        }
    }
}

/// Writes a frame, giving up after `stall`.
pub async fn send_within<IO: AsyncWrite + Unpin>(
    framed: &mut Framed<IO, LengthDelimitedCodec>,
    frame: bytes::Bytes,
    stall: Duration,
) -> bool {
    matches!(
        tokio::time::timeout(stall, framed.send(frame)).await,
        Ok(Ok(()))
    )
}
