//! The job API against a fake ledger view: statuses, bodies and the checks made before the
//! view is asked.

use std::sync::Mutex;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::*;
use crate::ledger::{Changed, Claim, Done, Ledger};

/// A ledger applied in memory, as one peer that always leads would.
#[derive(Default)]
struct Fake {
    ledger: Mutex<Ledger>,
    index: Mutex<u64>,
    asked: Mutex<usize>,
}

impl Fake {
    fn next(&self) -> u64 {
        *self.asked.lock().expect("lock") += 1;
        let mut i = self.index.lock().expect("lock");
        *i += 1;
        *i
    }
}

impl JobsView for Fake {
    fn claim(&self, job: String, slot: String) -> BoxFuture<'_, JobResult<ClaimOutcome>> {
        let index = self.next();
        let holder = if slot.starts_with("theirs") {
            "web-1"
        } else {
            "web-0"
        };
        let c = Claim {
            job,
            slot,
            holder: holder.into(),
            at_ms: 1,
            history: 2,
            retry_of: None,
        };
        let out = self
            .ledger
            .lock()
            .expect("lock")
            .claim(&c, index, 1, &mut Changed::default());
        Box::pin(async move { JobResult::Decided(out) })
    }
    fn report(
        &self,
        job: String,
        slot: String,
        token: u64,
        ok: bool,
        detail: String,
    ) -> BoxFuture<'_, JobResult<DoneOutcome>> {
        self.next();
        let d = Done {
            job,
            slot,
            token,
            outcome: if ok {
                crate::ledger::Outcome::Ok
            } else {
                crate::ledger::Outcome::Failed
            },
            detail,
            at_ms: 2,
        };
        let out = self
            .ledger
            .lock()
            .expect("lock")
            .done(&d, &mut Changed::default());
        Box::pin(async move { JobResult::Decided(out) })
    }
    fn jobs(&self) -> Vec<JobSummary> {
        self.ledger.lock().expect("lock").summaries()
    }
    fn job(&self, job: &str) -> Option<JobLedger> {
        self.ledger.lock().expect("lock").jobs.get(job).cloned()
    }
}

async fn call(app: &Router, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

#[tokio::test]
async fn claims_answer_201_200_409_and_410_as_the_ledger_decides() {
    let fake = Arc::new(Fake::default());
    let app = router(fake.clone());
    let (s, b) = call(&app, "POST", "/v1/jobs/mail/claims", r#"{"slot":"a"}"#).await;
    assert_eq!(
        (s, &b["holder"], &b["token"], &b["outcome"]),
        (
            StatusCode::CREATED,
            &json!("web-0"),
            &json!(1),
            &json!("running")
        )
    );
    let (s, b) = call(&app, "POST", "/v1/jobs/mail/claims", r#"{"slot":"a"}"#).await;
    assert_eq!((s, &b["token"]), (StatusCode::OK, &json!(1)));
    let (s, _) = call(
        &app,
        "POST",
        "/v1/jobs/mail/claims",
        r#"{"slot":"theirs-b"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = call(
        &app,
        "POST",
        "/v1/jobs/mail/claims",
        r#"{"slot":"theirs-c"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    // History 2: "a" is forgotten now.
    let (s, b) = call(&app, "POST", "/v1/jobs/mail/claims", r#"{"slot":"a"}"#).await;
    assert_eq!(s, StatusCode::GONE, "{b}");
    let (s, b) = call(&app, "GET", "/v1/jobs/mail", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["slots"][0]["slot"], "theirs-c", "newest first: {b}");
    assert_eq!(b["forgotten_up_to"], "a");
    let (s, b) = call(&app, "GET", "/v1/jobs", "").await;
    assert_eq!((s, &b["jobs"][0]["slots"]), (StatusCode::OK, &json!(2)));
}

#[tokio::test]
async fn bad_keys_and_bodies_are_refused_before_the_ledger_is_asked() {
    let fake = Arc::new(Fake::default());
    let app = router(fake.clone());
    for (path, body) in [
        ("/v1/jobs/mail/claims", r#"{"slot":""}"#),
        ("/v1/jobs/mail/claims", "not json"),
        ("/v1/jobs/mail/claims", r#"{"slot":"a","extra":1}"#),
        ("/v1/jobs/%01/claims", r#"{"slot":"a"}"#),
        ("/v1/jobs/mail/claims/a/done", r#"{"token":"1","ok":true}"#),
    ] {
        let (s, b) = call(&app, "POST", path, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {body}: {b}");
        assert!(b["error"].is_string(), "{b}");
    }
    assert_eq!(*fake.asked.lock().expect("lock"), 0);
    let (s, _) = call(&app, "GET", "/v1/jobs/none", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
