//! The HTTP server loop both listeners use: HTTP/1.1 with a bound on connections, on the time a
//! client may take to send its request head (slowloris), on request bodies and on handler time.
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
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

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
}

/// Applies the body and time limits to a router.
pub fn limited(router: Router, limits: Limits) -> Router {
    router
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            limits.max_body,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
}

/// Serves `router` on `listener` until `stop` fires, then lets in-flight requests finish for
/// at most `limits.drain`.
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken, limits: Limits) {
    let router = limited(router, limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
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
        let service = router
            .clone()
            .map_request(|req: Request<Incoming>| req.map(Body::new));
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(
            async move {
                let _ = conn.await;
                drop(slot);
            }
            .in_current_span(),
        );
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain, graceful.shutdown()).await;
}
