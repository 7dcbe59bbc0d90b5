//! Rules 16 and 17, the schedule mode: process clusters run with an every-second job
//! (`--job-catch-up all`, a deadline longer than the run, `--job-on-lost skip`) whose runs this
//! test's own HTTP endpoint records, a path per peer. At the end, before the peers stop, the
//! job's ledger is read from a running peer.
//!
//! 16. **Slot ran twice**: the endpoint got two runs of one slot.
//! 17. **Slot never ran**: a slot from the first run to the newest slot the ledger knows
//!     neither ran nor is recorded lost (or still running) in the ledger. With catch-up `all`
//!     and a deadline longer than the run, every slot runs once a quorum is back, in order, so
//!     a gap below the newest claimed slot is a slot the cluster skipped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use crate::checker::Report;
use crate::history::History;
use crate::violation::Violation;

/// The scheduled job's name.
pub const JOB: &str = "tick";

/// One run the endpoint got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub peer: String,
    pub slot: String,
    pub token: u64,
}

/// The endpoint every peer's `--job-url` points at.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    runs: Arc<Mutex<Vec<Run>>>,
}

async fn record(
    State(runs): State<Arc<Mutex<Vec<Run>>>>,
    Path(peer): Path<String>,
    headers: HeaderMap,
) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let run = Run {
        peer,
        slot: h("raft-elector-slot"),
        token: h("raft-elector-token").parse().unwrap_or(0),
    };
    runs.lock().unwrap_or_else(|p| p.into_inner()).push(run);
    StatusCode::NO_CONTENT
}

impl Endpoint {
    /// Starts the endpoint on a loopback port (inside the test's runtime).
    pub fn start() -> Arc<Endpoint> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the job endpoint");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let runs = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("/jobs/{peer}", post(record))
            .with_state(runs.clone());
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Arc::new(Endpoint { addr, runs })
    }

    /// The flags every peer gets.
    pub fn flags() -> Vec<String> {
        [
            "--job",
            "tick=* * * * * *",
            "--job-catch-up",
            "all",
            "--job-deadline",
            "2h",
            "--job-timeout",
            "2s",
            "--job-history",
            "1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The `--job-url` of peer `name`.
    pub fn url_flag(&self, name: &str) -> [String; 2] {
        [
            "--job-url".into(),
            format!("tick=http://{}/jobs/{name}", self.addr),
        ]
    }

    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the schedule left: the endpoint's runs and the ledger's outcome of each slot.
#[derive(Debug, Clone, Default)]
pub struct ScheduleRecord {
    pub runs: Vec<Run>,
    /// slot → outcome (running, ok, failed, missed, lost), read at the end.
    pub ledger: BTreeMap<String, String>,
}

/// Reads the job's ledger from the first of `http` that answers.
pub async fn read_ledger(http: &[SocketAddr]) -> Option<BTreeMap<String, String>> {
    let client = testkit::jobs::client();
    for addr in http {
        if let Some((200, body)) = testkit::jobs::ledger(&client, *addr, JOB).await {
            let slots = body["slots"].as_array()?;
            return Some(
                slots
                    .iter()
                    .filter_map(|s| {
                        Some((
                            s["slot"].as_str()?.to_string(),
                            s["outcome"].as_str()?.to_string(),
                        ))
                    })
                    .collect(),
            );
        }
    }
    None
}

fn every_second(from: &str, to: &str) -> Vec<String> {
    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp())
            .ok()
    };
    let (Some(a), Some(b)) = (t(from), t(to)) else {
        return Vec::new();
    };
    (a..=b)
        .filter_map(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .collect()
}

pub fn schedule(h: &History, r: &mut Report) {
    let Some(s) = &h.schedule else { return };
    let mut per_slot: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for run in &s.runs {
        per_slot.entry(run.slot.as_str()).or_default().push(run);
    }
    r.schedule_runs = s.runs.len();
    for (slot, runs) in &per_slot {
        if runs.len() > 1 {
            r.violations.push(Violation::SlotRanTwice {
                slot: slot.to_string(),
                runs: runs
                    .iter()
                    .map(|r| format!("{} token {}", r.peer, r.token))
                    .collect(),
            });
        }
    }
    let (Some(first), Some(last)) = (per_slot.keys().next(), s.ledger.keys().next_back()) else {
        return;
    };
    for slot in every_second(first, last) {
        let outcome = s.ledger.get(&slot).map(String::as_str);
        if per_slot.contains_key(slot.as_str()) {
            continue;
        }
        match outcome {
            Some("lost") => r.schedule_lost += 1,
            Some("running") => {}
            other => r.violations.push(Violation::SlotNeverRan {
                slot,
                outcome: other.map(str::to_string),
            }),
        }
    }
}
