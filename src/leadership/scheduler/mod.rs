//! The schedule mode: the leader fires each `--job` at its times, claiming every slot in the
//! job ledger first, so that a slot starts at most once cluster-wide, whichever peer leads and
//! however often leadership changes; then it `POST`s to its own application's `--job-url`
//! and records the outcome.
//!
//! [`step`] decides, as a pure function, what to do for a job now; the loop here carries it
//! out every [`TICK`] while this peer leads with a valid lease, and keeps at most one run of
//! each job in flight. A run still in flight when the peer stops is abandoned (its slot is
//! then judged lost by the next leader, `--job-on-lost`).

pub mod step;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::step::Action;
use super::jobs::Jobs;
use super::Leadership;
use crate::config::{Config, JobSpec};
use crate::ledger::{ClaimOutcome, DoneOutcome, Grant, Outcome};
use crate::metrics::{JobNameLabels, Metrics};
use crate::peer::protocol::{DoneRequest, JobAnswer};
use crate::raft::{Raft, RaftStatus};

/// How often the leader looks at its schedules.
pub const TICK: Duration = Duration::from_millis(100);

/// Header naming the job of a run.
pub const JOB_HEADER: &str = "raft-elector-job";
/// Header carrying the slot (its scheduled time, RFC 3339 UTC).
pub const SLOT_HEADER: &str = "raft-elector-slot";
/// Header carrying the slot's fencing token.
pub const TOKEN_HEADER: &str = "raft-elector-token";

/// What the scheduler needs.
pub struct Scheduler {
    pub jobs: Arc<Jobs>,
    pub raft: Raft,
    pub leadership: Arc<Leadership>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
}

/// Runs the schedules until `stop`; returns at once when there are none.
pub async fn run(s: Scheduler, stop: CancellationToken) {
    let specs = s.config.schedules.jobs.clone();
    if specs.is_empty() {
        return;
    }
    let http = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the schedule mode cannot make an HTTP client; no job will run");
            return;
        }
    };
    let s = Arc::new(s);
    let mut runs: JoinSet<String> = JoinSet::new();
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(ended) = runs.join_next() => {
                if let Ok(job) = ended {
                    running.remove(&job);
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        for spec in &specs {
            if !s.leading() {
                break;
            }
            let now = chrono::Utc::now();
            let actions = s.jobs.ledger().read(|l| {
                let job = l.jobs.get(&spec.name);
                step::step(
                    spec,
                    job,
                    running.contains(&spec.name),
                    now,
                    &s.config.schedules,
                )
            });
            for action in actions {
                if let Some(grant) = s.act(spec, action).await {
                    running.insert(spec.name.clone());
                    runs.spawn(run_one(s.clone(), http.clone(), spec.clone(), grant));
                } else if !s.leading() {
                    break;
                }
            }
        }
    }
    // Runs in flight are abandoned: their slots are judged lost by the next leader.
    runs.shutdown().await;
}

impl Scheduler {
    fn leading(&self) -> bool {
        let status = RaftStatus::of(&self.raft);
        status.reported_leader(self.config.me.id)
            && self.leadership.may_claim(status.term, Instant::now())
            && !self.leadership.relinquished()
    }

    /// Carries out one action; returns the grant of a slot to run now.
    async fn act(&self, spec: &JobSpec, action: Action) -> Option<Grant> {
        let job = spec.name.as_str();
        match action {
            Action::Missed { slots, why } => {
                let first = slots.first().cloned().unwrap_or_default();
                let last = slots.last().cloned().unwrap_or_default();
                match self.jobs.record_missed(job, slots, why).await {
                    Ok(n) => {
                        self.metrics
                            .job_slots(job, Outcome::Missed.name(), n as u64);
                        tracing::warn!(job, slots = n, from = %first, to = %last, why, "recorded slots as missed (not run)");
                    }
                    Err(reason) => tracing::debug!(job, %reason, "could not record missed slots"),
                }
                None
            }
            Action::Lost { slot, token } => {
                let detail =
                    "its runner did not report before --job-timeout (it may or may not have run)";
                let answer = self
                    .jobs
                    .record(job, &slot, token, Outcome::Lost, detail)
                    .await;
                if let JobAnswer::Reported(DoneOutcome::Recorded { .. }) = answer {
                    self.metrics.job_slots(job, Outcome::Lost.name(), 1);
                    tracing::warn!(job, %slot, token, "recorded a slot as lost (--job-on-lost skip)");
                }
                None
            }
            Action::Run {
                slot,
                retry_of,
                catch_up,
            } => match self.jobs.claim_scheduled(job, &slot, retry_of).await {
                JobAnswer::Claimed(ClaimOutcome::Granted { grant, first: true }) => {
                    if catch_up {
                        self.metrics
                            .job_catch_up_runs
                            .get_or_create(&JobNameLabels {
                                job: job.to_string(),
                            })
                            .inc();
                    }
                    tracing::info!(job, %slot, token = grant.token, catch_up, retry_of, "claimed a slot: running it");
                    Some(grant)
                }
                other => {
                    tracing::debug!(job, %slot, answer = ?other, "slot not run");
                    None
                }
            },
        }
    }
}

/// Runs one granted slot: `POST` to the job's URL, then reports the outcome (through the
/// leader, whoever it is by then).
async fn run_one(s: Arc<Scheduler>, http: reqwest::Client, spec: JobSpec, grant: Grant) -> String {
    let timeout = s.config.schedules.timeout;
    let sent = http
        .post(&spec.url)
        .header(JOB_HEADER, &spec.name)
        .header(SLOT_HEADER, &grant.slot)
        .header(TOKEN_HEADER, grant.token.to_string())
        .timeout(timeout)
        .send()
        .await;
    let (outcome, detail) = match sent {
        Ok(resp) if resp.status().is_success() => {
            (Outcome::Ok, format!("HTTP {}", resp.status().as_u16()))
        }
        Ok(resp) => (Outcome::Failed, format!("HTTP {}", resp.status().as_u16())),
        Err(e) if e.is_timeout() => (
            Outcome::Failed,
            format!("no answer within --job-timeout ({timeout:?})"),
        ),
        Err(e) => (
            Outcome::Failed,
            format!("request failed: {}", crate::errors::chain(&e)),
        ),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    s.metrics
        .job_last_run
        .get_or_create(&JobNameLabels {
            job: spec.name.clone(),
        })
        .set(now);
    s.metrics.job_slots(&spec.name, outcome.name(), 1);
    tracing::info!(job = %spec.name, slot = %grant.slot, token = grant.token, outcome = outcome.name(), %detail, "run ended");
    let req = DoneRequest {
        job: spec.name.clone(),
        slot: grant.slot.clone(),
        token: grant.token,
        outcome,
        detail,
    };
    // The report goes through whichever peer leads now; a few tries ride out an election.
    for _ in 0..10 {
        match s.jobs.done(req.clone(), false).await {
            JobAnswer::Later { reason } => {
                tracing::debug!(job = %spec.name, %reason, "report not recorded yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answer => {
                tracing::debug!(job = %spec.name, answer = ?answer, "run reported");
                break;
            }
        }
    }
    spec.name
}
