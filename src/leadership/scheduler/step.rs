//! The scheduler's decision for one job at one moment, as a pure function of the schedule,
//! the job's ledger, whether a run of it is in flight and the time: which slots to record as
//! missed, which to record as lost, and which to run. The loop in [`super`] carries it out.
//!
//! Slots are the schedule's fire times, keyed by their RFC 3339 form in UTC (seconds, `Z`),
//! which sorts like the times. Only slots after the newest one the ledger knows for the job
//! are candidates (a job the ledger has never seen starts now, not in the past), so a slot
//! that ran, was missed or was lost is never a candidate again, whatever the schedule says
//! now.

use chrono::{DateTime, Duration as Span, Utc};

use crate::config::{CatchUp, JobSpec, OnLost, Schedules};
use crate::ledger::JobLedger;

/// A slot run within this long of its time is on time; later, it is a catch-up run.
pub const ON_TIME: Span = Span::seconds(1);
/// How far before the deadline missed slots are still listed in the ledger.
pub const MISSED_LOOKBACK: Span = Span::hours(1);
/// Most slots recorded as missed at once (older ones are skipped without a record).
pub const MAX_MISSED: usize = 100;
/// Fire times looked at in one step, at most.
const MAX_SCAN: usize = 20_000;
/// How long past `--job-timeout` a claimed slot may stay unreported before it is lost.
pub const LOST_MARGIN: Span = Span::seconds(5);

/// What to do now for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Record these slots as missed (never run).
    Missed {
        slots: Vec<String>,
        why: &'static str,
    },
    /// Record this slot, granted with `token` and never reported, as lost.
    Lost { slot: String, token: u64 },
    /// Claim this slot and run it (`retry_of`: a new run of a lost one; `catch_up`: past its
    /// time).
    Run {
        slot: String,
        retry_of: Option<u64>,
        catch_up: bool,
    },
}

/// The slot key of a fire time.
pub fn slot_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The fire time of a slot key, if it is one.
pub fn slot_time(key: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(key)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What the leader does now for `job`.
pub fn step(
    job: &JobSpec,
    ledger: Option<&JobLedger>,
    running: bool,
    now: DateTime<Utc>,
    policy: &Schedules,
) -> Vec<Action> {
    if running {
        // One run of a job at a time: slots that come due meanwhile wait for it to end, then
        // follow the catch-up policy.
        return Vec::new();
    }
    let deadline = Span::from_std(policy.deadline).unwrap_or(Span::hours(1));
    if let Some(action) = lost(ledger, now, deadline, policy) {
        return vec![action];
    }
    let from = ledger
        .and_then(JobLedger::latest)
        .and_then(slot_time)
        .unwrap_or(now - ON_TIME);
    let oldest = now - deadline;
    let start = from.max(oldest - MISSED_LOOKBACK);
    let mut old = Vec::new();
    let mut due = Vec::new();
    for t in job.schedule.after(&start).take(MAX_SCAN) {
        if t > now {
            break;
        }
        if t < oldest {
            old.push(slot_key(t));
        } else {
            due.push(t);
        }
    }
    let mut actions = Vec::new();
    if !old.is_empty() {
        let keep = old.len().saturating_sub(MAX_MISSED);
        actions.push(Action::Missed {
            slots: old.split_off(keep),
            why: "past --job-deadline",
        });
    }
    let run = match policy.catch_up {
        CatchUp::All => due.first().copied(),
        CatchUp::Latest => due.last().copied(),
        CatchUp::None => due.last().copied().filter(|t| now - *t <= ON_TIME),
    };
    let skipped: Vec<String> = due
        .iter()
        .filter(|t| Some(**t) != run && (policy.catch_up != CatchUp::All))
        .map(|t| slot_key(*t))
        .collect();
    if !skipped.is_empty() {
        actions.push(Action::Missed {
            slots: skipped,
            why: "skipped by --job-catch-up",
        });
    }
    if let Some(t) = run {
        actions.push(Action::Run {
            slot: slot_key(t),
            retry_of: None,
            catch_up: now - t > ON_TIME,
        });
    }
    actions
}

/// The oldest slot claimed and never reported for longer than `--job-timeout` plus a
/// margin, and what to do with it.
fn lost(
    ledger: Option<&JobLedger>,
    now: DateTime<Utc>,
    deadline: Span,
    policy: &Schedules,
) -> Option<Action> {
    let timeout = Span::from_std(policy.timeout).unwrap_or(Span::minutes(1)) + LOST_MARGIN;
    let grant = ledger?.slots.values().find(|g| {
        g.completion.is_none()
            && DateTime::<Utc>::from_timestamp_millis(g.claimed_at_ms as i64)
                .is_some_and(|claimed| now - claimed > timeout)
    })?;
    let within = slot_time(&grant.slot).is_some_and(|t| now - t <= deadline);
    Some(match policy.on_lost {
        OnLost::Retry if within => Action::Run {
            slot: grant.slot.clone(),
            retry_of: Some(grant.token),
            catch_up: true,
        },
        _ => Action::Lost {
            slot: grant.slot.clone(),
            token: grant.token,
        },
    })
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
