//! The job ledger's application API: claims of scheduled slots, their outcomes, and the
//! recent history, against the [`JobsView`] interface this module declares.
//!
//! | path | answer |
//! |------|--------|
//! | `POST /v1/jobs/{job}/claims` `{"slot"}` | 201 the grant (first claim); 200 the same holder's grant again; 409 held by another (its holder and token); 410 forgotten slot; 503 + `Retry-After` when no quorum answered in time |
//! | `POST /v1/jobs/{job}/claims/{slot}/done` `{"token","ok","detail"}` | 200 the slot with its outcome; 409 a wrong token, or another outcome recorded before |
//! | `GET /v1/jobs` | 200 `{"jobs":[...]}`: every job with its latest slot |
//! | `GET /v1/jobs/{job}` | 200 the job's remembered slots, newest first; 404 unknown job |
//!
//! Errors are `{"error": "..."}` with a sentence that says what to do.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::view::BoxFuture;
use crate::ledger::{self, ClaimOutcome, DoneOutcome, Grant, JobLedger, JobSummary};

/// What became of a claim or a report, as this API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult<T> {
    /// Committed and applied: what the ledger decided.
    Decided(T),
    /// Not now (no leader, no quorum in time): the reason; the client retries.
    Unavailable(String),
    /// Never: the reason.
    Invalid(String),
}

/// What the job API needs from a peer.
pub trait JobsView: Send + Sync + 'static {
    /// Claims `slot` of `job` for this peer's application.
    fn claim(&self, job: String, slot: String) -> BoxFuture<'_, JobResult<ClaimOutcome>>;
    /// Records the outcome of a slot granted with `token`.
    fn report(
        &self,
        job: String,
        slot: String,
        token: u64,
        ok: bool,
        detail: String,
    ) -> BoxFuture<'_, JobResult<DoneOutcome>>;
    /// Every job with its latest slot, as this peer applied the ledger.
    fn jobs(&self) -> Vec<JobSummary>;
    /// One job's remembered slots.
    fn job(&self, job: &str) -> Option<JobLedger>;
}

type Jobs = Arc<dyn JobsView>;

/// Builds the job API's routes.
pub fn router(jobs: Jobs) -> Router {
    Router::new()
        .route("/v1/jobs", get(list))
        .route("/v1/jobs/{job}", get(one))
        .route("/v1/jobs/{job}/claims", post(claim))
        .route("/v1/jobs/{job}/claims/{slot}/done", post(done))
        .with_state(jobs)
}

fn error(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": why.to_string() }))).into_response()
}

fn unavailable(why: String) -> Response {
    let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, why);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    resp
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A grant as the API shows it.
pub fn grant_json(g: &Grant) -> Value {
    let (outcome, completed_at, detail) = match &g.completion {
        None => ("running", None, None),
        Some(c) => (
            c.outcome.name(),
            Some(rfc3339(c.at_ms)),
            Some(c.detail.clone()),
        ),
    };
    json!({
        "job": g.job,
        "slot": g.slot,
        "holder": g.holder,
        "token": g.token,
        "term": g.term,
        "claimed_at": rfc3339(g.claimed_at_ms),
        "outcome": outcome,
        "completed_at": completed_at,
        "detail": detail,
    })
}

/// Parses a JSON body, or says what is wrong with it.
fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8], shape: &str) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the body must be JSON {shape}: {e}"),
        )
    })
}

fn check(job: &str, slot: &str) -> Result<(), Response> {
    ledger::check_job_slot(job, slot).map_err(|e| error(StatusCode::BAD_REQUEST, e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    slot: String,
}

/// A path parameter that is no valid text is a 400 in this API's shape, not axum's.
fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Response> {
    p.map(|Path(v)| v)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad path: {e}")))
}

async fn claim(
    State(jobs): State<Jobs>,
    job: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Response {
    let job = match path(job) {
        Ok(j) => j,
        Err(resp) => return resp,
    };
    let req: ClaimBody = match body(&bytes, r#"{"slot":"<key>"}"#) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if let Err(resp) = check(&job, &req.slot) {
        return resp;
    }
    match jobs.claim(job, req.slot).await {
        JobResult::Decided(ClaimOutcome::Granted { grant, first }) => {
            let status = if first {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(grant_json(&grant))).into_response()
        }
        JobResult::Decided(ClaimOutcome::Held { grant }) => {
            let mut body = grant_json(&grant);
            body["error"] = json!(format!(
                "slot {:?} of job {:?} is held by {} (token {})",
                grant.slot, grant.job, grant.holder, grant.token
            ));
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        JobResult::Decided(ClaimOutcome::Expired { forgotten_up_to }) => error(
            StatusCode::GONE,
            format!("the slot is not in the job's history, which forgot every slot up to {forgotten_up_to:?}: it may have run, and is never granted again (raise --job-history to keep more)"),
        ),
        JobResult::Decided(ClaimOutcome::TooManyJobs) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the ledger keeps at most {} jobs", ledger::MAX_JOBS),
        ),
        JobResult::Unavailable(why) => unavailable(why),
        JobResult::Invalid(why) => error(StatusCode::BAD_REQUEST, why),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoneBody {
    token: u64,
    ok: bool,
    #[serde(default)]
    detail: String,
}

async fn done(
    State(jobs): State<Jobs>,
    job_slot: Result<Path<(String, String)>, PathRejection>,
    bytes: Bytes,
) -> Response {
    let (job, slot) = match path(job_slot) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let req: DoneBody = match body(&bytes, r#"{"token":N,"ok":true|false,"detail":"..."}"#) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if let Err(resp) = check(&job, &slot) {
        return resp;
    }
    match jobs.report(job, slot, req.token, req.ok, req.detail).await {
        JobResult::Decided(DoneOutcome::Recorded { grant }) => {
            (StatusCode::OK, Json(grant_json(&grant))).into_response()
        }
        JobResult::Decided(DoneOutcome::WrongToken { grant: Some(grant) }) => {
            let mut body = grant_json(&grant);
            body["error"] = json!(format!(
                "token {} is not this slot's: it was granted to {} with token {}",
                req.token, grant.holder, grant.token
            ));
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        JobResult::Decided(DoneOutcome::WrongToken { grant: None }) => error(
            StatusCode::CONFLICT,
            "this slot was never granted, or is no longer in the job's history",
        ),
        JobResult::Decided(DoneOutcome::AlreadyDone { grant }) => {
            let mut body = grant_json(&grant);
            body["error"] = json!("another outcome was recorded for this slot before");
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        JobResult::Unavailable(why) => unavailable(why),
        JobResult::Invalid(why) => error(StatusCode::BAD_REQUEST, why),
    }
}

async fn list(State(jobs): State<Jobs>) -> Json<Value> {
    Json(json!({ "jobs": jobs.jobs() }))
}

async fn one(State(jobs): State<Jobs>, job: Result<Path<String>, PathRejection>) -> Response {
    let job = match path(job) {
        Ok(j) => j,
        Err(resp) => return resp,
    };
    let Some(ledger) = jobs.job(&job) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no job {job:?} in the ledger (a job appears with its first claim)"),
        );
    };
    let slots: Vec<Value> = ledger.slots.values().rev().map(grant_json).collect();
    Json(json!({
        "job": job,
        "forgotten_up_to": ledger.forgotten_up_to,
        "slots": slots,
    }))
    .into_response()
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
