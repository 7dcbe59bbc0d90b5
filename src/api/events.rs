//! Push for raft-elector's own API: `GET /v1/leader/events` (Server-Sent Events) and the
//! blocking query `GET /v1/leader?term=N[&name=NAME][&wait=DURATION]` (as Consul's: `term`
//! makes it block; the name defaults to the current one, `wait` to 5 min).
//!
//! Both read the pushed state ([`NodeView::subscribe`], a `tokio::sync::watch` channel): a
//! reader that falls behind skips to the newest state, so a slow or stalled client costs the
//! peer nothing but its socket. Each stream or blocking query holds one of the
//! `--max-streams` permits ([`Streams`]) and gives it back when the connection drops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::view::{NodeView, Observation, Published};

/// The longest a blocking query waits (a longer `wait` is cut to this).
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// How often an idle stream sends a comment line, so that proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Handler time a request may take beyond the usual bound: a blocking query its wait.
pub fn extra_time(uri: &axum::http::Uri) -> Duration {
    let blocking = uri.path() == "/v1/leader"
        && uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("term=")));
    if blocking {
        MAX_WAIT
    } else {
        Duration::ZERO
    }
}

/// The bound on open streams and blocking queries.
#[derive(Clone)]
pub struct Streams(Arc<Semaphore>);

impl Streams {
    pub fn new(max: usize) -> Self {
        Streams(Arc::new(Semaphore::new(max)))
    }

    /// A permit, or the 503 answer when the bound is reached.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Response> {
        self.0.clone().try_acquire_owned().map_err(|_| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many open streams and blocking queries on this peer (--max-streams); retry later",
            )
        })
    }
}

/// A JSON error answer: `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// 200 with the observation while a leader is known, else 503 (as `/v1/leader` always did).
pub fn leader_answer(obs: Observation) -> Response {
    let status = if obs.leader_known() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(obs)).into_response()
}

/// The stream of pushed states: the current one at once, then each change; a reader that
/// falls behind gets only the newest. Ends when the peer stops. Holds `permit` while open.
pub fn states(
    rx: watch::Receiver<Published>,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Published> + Send {
    futures::stream::unfold((rx, permit, true), |(mut rx, permit, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let state = rx.borrow_and_update().clone();
        Some((state, (rx, permit, false)))
    })
}

/// `GET /v1/leader/events`: the full `/v1/leader` object at once and on every change of
/// leader, term or this peer's role, with `id:` = term. A client reconnecting with
/// `Last-Event-ID` gets the current state at once like any other.
pub async fn leader_events(
    State(view): State<Arc<dyn NodeView>>,
    State(streams): State<Streams>,
) -> Response {
    let permit = match streams.admit() {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let events = futures::StreamExt::map(states(view.subscribe(), permit), |p| {
        Ok::<_, Infallible>(event(&p.obs))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn event(obs: &Observation) -> Event {
    let data = serde_json::to_string(obs).unwrap_or_else(|_| "{}".into());
    Event::default().id(obs.term.to_string()).data(data)
}

/// The query of `GET /v1/leader`; all optional, parsed by hand for clear errors.
#[derive(Debug, Default, Deserialize)]
pub struct LeaderQuery {
    wait: Option<String>,
    term: Option<String>,
    name: Option<String>,
}

/// What a blocking query waits for a change from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocking {
    pub wait: Duration,
    /// The term the caller saw.
    pub term: u64,
    /// The leader the caller saw (default: the current one).
    pub name: Option<String>,
}

impl LeaderQuery {
    /// None: answer at once. As Consul's index, `term` makes the query block: a caller that
    /// gives none has seen nothing, so anything differs (`wait` is still checked).
    pub fn blocking(&self) -> Result<Option<Blocking>, String> {
        let wait = match &self.wait {
            None => MAX_WAIT,
            Some(w) => parse_wait(w)?,
        };
        let Some(term) = &self.term else {
            return Ok(None);
        };
        let term = term.trim().parse::<u64>().map_err(|_| {
            format!("bad term {term:?}: expected the term of the last answer, a whole number")
        })?;
        Ok(Some(Blocking {
            wait,
            term,
            name: self.name.clone(),
        }))
    }
}

/// A duration as `30s`, `500ms`, `5m` or `1m30s` (a bare number counts seconds), cut to
/// [`MAX_WAIT`].
pub fn parse_wait(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let parsed = match t.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(t),
    };
    parsed.map(|d| d.min(MAX_WAIT)).map_err(|e| {
        format!("bad wait {text:?}: {e}; expected a duration such as 30s, 500ms or 5m (at most 5m)")
    })
}

/// `GET /v1/leader`, with or without a blocking query.
pub async fn leader(
    State(view): State<Arc<dyn NodeView>>,
    State(streams): State<Streams>,
    query: Result<Query<LeaderQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad query: {e}")),
    };
    let blocking = match query.blocking() {
        Ok(None) => return leader_answer(view.observe()),
        Ok(Some(b)) => b,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let _permit = match streams.admit() {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    wait_for_change(view.subscribe(), &blocking).await;
    leader_answer(view.observe())
}

/// Waits until the pushed leader or term differs from what the caller saw (`term`, and `name`
/// or else the leader named when the query arrived), at most `wait`.
pub async fn wait_for_change(mut rx: watch::Receiver<Published>, b: &Blocking) {
    let (seen_term, seen_name) = {
        let now = rx.borrow_and_update();
        (
            b.term,
            b.name.clone().unwrap_or_else(|| now.obs.name.clone()),
        )
    };
    let deadline = tokio::time::Instant::now() + b.wait;
    loop {
        {
            let now = rx.borrow_and_update();
            if now.obs.term != seen_term || now.obs.name != seen_name {
                return;
            }
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            // The peer stops, or the wait is over: answer with what holds now.
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(wait: Option<&str>, term: Option<&str>) -> LeaderQuery {
        LeaderQuery {
            wait: wait.map(Into::into),
            term: term.map(Into::into),
            name: None,
        }
    }

    #[test]
    fn waits_are_parsed_and_capped() {
        assert_eq!(parse_wait("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_wait("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_wait("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_wait("1h"), Ok(MAX_WAIT));
        for bad in ["", "soon", "-1s", "1 fortnight", "99999999999999999999999s"] {
            let e = parse_wait(bad).expect_err(bad);
            assert!(e.contains("bad wait"), "{e}");
        }
    }

    #[test]
    fn a_query_blocks_only_with_a_term() {
        assert_eq!(q(None, None).blocking(), Ok(None));
        assert_eq!(q(Some("2s"), None).blocking(), Ok(None));
        assert!(q(Some("soon"), None).blocking().is_err());
        let b = q(None, Some("4")).blocking().expect("ok").expect("blocks");
        assert_eq!((b.wait, b.term), (MAX_WAIT, 4));
        let b = q(Some("2s"), Some("4"))
            .blocking()
            .expect("ok")
            .expect("blocks");
        assert_eq!((b.wait, b.term), (Duration::from_secs(2), 4));
        assert!(q(Some("2s"), Some("x")).blocking().is_err());
        assert!(q(Some("2s"), Some("-3")).blocking().is_err());
    }
}
