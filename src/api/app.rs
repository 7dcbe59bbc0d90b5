//! The application-facing API, a drop-in for the old `leader-elector` sidecar.
//!
//! | path          | answer                                                               |
//! |---------------|----------------------------------------------------------------------|
//! | any other     | 200 `{"name":"<leader>"}`, `{"name":""}` when none is known (compat)  |
//! | `/isLeader`   | 200 `{"isLeader":true\|false}` for this peer (compat)                 |
//! | `/v1/leader`  | 200 `{"name","term","is_leader",...}`; 503 with `"name":""` if none   |
//! | `/healthz`    | 200 while the process serves                                          |
//! | `/readyz`     | 200 while a leader is known, else 503                                 |
//! | `/metrics`    | Prometheus text                                                       |
//! | `POST /v1/resign` | this peer hands leadership to another peer, if it leads           |
//!
//! Every answer is computed from [`NodeView::observe`] at the moment of the request.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::view::{NodeView, Resigned};

type AppState = Arc<dyn NodeView>;

/// Builds the application API router over a view.
pub fn router(view: Arc<dyn NodeView>) -> Router {
    Router::new()
        .route("/v1/leader", get(leader))
        .route("/isLeader", get(is_leader))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/resign", post(resign))
        .fallback(compat)
        .with_state(view)
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

/// 200 while a leader is known, else 503: what `/v1/leader` and `/readyz` answer with.
fn known(leader_known: bool) -> StatusCode {
    if leader_known {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn leader(State(view): State<AppState>) -> Response {
    let obs = view.observe();
    (known(obs.leader_known()), Json(obs)).into_response()
}

async fn resign(State(view): State<AppState>) -> Response {
    match view.resign().await {
        Resigned::HandedOver { to, term, elapsed } => (
            StatusCode::OK,
            Json(json!({ "resigned": true, "leader": to, "term": term, "elapsed_ms": elapsed.as_millis() as u64 })),
        )
            .into_response(),
        Resigned::NotLeader => {
            (StatusCode::CONFLICT, Json(json!({ "resigned": false, "reason": "this peer is not the leader" })))
                .into_response()
        }
        Resigned::Alone => (
            StatusCode::CONFLICT,
            Json(json!({ "resigned": false, "reason": "this peer is the only one of its election" })),
        )
            .into_response(),
        Resigned::TimedOut => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "resigned": false, "reason": "no other peer took over in time; this peer still leads" })),
        )
            .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(view): State<AppState>) -> Response {
    let obs = view.observe();
    let body = json!({ "ready": obs.leader_known(), "leader": obs.name, "term": obs.term });
    (known(obs.leader_known()), Json(body)).into_response()
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
        fn resign(&self) -> BoxFuture<'_, Resigned> {
            Box::pin(async { Resigned::NotLeader })
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
        }
    }

    async fn get(view: Observation, path: &str) -> (StatusCode, serde_json::Value) {
        let resp = router(Arc::new(Fixed(view)))
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
        for path in ["/", "/anything/else", "/?x=1"] {
            let (status, body) = get(obs("web-1", false), path).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, json!({"name": "web-1"}));
        }
        let (_, body) = get(obs("", false), "/").await;
        assert_eq!(body, json!({"name": ""}));
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
