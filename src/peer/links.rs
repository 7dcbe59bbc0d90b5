//! The opening side of peer streams: one long-lived connection to each peer, made on the
//! first call and made again when it breaks, carrying every call to that peer as frames
//! ([`super::frames`]) instead of one HTTP request each.
//!
//! A connection starts with the handshake of [`super::server::stream`]: an HTTP/1.1 upgrade
//! signed like any peer request. A peer of a release before streams answers 404, and is then
//! spoken to over HTTP ([`Routed::Http`]) until the upgrade is tried again: 5 s later,
//! or as soon as an HTTP request to it fails to get through (it may be restarting as a newer
//! release). The peer's name is resolved at every connection, never
//! kept. A connection that cannot be made is tried again after a backoff, from 20 ms doubling
//! to 500 ms; until then calls fail at once. A connection that stalls (calls wait and nothing
//! comes back: a ping is sent after half the stall bound, and the connection is dropped once
//! the whole bound passed in silence) is dropped and its calls fail; the next call connects
//! anew. An idle connection sends nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hyper::header;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::auth::{self, PeerAuth, Signed};
use super::frames::{self, Ends, Head, Session};
use super::protocol;
use super::server::stream::{codec, send_within};
use super::tls::{self, PeerTls};
use crate::raft::PeerNode;

/// How long a peer that refused the upgrade is spoken to over HTTP before it is asked again.
const HTTP_FOR: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Calls queued for one connection before callers wait.
const QUEUE: usize = 256;

/// What became of a call offered to a stream.
#[derive(Debug)]
pub enum Routed {
    /// The peer's answer: status and body, as over HTTP.
    Answer(u16, Bytes),
    /// The peer does not speak streams (or not now): send it (the call's body, given back)
    /// over HTTP.
    Http(Vec<u8>),
    /// No answer: the connection broke, its handshake failed, or the answer took too long.
    Failed(String),
    /// No answer: nothing accepted a connection at the peer's address (refused, no route,
    /// no such name, or no connection within the timeout), now or at the last attempt.
    Unreachable(String),
}

/// Why no connection is open.
enum LinkFailure {
    /// The TCP connection itself could not be made.
    Unreachable(String),
    /// It was made, then the TLS or stream handshake failed.
    Failed(String),
}

impl From<String> for LinkFailure {
    fn from(why: String) -> Self {
        LinkFailure::Failed(why)
    }
}

/// Who the streams speak for.
pub struct LinkOptions {
    pub election: String,
    pub me: String,
    pub connect_timeout: Duration,
    /// A connection whose calls get no byte back for this long is dropped.
    pub stall: Duration,
    pub auth: Option<Arc<PeerAuth>>,
    /// Peer TLS: connections are TLS, made again when the files change; a peer that refuses
    /// the upgrade is not spoken to over HTTP.
    pub tls: Option<Arc<PeerTls>>,
}

/// The streams of one peer to all others.
pub struct Links {
    options: LinkOptions,
    links: Mutex<HashMap<String, Arc<Link>>>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

/// The stream to one peer.
struct Link {
    addr: String,
    state: tokio::sync::Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    calls: Option<mpsc::Sender<Call>>,
    /// Over HTTP until then.
    http_until: Option<Instant>,
    /// No connection attempt before then.
    retry_at: Option<Instant>,
    backoff: Option<Duration>,
    /// The reading of the TLS files the open connection was made with.
    generation: u64,
    /// The last attempt could not even connect.
    unreachable: bool,
}

impl LinkState {
    /// The queue of the open connection, if it is alive and made with TLS files `generation`.
    fn live(&self, generation: u64) -> Option<mpsc::Sender<Call>> {
        self.calls
            .as_ref()
            .filter(|c| !c.is_closed() && self.generation == generation)
            .cloned()
    }
}

/// One call handed to a connection.
struct Call {
    path: String,
    body: Vec<u8>,
    answer: oneshot::Sender<(u16, Bytes)>,
}

impl Links {
    pub fn new(options: LinkOptions) -> Self {
        Links {
            options,
            links: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// Ends every connection and waits for their tasks.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn link(&self, to: &PeerNode) -> Arc<Link> {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        match links.get(&to.name) {
            Some(link) if link.addr == to.addr => link.clone(),
            _ => {
                let link = Arc::new(Link {
                    addr: to.addr.clone(),
                    state: tokio::sync::Mutex::new(LinkState::default()),
                });
                links.insert(to.name.clone(), link.clone());
                link
            }
        }
    }

    /// Whether a connection to peer `name` is open, or the peer speaks only HTTP for now
    /// (nothing to open then).
    pub fn is_open(&self, name: &str) -> bool {
        let link = {
            let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            match links.get(name) {
                Some(link) => link.clone(),
                None => return false,
            }
        };
        let open = match link.state.try_lock() {
            Ok(state) => {
                state.calls.as_ref().is_some_and(|c| !c.is_closed())
                    || state.http_until.is_some_and(|t| Instant::now() < t)
            }
            // Being connected right now.
            Err(_) => true,
        };
        open
    }

    /// Peer `to` could not be reached over HTTP: it may be restarting, perhaps as a release
    /// that speaks streams, so the next call tries the upgrade again.
    pub async fn unreachable_over_http(&self, to: &PeerNode) {
        let link = self.link(to);
        link.state.lock().await.http_until = None;
    }

    /// Sends a call (what an HTTP request to `path` would carry) to peer `to` over its
    /// stream, connecting first when needed.
    pub async fn call(
        self: &Arc<Self>,
        to: &PeerNode,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Routed {
        let deadline = Instant::now() + timeout;
        let calls = match tokio::time::timeout_at(deadline, self.connected(to)).await {
            Ok(Ok(Some(calls))) => calls,
            Ok(Ok(None)) => return Routed::Http(body),
            Ok(Err(LinkFailure::Failed(why))) => return Routed::Failed(why),
            Ok(Err(LinkFailure::Unreachable(why))) => return Routed::Unreachable(why),
            Err(_) => return Routed::Unreachable(format!("no connection within {timeout:?}")),
        };
        let (answer, answered) = oneshot::channel();
        let call = Call {
            path: path.to_string(),
            body,
            answer,
        };
        if calls.send(call).await.is_err() {
            return Routed::Failed("the connection closed".into());
        }
        match tokio::time::timeout_at(deadline, answered).await {
            Ok(Ok((status, body))) => Routed::Answer(status, body),
            Ok(Err(_)) => Routed::Failed("the connection broke before the answer".into()),
            Err(_) => Routed::Failed(format!("no answer within {timeout:?}")),
        }
    }

    /// The queue of the live connection to `to`, made if needed; `None` to use HTTP. The
    /// connecting runs in a task of its own, bounded by the connect timeout: a caller that
    /// gives up first (a heartbeat's deadline can be shorter than a TLS handshake on a loaded
    /// machine) does not cut it off, so a later call finds the connection made. Cut off with
    /// every call, a handshake slower than the calls' deadlines never completed, and the peer
    /// stayed unreachable as long as the load lasted (a nemesis run over TLS: 25 minutes).
    async fn connected(
        self: &Arc<Self>,
        to: &PeerNode,
    ) -> Result<Option<mpsc::Sender<Call>>, LinkFailure> {
        // The usual case, a live connection made with the current files: no task.
        let generation = self.options.tls.as_ref().map_or(0, |t| t.generation());
        if let Some(calls) = self
            .link(to)
            .state
            .try_lock()
            .ok()
            .and_then(|state| state.live(generation))
        {
            return Ok(Some(calls));
        }
        let (links, to) = (Arc::clone(self), to.clone());
        let connecting = self
            .tracker
            .spawn(async move { links.connect(&to, generation).await });
        match connecting.await {
            Ok(result) => result,
            Err(e) => Err(LinkFailure::Failed(format!("connecting failed: {e}"))),
        }
    }

    /// [`Links::connected`]'s work, one caller at a time per peer.
    async fn connect(
        &self,
        to: &PeerNode,
        generation: u64,
    ) -> Result<Option<mpsc::Sender<Call>>, LinkFailure> {
        let link = self.link(to);
        let mut state = link.state.lock().await;
        if let Some(calls) = state.live(generation) {
            return Ok(Some(calls));
        }
        if state.calls.as_ref().is_some_and(|c| !c.is_closed()) {
            tracing::debug!(peer = %to.name, "the TLS files changed; connecting anew");
        }
        state.calls = None;
        let now = Instant::now();
        if state.http_until.is_some_and(|t| now < t) {
            return Ok(None);
        }
        if let Some(at) = state.retry_at.filter(|at| now < *at) {
            let why = format!(
                "not connected; trying again in {:?}",
                at.duration_since(now)
            );
            return Err(match state.unreachable {
                true => LinkFailure::Unreachable(why),
                false => LinkFailure::Failed(why),
            });
        }
        match self.open(to).await {
            Ok(Opened::Stream(opened)) => {
                let (framed, session) = *opened;
                let (tx, rx) = mpsc::channel(QUEUE);
                let (stop, stall) = (self.stop.clone(), self.options.stall);
                let peer = to.name.clone();
                self.tracker.spawn(async move {
                    let why = run(framed, session, rx, stop, stall).await;
                    tracing::debug!(peer, why, "peer stream closed");
                });
                *state = LinkState {
                    calls: Some(tx.clone()),
                    generation,
                    ..LinkState::default()
                };
                Ok(Some(tx))
            }
            Ok(Opened::Refused(status)) if self.options.tls.is_some() => {
                self.back_off(&mut state, false);
                Err(LinkFailure::Failed(format!(
                    "{} refused the stream ({status}); with peer TLS there is no HTTP to fall back to",
                    to.addr
                )))
            }
            Ok(Opened::Refused(status)) => {
                tracing::debug!(peer = %to.name, status, "peer refused a stream; speaking HTTP to it");
                state.http_until = Some(now + HTTP_FOR);
                Ok(None)
            }
            Err(why) => {
                self.back_off(&mut state, matches!(why, LinkFailure::Unreachable(_)));
                Err(why)
            }
        }
    }

    fn back_off(&self, state: &mut LinkState, unreachable: bool) {
        state.unreachable = unreachable;
        let backoff = state
            .backoff
            .map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
        state.backoff = Some(backoff);
        state.retry_at = Some(Instant::now() + backoff);
    }

    /// Connects to `to` and makes the handshake.
    async fn open(&self, to: &PeerNode) -> Result<Opened, LinkFailure> {
        let o = &self.options;
        let limit = o.connect_timeout;
        let tcp = match tokio::time::timeout(limit, TcpStream::connect(&to.addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                let why = format!("cannot connect to {}: {e}", to.addr);
                return Err(LinkFailure::Unreachable(why));
            }
            Err(_) => {
                let why = format!("cannot connect to {} within {limit:?}", to.addr);
                return Err(LinkFailure::Unreachable(why));
            }
        };
        let _ = tcp.set_nodelay(true);
        let opened = async {
            match &o.tls {
                None => self.handshake(tcp, to).await,
                Some(tls) => {
                    let names = tls::names_of(&to.name, Some(tls::host_of(&to.addr)));
                    let (connector, name) = tls.connector(&names)?;
                    let io = connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("TLS with {} ({}): {e}", to.name, to.addr))?;
                    self.handshake(io, to).await
                }
            }
        };
        match tokio::time::timeout(limit, opened).await {
            Ok(result) => result.map_err(LinkFailure::Failed),
            Err(_) => Err(LinkFailure::Failed(format!(
                "no handshake with {} within {limit:?}",
                to.addr
            ))),
        }
    }

    async fn handshake<I>(&self, io: I, to: &PeerNode) -> Result<Opened, String>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let o = &self.options;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("handshake with {}: {e}", to.addr))?;
        let mut conn = std::pin::pin!(conn.with_upgrades());
        let client_nonce = frames::nonce();
        let path = format!(
            "{}?nonce={}",
            protocol::STREAM_PATH,
            hex::encode(client_nonce)
        );
        let time_ms = auth::now_ms();
        let mut req = hyper::Request::get(&path)
            .header(header::HOST, &to.addr)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, protocol::STREAM_UPGRADE)
            .header(protocol::ELECTION_HEADER, &o.election)
            .header(protocol::FROM_HEADER, &o.me)
            .header(protocol::PROTOCOL_HEADER, protocol::PROTOCOL_VERSION)
            .header(auth::TO_HEADER, &to.name)
            .header(auth::TIME_HEADER, time_ms.to_string());
        if let Some(a) = &o.auth {
            let signed = Signed {
                method: "GET",
                path: &path,
                election: &o.election,
                from: &o.me,
                to: &to.name,
                time_ms,
            };
            req = req.header(auth::MAC_HEADER, a.sign(&signed, b""));
        }
        let req = req
            .body(axum::body::Body::empty())
            .map_err(|e| format!("handshake request: {e}"))?;
        // The connection's future ends once it has read the 101 (it hands the connection
        // over), possibly before the answer's future is polled: it is then left done.
        let answer = sender.send_request(req);
        let mut answer = std::pin::pin!(answer);
        let mut conn_done = false;
        let resp = loop {
            tokio::select! {
                resp = answer.as_mut() => {
                    break resp.map_err(|e| format!("handshake with {}: {e}", to.addr))?
                }
                done = conn.as_mut(), if !conn_done => {
                    done.map_err(|e| format!("handshake with {}: {e}", to.addr))?;
                    conn_done = true;
                }
            }
        };
        if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(Opened::Refused(resp.status().as_u16()));
        }
        let server_nonce = resp
            .headers()
            .get(protocol::NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(frames::parse_nonce)
            .ok_or_else(|| format!("{} accepted a stream without a nonce", to.addr))?;
        let upgraded = match conn_done {
            true => hyper::upgrade::on(resp).await,
            false => tokio::join!(conn, hyper::upgrade::on(resp)).1,
        };
        let io = upgraded.map_err(|e| format!("upgrade with {}: {e}", to.addr))?;
        let session = Session::client(
            o.auth.as_deref(),
            &Ends {
                election: &o.election,
                client: &o.me,
                server: &to.name,
                client_nonce: &client_nonce,
                server_nonce: &server_nonce,
            },
        );
        let framed = Framed::new(TokioIo::new(io), codec());
        Ok(Opened::Stream(Box::new((framed, session))))
    }
}

type Stream = Framed<TokioIo<hyper::upgrade::Upgraded>, LengthDelimitedCodec>;

enum Opened {
    Stream(Box<(Stream, Session)>),
    /// The peer answered the handshake with this status (404: a release before streams).
    Refused(u16),
}

/// Runs one connection: sends the queued calls, hands each answer to its caller, pings when
/// calls wait in silence. Returns why it ended.
async fn run(
    mut framed: Stream,
    mut session: Session,
    mut calls: mpsc::Receiver<Call>,
    stop: CancellationToken,
    stall: Duration,
) -> &'static str {
    let mut waiting: BTreeMap<u64, oneshot::Sender<(u16, Bytes)>> = BTreeMap::new();
    let mut next_id = 0u64;
    // Since when calls have waited with nothing heard, and whether a ping went out since.
    let mut silent_since = Instant::now();
    let mut pinged = false;
    loop {
        let check_at = silent_since + if pinged { stall } else { stall / 2 };
        tokio::select! {
            _ = stop.cancelled() => return "stopping",
            call = calls.recv() => {
                let Some(call) = call else { return "no longer used" };
                if waiting.is_empty() {
                    (silent_since, pinged) = (Instant::now(), false);
                }
                next_id += 1;
                waiting.insert(next_id, call.answer);
                let frame = session.seal(&Head::Call { id: next_id, path: call.path }, &call.body);
                if !send_within(&mut framed, frame, stall).await {
                    return "the peer stopped reading";
                }
            }
            frame = framed.next() => {
                let bytes = match frame {
                    None => return "closed by the peer",
                    Some(Err(_)) => return "unreadable frame",
                    Some(Ok(bytes)) => bytes,
                };
                (silent_since, pinged) = (Instant::now(), false);
                match session.open(&bytes) {
                    Ok((Head::Answer { id, status }, body)) => {
                        if let Some(answer) = waiting.remove(&id) {
                            let _ = answer.send((status, body));
                        }
                    }
                    Ok((Head::Pong, _)) => {}
                    Ok(_) => return "unexpected frame from the peer",
                    Err(_) => return "a frame failed its check",
                }
            }
            // Calls whose callers gave up still count: the peer answers every call, so a
            // connection that owes answers and stays silent is dead.
            _ = tokio::time::sleep_until(check_at), if !waiting.is_empty() => {
                if pinged {
                    return "stalled: calls waited and nothing came back";
                }
                pinged = true;
                let ping = session.seal(&Head::Ping, &[]);
                if !send_within(&mut framed, ping, stall).await {
                    return "the peer stopped reading";
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A peer that accepts every stream's handshake, then never answers a call.
    async fn silent_peer() -> (String, Arc<AtomicUsize>) {
        slow_silent_peer(Duration::ZERO).await
    }

    /// [`silent_peer`] that answers each handshake only `delay` after its request arrived.
    async fn slow_silent_peer(delay: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                tokio::time::sleep(delay).await;
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: {}\r\n{}: {}\r\n\r\n",
                    protocol::STREAM_UPGRADE,
                    protocol::NONCE_HEADER,
                    hex::encode(frames::nonce())
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
                held.push(tcp);
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn a_stream_that_owes_answers_and_stays_silent_is_dropped_and_the_next_call_reconnects() {
        let (addr, accepted) = silent_peer().await;
        let stall = Duration::from_millis(200);
        let links = Arc::new(Links::new(LinkOptions {
            election: "jobs".into(),
            me: "web-0".into(),
            connect_timeout: Duration::from_secs(1),
            stall,
            auth: None,
            tls: None,
        }));
        let to = PeerNode {
            name: "web-1".into(),
            addr,
        };
        // The caller waits longer than the stall bound: the connection gives up first.
        let started = Instant::now();
        match links
            .call(
                &to,
                protocol::STATUS_PATH,
                Vec::new(),
                Duration::from_secs(5),
            )
            .await
        {
            Routed::Failed(why) => assert!(why.contains("broke"), "{why}"),
            other => panic!("{other:?}"),
        }
        let waited = started.elapsed();
        assert!(
            waited >= stall && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let again = links.call(
            &to,
            protocol::STATUS_PATH,
            Vec::new(),
            Duration::from_millis(50),
        );
        assert!(matches!(again.await, Routed::Failed(_)));
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "no new connection");
        links.shutdown().await;
    }

    #[tokio::test]
    async fn a_handshake_slower_than_the_calls_deadlines_completes_and_later_calls_use_it() {
        let (addr, accepted) = slow_silent_peer(Duration::from_millis(150)).await;
        let links = Arc::new(Links::new(LinkOptions {
            election: "jobs".into(),
            me: "web-0".into(),
            connect_timeout: Duration::from_secs(2),
            stall: Duration::from_secs(10),
            auth: None,
            tls: None,
        }));
        let to = PeerNode {
            name: "web-1".into(),
            addr,
        };
        let call = |timeout| {
            let (links, to) = (links.clone(), to.clone());
            async move {
                links
                    .call(&to, protocol::STATUS_PATH, Vec::new(), timeout)
                    .await
            }
        };
        // Each call gives up long before the handshake is answered.
        match call(Duration::from_millis(20)).await {
            Routed::Unreachable(why) => assert!(why.contains("no connection within"), "{why}"),
            other => panic!("{other:?}"),
        }
        // The handshake went on without its caller: once it is answered, a call is sent
        // over that connection (the silent peer never answers it) and no other is opened.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match call(Duration::from_millis(20)).await {
                Routed::Failed(why) if why.contains("no answer") => break,
                Routed::Unreachable(_) => {
                    assert!(Instant::now() < deadline, "never connected");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "a handshake was cut off"
        );
        links.shutdown().await;
    }
}
