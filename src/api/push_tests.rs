//! Handler tests of the push endpoints ([`super::compat`], [`super::events`]) against a fake
//! view whose pushed state the test moves.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use futures::StreamExt;
use tokio::sync::watch;
use tower::ServiceExt;

use super::app::router;
use super::view::{BoxFuture, MembersAnswer, NodeView, Observation, Published, Resigned, Role};

struct Live(watch::Sender<Published>);

impl NodeView for Live {
    fn observe(&self) -> Observation {
        self.0.borrow().obs.clone()
    }
    fn render_metrics(&self) -> String {
        String::new()
    }
    fn members(&self) -> MembersAnswer {
        MembersAnswer {
            index: None,
            applied: None,
            voters: 0,
            learners: 0,
            joint: false,
            members: vec![],
        }
    }
    fn resign(&self) -> BoxFuture<'_, Resigned> {
        Box::pin(async { Resigned::NotLeader })
    }
    fn subscribe(&self) -> watch::Receiver<Published> {
        self.0.subscribe()
    }
}

fn obs(name: &str, term: u64) -> Observation {
    Observation {
        name: name.into(),
        term,
        is_leader: false,
        id: "web-0".into(),
        election: "jobs".into(),
        role: Role::Follower,
        valid_ms: 100,
        voters: 3,
        ..Observation::default()
    }
}

fn set(view: &Live, name: &str, term: u64) {
    view.0.send_modify(|p| {
        if p.obs.name != name {
            p.last_update = SystemTime::now();
        }
        p.obs = obs(name, term);
    });
}

fn live(name: &str, term: u64, max_streams: usize) -> (Arc<Live>, Router) {
    let (tx, _) = watch::channel(Published {
        obs: obs(name, term),
        last_update: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    });
    let view = Arc::new(Live(tx));
    let app = router(view.clone(), max_streams);
    (view, app)
}

async fn send(app: &Router, path: &str) -> axum::response::Response {
    app.clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("response")
}

async fn json(resp: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("json")
}

/// The SSE body as a stream of frames (text chunks).
fn frames(resp: axum::response::Response) -> impl futures::Stream<Item = String> + Unpin {
    Box::pin(
        resp.into_body()
            .into_data_stream()
            .map(|c| String::from_utf8_lossy(&c.unwrap_or_else(|_| Bytes::new())).into_owned()),
    )
}

async fn next(s: &mut (impl futures::Stream<Item = String> + Unpin)) -> String {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream is open")
}

#[tokio::test]
async fn root_answers_name_and_last_update_uncached() {
    let (_view, app) = live("web-1", 3, 4);
    let resp = send(&app, "/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
    let body = json(resp).await;
    assert_eq!(body["name"], "web-1");
    assert_eq!(body["last_update"], "2023-11-14T22:13:20.000Z");
}

#[tokio::test]
async fn other_paths_keep_the_old_sidecar_answer() {
    let (_view, app) = live("web-1", 3, 4);
    let body = json(send(&app, "/anything").await).await;
    assert_eq!(body, serde_json::json!({ "name": "web-1" }));
}

#[tokio::test]
async fn sse_sends_now_then_each_change_of_leader_only() {
    let (view, app) = live("web-1", 3, 4);
    let resp = send(&app, "/sse").await;
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut s = frames(resp);
    let first = next(&mut s).await;
    assert!(first.starts_with("data: {"), "{first}");
    assert!(first.contains(r#""name":"web-1""#), "{first}");
    set(&view, "web-1", 4); // a new term, same leader: no event
    set(&view, "", 4);
    let second = next(&mut s).await;
    assert!(second.contains(r#""name":"""#), "{second}");
    set(&view, "web-2", 5);
    assert!(next(&mut s).await.contains(r#""name":"web-2""#));
}

#[tokio::test]
async fn leader_events_carry_the_term_as_id_and_skip_to_the_newest() {
    let (view, app) = live("web-1", 3, 4);
    let mut s = frames(send(&app, "/v1/leader/events").await);
    let first = next(&mut s).await;
    assert!(first.contains("id: 3\n"), "{first}");
    assert!(first.contains(r#""is_leader":false"#), "{first}");
    // A reader that does not read while three changes happen sees only the last.
    set(&view, "", 4);
    set(&view, "web-2", 5);
    set(&view, "web-0", 6);
    let last = next(&mut s).await;
    assert!(last.contains("id: 6\n"), "{last}");
    assert!(last.contains(r#""name":"web-0""#), "{last}");
}

#[tokio::test]
async fn long_poll_returns_at_once_when_the_caller_is_behind() {
    let (_view, app) = live("web-1", 3, 4);
    let resp = send(&app, "/v1/leader?wait=5m&term=2").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json(resp).await["term"], 3);
}

#[tokio::test]
async fn wait_without_a_term_answers_at_once() {
    let (_view, app) = live("web-1", 3, 4);
    let resp = tokio::time::timeout(Duration::from_secs(5), send(&app, "/v1/leader?wait=60s"))
        .await
        .expect("at once");
    assert_eq!(json(resp).await["name"], "web-1");
}

#[tokio::test]
async fn long_poll_returns_on_a_change_of_leader() {
    let (view, app) = live("web-1", 3, 4);
    let waiting = tokio::spawn(async move { send(&app, "/v1/leader?wait=30s&term=3").await });
    // Let the query start waiting; the answer must come on the change, not after 30 s.
    tokio::time::sleep(Duration::from_millis(50)).await;
    set(&view, "web-2", 3);
    let resp = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered on the change")
        .expect("task");
    assert_eq!(json(resp).await["name"], "web-2");
}

#[tokio::test]
async fn long_poll_answers_unchanged_after_wait() {
    let (_view, app) = live("web-1", 3, 4);
    let start = std::time::Instant::now();
    let resp = send(&app, "/v1/leader?wait=200ms&term=3&name=web-1").await;
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json(resp).await["name"], "web-1");
}

#[tokio::test]
async fn bad_wait_or_term_is_a_400_with_a_message() {
    let (_view, app) = live("web-1", 3, 4);
    for path in [
        "/v1/leader?wait=soon",
        "/v1/leader?wait=-1s",
        "/v1/leader?term=abc",
        "/v1/leader?wait=1s&term=-1",
    ] {
        let resp = send(&app, path).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = json(resp).await;
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.starts_with("bad "), "{path}: {body}");
    }
}

#[tokio::test]
async fn streams_past_the_bound_get_503_and_a_dropped_one_frees_its_slot() {
    let (_view, app) = live("web-1", 3, 2);
    let a = send(&app, "/sse").await;
    let b = send(&app, "/v1/leader/events").await;
    assert_eq!(b.status(), StatusCode::OK);
    for path in ["/sse", "/v1/leader/events", "/v1/leader?wait=1s&term=3"] {
        let resp = send(&app, path).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(json(resp).await["error"].is_string());
    }
    // Plain answers are not streams: never refused.
    assert_eq!(send(&app, "/v1/leader").await.status(), StatusCode::OK);
    drop(a);
    assert_eq!(send(&app, "/sse").await.status(), StatusCode::OK);
    drop(b);
}
