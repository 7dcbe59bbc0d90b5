//! Rules 13-15 on planted histories: each planted answer breaks its rule, a clean history
//! passes.

use crate::checker::check;
use crate::checker_tests::{assert_found, history, rules, steady};
use crate::history::{ClaimSample, History};

const MS: u64 = 1000;

/// Peer `peer` claimed `slot` at `sent_ms` and heard `status` naming `holder` and `token`.
fn claim(
    peer: usize,
    sent_ms: u64,
    slot: &str,
    status: u16,
    holder: usize,
    token: u64,
) -> ClaimSample {
    ClaimSample {
        peer,
        sent: sent_ms * MS,
        received: sent_ms * MS + 5 * MS,
        slot: slot.into(),
        status,
        holder: Some(holder),
        token: Some(token),
    }
}

fn with_claims(claims: Vec<ClaimSample>) -> History {
    let mut h = history(steady(0, 2000, 0, 1), Vec::new());
    h.claims = claims;
    h
}

fn clean() -> Vec<ClaimSample> {
    vec![
        claim(0, 100, "s1", 201, 0, 5),
        claim(1, 101, "s1", 409, 0, 5),
        claim(0, 150, "s1", 200, 0, 5),
        claim(2, 300, "s2", 201, 2, 9),
        claim(0, 301, "s2", 409, 2, 9),
        // No answer naming a holder: a 503 is ignored.
        ClaimSample {
            status: 503,
            holder: None,
            token: None,
            ..claim(1, 302, "s3", 503, 0, 0)
        },
    ]
}

#[test]
fn a_clean_ledger_history_passes() {
    let r = check(&with_claims(clean()), &rules());
    assert!(r.ok(), "{:?}", r.violations);
    assert_eq!((r.claim_answers, r.slots_granted), (5, 2));
}

#[test]
fn a_slot_named_with_two_holders_or_tokens_fails() {
    let mut claims = clean();
    claims.push(claim(1, 400, "s1", 201, 1, 12));
    assert_found(
        &check(&with_claims(claims), &rules()),
        "slot granted twice",
        1,
    );
    let mut claims = clean();
    claims.push(claim(2, 400, "s2", 200, 2, 10));
    assert_found(
        &check(&with_claims(claims), &rules()),
        "slot granted twice",
        1,
    );
}

#[test]
fn a_grant_to_another_peer_or_a_refusal_naming_the_asker_fails() {
    let mut claims = clean();
    claims.push(claim(1, 400, "s1", 200, 0, 5));
    claims.push(claim(0, 401, "s1", 409, 0, 5));
    assert_found(
        &check(&with_claims(claims), &rules()),
        "slot granted to another",
        2,
    );
}

#[test]
fn a_token_for_two_slots_fails() {
    let mut claims = clean();
    claims.push(claim(1, 400, "s4", 201, 1, 9));
    let r = check(&with_claims(claims), &rules());
    assert_found(&r, "token reused", 1);
}

#[test]
fn a_later_grant_with_a_lower_token_fails_and_concurrent_ones_are_not_compared() {
    let mut claims = clean();
    // Sent at 400 ms, after the grant of s2 (token 9) came back at 305 ms.
    claims.push(claim(1, 400, "s5", 201, 1, 7));
    assert_found(&check(&with_claims(claims), &rules()), "token went back", 1);
    let mut claims = clean();
    // Sent at 298 ms, before the grant of s2 came back: concurrent, any order.
    claims.push(claim(1, 298, "s5", 201, 1, 7));
    let r = check(&with_claims(claims), &rules());
    assert!(r.ok(), "{:?}", r.violations);
}

#[test]
fn a_scheduled_slot_run_twice_or_skipped_fails_and_a_lost_one_passes() {
    use crate::schedule::{Run, ScheduleRecord};
    let run = |slot: &str, peer: &str, token: u64| Run {
        peer: peer.into(),
        slot: slot.into(),
        token,
    };
    let mut h = with_claims(Vec::new());
    let ledger = [
        ("2026-12-03T12:00:00Z", "ok"),
        ("2026-12-03T12:00:01Z", "lost"),
        ("2026-12-03T12:00:02Z", "ok"),
        ("2026-12-03T12:00:03Z", "running"),
    ];
    h.schedule = Some(ScheduleRecord {
        runs: vec![
            run("2026-12-03T12:00:00Z", "peer-0", 3),
            run("2026-12-03T12:00:02Z", "peer-1", 9),
        ],
        ledger: ledger
            .iter()
            .map(|(s, o)| (s.to_string(), o.to_string()))
            .collect(),
    });
    let r = check(&h, &rules());
    assert!(r.ok(), "{:?}", r.violations);
    assert_eq!(r.schedule_lost, 1);
    let s = h.schedule.as_mut().expect("schedule");
    s.runs.push(run("2026-12-03T12:00:02Z", "peer-2", 11));
    s.ledger.insert("2026-12-03T12:00:04Z".into(), "ok".into());
    let r = check(&h, &rules());
    assert_found(&r, "scheduled slot ran twice", 1);
    assert_found(&r, "scheduled slot never ran", 1);
}
