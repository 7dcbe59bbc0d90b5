//! The scheduler's step on made-up ledgers and times.

use std::str::FromStr;
use std::time::Duration;

use super::*;
use crate::ledger::{Completion, Grant, Outcome};

fn every_second() -> JobSpec {
    every("* * * * * *")
}

fn every(cron: &str) -> JobSpec {
    JobSpec {
        name: "tick".into(),
        schedule: cron::Schedule::from_str(cron).expect("cron"),
        url: "http://127.0.0.1:1/".into(),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    slot_time(s).expect("time")
}

fn policy(catch_up: CatchUp, on_lost: OnLost) -> Schedules {
    Schedules {
        jobs: Vec::new(),
        timeout: Duration::from_secs(10),
        catch_up,
        deadline: Duration::from_secs(60),
        on_lost,
    }
}

fn granted(slot: &str, token: u64, claimed: &str, outcome: Option<Outcome>) -> Grant {
    Grant {
        job: "tick".into(),
        slot: slot.into(),
        holder: "web-0".into(),
        token,
        term: 1,
        claimed_at_ms: at(claimed).timestamp_millis() as u64,
        completion: outcome.map(|outcome| Completion {
            outcome,
            detail: String::new(),
            at_ms: 0,
        }),
    }
}

fn ledger(grants: &[Grant]) -> JobLedger {
    JobLedger {
        slots: grants.iter().map(|g| (g.slot.clone(), g.clone())).collect(),
        forgotten_up_to: None,
    }
}

fn runs(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Run { slot, .. } => Some(slot.as_str()),
            _ => None,
        })
        .collect()
}

fn missed(actions: &[Action]) -> usize {
    actions
        .iter()
        .map(|a| match a {
            Action::Missed { slots, .. } => slots.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn a_job_never_seen_starts_now_and_a_steady_one_runs_the_next_slot() {
    let p = policy(CatchUp::All, OnLost::Skip);
    let now = at("2026-12-03T12:00:00.300Z");
    assert_eq!(
        runs(&step(&every_second(), None, false, now, &p)),
        ["2026-12-03T12:00:00Z"]
    );
    let l = ledger(&[granted(
        "2026-12-03T12:00:00Z",
        5,
        "2026-12-03T12:00:00Z",
        Some(Outcome::Ok),
    )]);
    assert!(step(&every_second(), Some(&l), false, now, &p).is_empty());
    let later = at("2026-12-03T12:00:01.100Z");
    let actions = step(&every_second(), Some(&l), false, later, &p);
    assert_eq!(
        actions,
        vec![Action::Run {
            slot: "2026-12-03T12:00:01Z".into(),
            retry_of: None,
            catch_up: false
        }]
    );
    // While a run is in flight, nothing else starts.
    assert!(step(&every_second(), Some(&l), true, later, &p).is_empty());
}

#[test]
fn after_an_outage_each_policy_catches_up_its_way_and_old_slots_are_missed() {
    let l = ledger(&[granted(
        "2026-12-03T12:00:00Z",
        5,
        "2026-12-03T12:00:00Z",
        Some(Outcome::Ok),
    )]);
    // 90 s later: 60 s within the deadline, 29 before it.
    let now = at("2026-12-03T12:01:30.500Z");
    let all = step(
        &every_second(),
        Some(&l),
        false,
        now,
        &policy(CatchUp::All, OnLost::Skip),
    );
    assert_eq!(runs(&all), ["2026-12-03T12:00:31Z"]);
    assert_eq!(missed(&all), 30);
    let latest = step(
        &every_second(),
        Some(&l),
        false,
        now,
        &policy(CatchUp::Latest, OnLost::Skip),
    );
    assert_eq!(runs(&latest), ["2026-12-03T12:01:30Z"]);
    assert_eq!(missed(&latest), 30 + 59);
    let none = step(
        &every_second(),
        Some(&l),
        false,
        now,
        &policy(CatchUp::None, OnLost::Skip),
    );
    // 12:01:30 is 0.5 s old: on time, so it runs under every policy.
    assert_eq!(runs(&none), ["2026-12-03T12:01:30Z"]);
    // Every 5 s: the latest slot (12:01:30) is 2.5 s old, a catch-up, which `none` skips.
    let none_late = step(
        &every("*/5 * * * * *"),
        Some(&l),
        false,
        at("2026-12-03T12:01:32.500Z"),
        &policy(CatchUp::None, OnLost::Skip),
    );
    assert!(runs(&none_late).is_empty(), "{none_late:?}");
    assert_eq!(missed(&none_late), 6 + 12);
    match &all[1] {
        Action::Run { catch_up, .. } => assert!(catch_up),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_claimed_slot_never_reported_is_lost_or_run_again_by_policy() {
    let l = ledger(&[granted(
        "2026-12-03T12:00:00Z",
        5,
        "2026-12-03T12:00:00Z",
        None,
    )]);
    let soon = at("2026-12-03T12:00:14Z");
    // Within --job-timeout (10 s) plus the margin (5 s), it may still be running elsewhere.
    let waiting = step(
        &every_second(),
        Some(&l),
        false,
        soon,
        &policy(CatchUp::All, OnLost::Skip),
    );
    assert!(
        waiting.iter().all(|a| !matches!(a, Action::Lost { .. })),
        "{waiting:?}"
    );
    let late = at("2026-12-03T12:00:16Z");
    let skip = step(
        &every_second(),
        Some(&l),
        false,
        late,
        &policy(CatchUp::All, OnLost::Skip),
    );
    assert_eq!(
        skip,
        vec![Action::Lost {
            slot: "2026-12-03T12:00:00Z".into(),
            token: 5
        }]
    );
    let retry = step(
        &every_second(),
        Some(&l),
        false,
        late,
        &policy(CatchUp::All, OnLost::Retry),
    );
    assert_eq!(
        retry,
        vec![Action::Run {
            slot: "2026-12-03T12:00:00Z".into(),
            retry_of: Some(5),
            catch_up: true
        }]
    );
    // Past the deadline, a retry would be too late: lost.
    let past = at("2026-12-03T12:02:00Z");
    let too_late = step(
        &every_second(),
        Some(&l),
        false,
        past,
        &policy(CatchUp::All, OnLost::Retry),
    );
    assert_eq!(
        too_late,
        vec![Action::Lost {
            slot: "2026-12-03T12:00:00Z".into(),
            token: 5
        }]
    );
}

#[test]
fn slot_keys_sort_like_their_times() {
    let a = slot_key(at("2026-12-03T09:59:59Z"));
    let b = slot_key(at("2026-12-03T10:00:00Z"));
    assert!(a < b);
    assert_eq!(b, "2026-12-03T10:00:00Z");
}

#[test]
fn a_slot_that_ran_under_an_earlier_schedule_never_runs_again_under_a_new_one() {
    // Every 2 s before a rolling update, every second after it: the ledger holds the slots
    // the old schedule ran, keyed by their time.
    let ran = [
        "2026-12-03T12:00:00Z",
        "2026-12-03T12:00:02Z",
        "2026-12-03T12:00:04Z",
    ];
    let grants: Vec<Grant> = ran
        .iter()
        .zip(1..)
        .map(|(slot, token)| granted(slot, token, slot, Some(Outcome::Ok)))
        .collect();
    let l = ledger(&grants);
    for catch_up in [CatchUp::All, CatchUp::Latest, CatchUp::None] {
        let p = policy(catch_up, OnLost::Skip);
        for now in ["2026-12-03T12:00:04.300Z", "2026-12-03T12:00:05.100Z"] {
            let actions = step(&every_second(), Some(&l), false, at(now), &p);
            for slot in runs(&actions) {
                assert!(
                    !ran.contains(&slot),
                    "{catch_up:?} at {now}: ran {slot} again"
                );
            }
        }
        let next = step(
            &every_second(),
            Some(&l),
            false,
            at("2026-12-03T12:00:05.100Z"),
            &p,
        );
        assert_eq!(runs(&next), ["2026-12-03T12:00:05Z"], "{catch_up:?}");
    }
}
