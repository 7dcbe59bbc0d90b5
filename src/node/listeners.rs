//! The listeners of a peer and their limits: HTTP/1.1 with a bound on connections, on the time
//! a client may take to send its request head (slowloris), on request bodies and on handler
//! time. The application API and the probes are served on a thread and runtime of their own.
//!
//! `axum::serve` offers none of these knobs, so connections are served with hyper directly; the
//! routers stay plain axum.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::Instrument;

use crate::metrics::{LogGate, Metrics};
use crate::peer::tls::{PeerCertificate, PeerTls};

/// Bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; further ones are closed at once.
    pub max_connections: usize,
    /// Time allowed to send a request's head.
    pub header_timeout: Duration,
    /// Time allowed for a handler to answer.
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// How long in-flight requests may finish after the stop signal.
    pub drain: Duration,
    /// A fixed kernel send buffer per connection (its autotuning off), or the kernel's.
    pub send_buffer: Option<usize>,
}

impl Limits {
    /// The application listener: small GET requests from the local application.
    pub fn app(drain: Duration) -> Self {
        Limits {
            // Room for the default --max-streams (1024) and the ordinary requests beside them.
            max_connections: 1280,
            header_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body: 64 * 1024,
            drain,
            // Event streams and metrics pages: the kernel sizes them.
            send_buffer: None,
        }
    }

    /// The peer listener: a handful of peers, bodies up to the wire limit.
    pub fn peer(drain: Duration) -> Self {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body: crate::wire::MAX_MESSAGE,
            drain,
            send_buffer: Some(PEER_SEND_BUFFER),
        }
    }
}

/// The send buffer of an accepted peer connection. What a peer answers is small (votes,
/// acknowledgements, status; a snapshot goes the other way), so this holds hundreds of
/// answers. It bounds how many answers a peer that stops reading makes this one hold before
/// its stream is cut off as stalled, and the kernel memory it pins: with autotuning the
/// buffer of such a connection grows to several MiB first (tcp_wmem's maximum).
pub const PEER_SEND_BUFFER: usize = 64 * 1024;

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {what} on {addr}: {source}")]
pub struct BindError {
    what: &'static str,
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds a listener for the runtime of the caller.
pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { what, addr, source })
}

/// Binds a listener that [`serve_apart`] will serve on its own runtime.
pub fn bind_std(what: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| BindError { what, addr, source })
}

/// Serves the application API (and the probe listener) on a thread and runtime of their own:
/// however hard a local client hammers them, it cannot take worker time from Raft and the
/// peer listener, whose heartbeats keep the leadership alive.
pub fn serve_apart(
    servers: Vec<(std::net::TcpListener, Router)>,
    stop: CancellationToken,
    limits: Limits,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let span = tracing::Span::current();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let run = async move {
        let serving = servers.into_iter().map(|(listener, router)| {
            let stop = stop.clone();
            async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener, router, stop, limits, None).await,
                    Err(e) => tracing::error!(error = %e, "cannot serve the application API"),
                }
            }
        });
        futures::future::join_all(serving).await;
    };
    std::thread::Builder::new()
        .name("app-api".into())
        .spawn(move || runtime.block_on(run.instrument(span)))
}

/// Applies the body and time limits to a router. A blocking query (`/v1/leader?term=`) may
/// take its wait on top of the handler time; a stream's body is not bounded (only producing
/// its head is).
pub fn limited(router: Router, limits: Limits) -> Router {
    router
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            limits.max_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            time_limit,
        ))
}

async fn time_limit(
    axum::extract::State(base): axum::extract::State<Duration>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = base + crate::api::events::extra_time(req.uri());
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            use axum::response::IntoResponse;
            axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// Peer TLS on a listener: every connection must complete a TLS 1.3 handshake with a
/// client certificate of the CA first; those that do not are closed and counted (`tls`).
#[derive(Clone)]
pub struct Tls {
    pub tls: Arc<PeerTls>,
    pub metrics: Arc<Metrics>,
    /// Refused handshakes are logged at most every 10 s.
    pub log: Arc<LogGate>,
}

impl Tls {
    fn refused(&self, why: &str) {
        self.metrics.refused("tls");
        if self.log.due() {
            tracing::warn!(why, "refused a peer connection's TLS handshake (logged at most every 10 s; see raft_elector_peer_requests_refused_total, reason tls)");
        }
    }
}

/// Serves `router` on `listener` until `stop` fires, then lets in-flight requests finish for
/// at most `limits.drain`. Connections may be upgraded (peer streams): an upgraded one is
/// the router's to serve and no longer counts here. With `tls`, every connection is TLS and
/// each request carries the client's certificate ([`PeerCertificate`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    limits: Limits,
    tls: Option<Tls>,
) {
    let router = limited(router, limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("connection limit reached; closing a new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        if let Some(size) = limits.send_buffer {
            // Best effort: a kernel that refuses keeps its own sizing.
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(size);
        }
        let (router, http, stop, tls) = (router.clone(), http.clone(), stop.clone(), tls.clone());
        connections.spawn(
            async move {
                match tls {
                    None => connection(TokioIo::new(stream), router, None, &http, stop).await,
                    Some(tls) => {
                        let accept = tls.tls.acceptor().accept(stream);
                        match tokio::time::timeout(limits.header_timeout, accept).await {
                            Ok(Ok(stream)) => {
                                let cert = stream.get_ref().1.peer_certificates().and_then(|c| {
                                    c.first()
                                        .map(|c| PeerCertificate(Arc::new(c.clone().into_owned())))
                                });
                                connection(TokioIo::new(stream), router, cert, &http, stop).await
                            }
                            Ok(Err(e)) => tls.refused(&e.to_string()),
                            Err(_) => tls.refused("no handshake within the header timeout"),
                        }
                    }
                }
                drop(slot);
            }
            .in_current_span(),
        );
    }
    drop(listener);
    connections.close();
    let _ = tokio::time::timeout(limits.drain, connections.wait()).await;
}

/// Serves one connection until it ends, or until `stop` and then its graceful shutdown.
async fn connection<I>(
    io: I,
    router: Router,
    cert: Option<PeerCertificate>,
    http: &hyper::server::conn::http1::Builder,
    stop: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = router.map_request(move |req: Request<Incoming>| {
        let mut req = req.map(Body::new);
        if let Some(cert) = &cert {
            req.extensions_mut().insert(cert.clone());
        }
        req
    });
    let conn = http
        .serve_connection(io, TowerToHyperService::new(service))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
