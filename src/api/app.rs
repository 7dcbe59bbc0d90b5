//! The application-facing API, a drop-in for the old `leader-elector` sidecar.
//!
//! | path          | answer                                                               |
//! |---------------|----------------------------------------------------------------------|
//! | `/`           | 200 `{"name","last_update"}` (nais/elector; old clients read `name`) |
//! | `/sse`        | SSE: `data: {"name","last_update"}` now and on every change of leader |
//! | any other     | 200 `{"name":"<leader>"}`, `{"name":""}` when none is known (compat)  |
//! | `/isLeader`   | 200 `{"isLeader":true\|false}` for this peer (compat)                 |
//! | `/v1/leader`  | 200 `{"name","term","is_leader","voters",...}`; 503 with `"name":""` if none |
//! | `/v1/leader?term=N&name=X&wait=30s` | the same, once leader or term differ from the caller's (blocking query) |
//! | `/v1/leader/events` | SSE: the `/v1/leader` object now and on every change, `id:` = term |
//! | `/v1/members` | 200 the membership in force: every member's role and reachability     |
//! | `/healthz`    | 200 while the process serves                                          |
//! | `/readyz`     | 200 while a leader is known (and this peer is not a learner about to be promoted), else 503 |
//! | `/metrics`    | Prometheus text                                                       |
//! | `POST /v1/resign` | this peer hands leadership to another peer, if it leads           |
//!
//! Every answer is computed from [`NodeView::observe`] at the moment of the request; the
//! push endpoints ([`super::compat`], [`super::events`]) follow [`NodeView::subscribe`].

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::events::Streams;
use super::view::{NodeView, Resigned};
use super::{compat, events};

type AppState = Arc<dyn NodeView>;

/// The application router's state: the view and the bound on open streams.
#[derive(Clone)]
pub struct Api {
    view: Arc<dyn NodeView>,
    streams: Streams,
}

impl FromRef<Api> for Arc<dyn NodeView> {
    fn from_ref(api: &Api) -> Self {
        api.view.clone()
    }
}

impl FromRef<Api> for Streams {
    fn from_ref(api: &Api) -> Self {
        api.streams.clone()
    }
}

/// Builds the application API router over a view, with at most `max_streams` push streams
/// and blocking queries open at once.
pub fn router(view: Arc<dyn NodeView>, max_streams: usize) -> Router {
    let api = Api {
        view,
        streams: Streams::new(max_streams),
    };
    Router::new()
        .route("/", get(compat::root))
        .route("/sse", get(compat::sse))
        .route("/v1/leader", get(events::leader))
        .route("/v1/leader/events", get(events::leader_events))
        .route("/v1/members", get(members))
        .route("/isLeader", get(is_leader))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/resign", post(resign))
        .fallback(compat)
        .with_state(api)
}

/// The probe listener's router: health, readiness and metrics only, for the kubelet and
/// Prometheus (the application API itself can then stay on localhost).
pub fn probe_router(view: Arc<dyn NodeView>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(view)
}

/// The old sidecar's answer, on every path it did not know.
async fn compat(State(view): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "name": view.observe().name }))
}

async fn is_leader(State(view): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "isLeader": view.observe().is_leader }))
}

async fn members(State(view): State<AppState>) -> Json<super::view::MembersAnswer> {
    Json(view.members())
}

async fn resign(State(view): State<AppState>) -> Response {
    match view.resign().await {
        Resigned::HandedOver { to, term, elapsed } => (
            StatusCode::OK,
            Json(json!({ "resigned": true, "leader": to, "term": term, "elapsed_ms": elapsed.as_millis() as u64 })),
        )
            .into_response(),
        Resigned::NotLeader => not_resigned(StatusCode::CONFLICT, "this peer is not the leader"),
        Resigned::Alone => not_resigned(
            StatusCode::CONFLICT,
            "this peer is the only one of its election",
        ),
        Resigned::TimedOut => not_resigned(
            StatusCode::SERVICE_UNAVAILABLE,
            "no other peer took over in time; this peer still leads",
        ),
    }
}

fn not_resigned(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({ "resigned": false, "reason": reason }))).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(view): State<AppState>) -> Response {
    let obs = view.observe();
    let ready = obs.ready();
    let body = json!({ "ready": ready, "leader": obs.name, "term": obs.term });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(view): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        view.render_metrics(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::api::view::{BoxFuture, Observation, Role};

    struct Fixed(Observation);

    impl NodeView for Fixed {
        fn observe(&self) -> Observation {
            self.0.clone()
        }
        fn render_metrics(&self) -> String {
            "raft_elector_term 4\n".into()
        }
        fn members(&self) -> super::super::view::MembersAnswer {
            super::super::view::MembersAnswer {
                index: Some(3),
                applied: Some(4),
                voters: 1,
                learners: 0,
                joint: false,
                members: vec![],
            }
        }
        fn resign(&self) -> BoxFuture<'_, Resigned> {
            Box::pin(async { Resigned::NotLeader })
        }
        fn subscribe(&self) -> tokio::sync::watch::Receiver<crate::api::view::Published> {
            let published = crate::api::view::Published {
                obs: self.0.clone(),
                last_update: std::time::SystemTime::UNIX_EPOCH,
            };
            tokio::sync::watch::channel(published).1
        }
    }

    fn obs(name: &str, is_leader: bool) -> Observation {
        Observation {
            name: name.into(),
            term: 4,
            is_leader,
            id: "web-0".into(),
            election: "jobs".into(),
            role: if is_leader {
                Role::Leader
            } else {
                Role::Follower
            },
            valid_ms: 100,
            voters: 3,
            app_healthy: None,
            awaiting_promotion: false,
        }
    }

    async fn get(view: Observation, path: &str) -> (StatusCode, serde_json::Value) {
        let resp = router(Arc::new(Fixed(view)), 4)
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn compat_answers_any_path() {
        for path in ["/anything/else", "/x?y=1"] {
            let (status, body) = get(obs("web-1", false), path).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, json!({"name": "web-1"}));
        }
        // `/` is nais/elector's shape, which old clients read just as well (only `name`).
        for path in ["/", "/?x=1"] {
            let (status, body) = get(obs("web-1", false), path).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["name"], "web-1");
            assert!(body["last_update"].is_string());
        }
        let (_, body) = get(obs("", false), "/").await;
        assert_eq!(body["name"], "");
    }

    #[tokio::test]
    async fn v1_leader_is_503_without_leader() {
        let (status, body) = get(obs("", false), "/v1/leader").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["name"], "");
        let (status, body) = get(obs("web-0", true), "/v1/leader").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (
                body["name"].as_str(),
                body["term"].as_u64(),
                body["is_leader"].as_bool()
            ),
            (Some("web-0"), Some(4), Some(true))
        );
        let (_, body) = get(obs("web-0", true), "/isLeader").await;
        assert_eq!(body, json!({"isLeader": true}));
    }

    #[tokio::test]
    async fn readiness_follows_leader_knowledge() {
        assert_eq!(
            get(obs("", false), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get(obs("web-2", false), "/readyz").await.0, StatusCode::OK);
    }
}
