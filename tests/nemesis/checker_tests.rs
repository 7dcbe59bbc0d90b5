//! The checker against planted histories: clean ones pass, each kind of violation fails. The
//! planted histories of the follower and exit rules are in `followers_tests.rs`; the helpers
//! here serve both.

#![cfg(test)]

use crate::checker::{check, Report, Rules};
use crate::history::{Answer, Fault, FaultKind, History, Micros, TermSample, UNKNOWN_PEER};

pub const MS: Micros = 1000;

pub fn rules() -> Rules {
    Rules {
        follower_window: 150 * MS,
        delivery: 50 * MS,
        heal_bound: 2000 * MS,
        outage_bound: 2000 * MS,
        fresh: 50 * MS,
        shutdown_bound: 6000 * MS,
        members_bound: 3000 * MS,
        max_voters: 5,
    }
}

pub fn answer(peer: usize, sent_ms: u64, recv_ms: u64, leader: Option<usize>, term: u64) -> Answer {
    Answer {
        peer,
        sent: sent_ms * MS,
        received: recv_ms * MS,
        leader,
        term,
        is_leader: leader == Some(peer),
    }
}

/// `peers` polled every 10 ms from `from_ms` to `to_ms`, each answer from `answer(peer, t)`.
pub fn polled(
    peers: &[usize],
    from_ms: u64,
    to_ms: u64,
    answer_of: impl Fn(usize, u64) -> (Option<usize>, u64),
) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut t = from_ms;
    while t < to_ms {
        for &p in peers {
            let (leader, term) = answer_of(p, t);
            out.push(answer(p, t, t + 2, leader, term));
        }
        t += 10;
    }
    out
}

/// Three peers polled every 10 ms from `from_ms` to `to_ms`, all naming `leader` in `term`.
pub fn steady(from_ms: u64, to_ms: u64, leader: usize, term: u64) -> Vec<Answer> {
    polled(&[0, 1, 2], from_ms, to_ms, |_, _| (Some(leader), term))
}

/// A history of `peers` peers.
pub fn history_of(peers: usize, answers: Vec<Answer>, faults: Vec<Fault>) -> History {
    let end = answers.iter().map(|a| a.received).max().unwrap_or(0) + MS;
    History {
        peers: (0..peers).map(|i| format!("peer-{i}")).collect(),
        answers,
        terms: Vec::new(),
        faults,
        failures: Vec::new(),
        stops: Vec::new(),
        members: Vec::new(),
        claims: Vec::new(),
        schedule: None,
        lives: Vec::new(),
        enrolments: Vec::new(),
        settle_from: None,
        steps: Vec::new(),
        witnesses: Vec::new(),
        end,
    }
}

/// Three peers.
pub fn history(answers: Vec<Answer>, faults: Vec<Fault>) -> History {
    history_of(3, answers, faults)
}

pub fn fault(start_ms: u64, healed_ms: u64) -> Fault {
    Fault {
        kind: FaultKind::IsolateLeader,
        detail: "planted".into(),
        start: start_ms * MS,
        healed: healed_ms * MS,
        majority_healthy: true,
        held: Vec::new(),
    }
}

/// peer-0 leads term 1 until 1 s; peer-1 leads term 2 from 1.3 s; a fault from 1 s to 1.5 s.
fn leader_change() -> Vec<Answer> {
    let mut a = steady(0, 1000, 0, 1);
    a.extend(steady(1300, 3000, 1, 2));
    a
}

/// Asserts that the report holds `n` violations of the rule named `rule`.
#[track_caller]
pub fn assert_found(r: &Report, rule: &str, n: usize) {
    let found = r.violations.iter().filter(|v| v.rule() == rule).count();
    assert_eq!(found, n, "{rule}: {:?}", r.violations);
}

/// [`leader_change`] with `extra` answers planted and `faults`, and the checker's report.
fn planted_with(extra: Vec<Answer>, faults: Vec<Fault>) -> (History, Report) {
    let mut answers = leader_change();
    answers.extend(extra);
    let h = history(answers, faults);
    let r = check(&h, &rules());
    (h, r)
}

/// The report on [`leader_change`] with `extra` answers planted, without faults.
fn planted(extra: Vec<Answer>) -> Report {
    planted_with(extra, Vec::new()).1
}

#[test]
fn a_clean_history_passes() {
    // The old leader answers once more, but its request left before the new claim came back:
    // the two are concurrent, not a violation.
    let (_, r) = planted_with(
        vec![answer(0, 1299, 1310, Some(0), 1)],
        vec![fault(1000, 1500)],
    );
    assert!(r.ok(), "{r}: {:?}", r.violations);
    assert_eq!(r.recovery, vec![Some(2 * MS)]);
    // One window without a leader: from when the old answers went stale to the new leader.
    assert_eq!(r.windows.len(), 1, "{:?}", r.windows);
    assert!(r.windows[0].len() > 200 * MS && r.windows[0].len() < 300 * MS);
}

#[test]
fn a_planted_stale_claim_fails() {
    // Sent at 1.4 s, after peer-1's claim of term 2 came back at 1.302 s.
    let (h, r) = planted_with(
        vec![answer(0, 1400, 1401, Some(0), 1)],
        vec![fault(1000, 1500)],
    );
    assert_found(&r, "stale leader", 1);
    let text = r.violations[0].explain(&h);
    assert!(text.contains("STALE LEADER"), "{text}");
    assert!(text.contains("peer-0 answered [1.400000s"), "{text}");
}

#[test]
fn a_term_going_down_fails() {
    let mut answers = leader_change();
    answers.push(answer(2, 2000, 2001, None, 1));
    let mut h = history(answers, vec![]);
    // The metrics term counts too.
    h.terms.push(TermSample {
        peer: 1,
        sent: 2500 * MS,
        received: 2501 * MS,
        term: 1,
    });
    let r = check(&h, &rules());
    assert_found(&r, "term went down", 2);
}

#[test]
fn each_planted_answer_breaks_its_rule() {
    let cases = [
        // A second claim of term 1, by peer-2.
        (answer(2, 500, 501, Some(2), 1), "two leaders in one term"),
        // peer-2 reported term 2 at 1.302 s, then names peer-0 for term 1 at 1.6 s, 298 ms after
        // peer-1's claim of term 2 came back: later than the 50 ms delivery and 150 ms window.
        (answer(2, 1600, 1601, Some(0), 1), "stale follower"),
        // Term 2 was claimed by peer-1, not by peer-0.
        (answer(2, 2000, 2001, Some(0), 2), "wrong leader for term"),
    ];
    for (extra, rule) in cases {
        assert_found(&planted(vec![extra]), rule, 1);
    }
}

#[test]
fn no_leader_after_a_repair_fails() {
    let mut answers = steady(0, 1000, 0, 1);
    let mut t = 1000;
    while t < 5000 {
        for p in 0..3 {
            answers.push(answer(p, t, t + 2, None, 2));
        }
        t += 10;
    }
    let r = check(&history(answers, vec![fault(1000, 1200)]), &rules());
    assert_found(&r, "no leader after heal", 1);
    assert_found(&r, "long outage", 1);
    // Without a healthy majority (all peers restarted), only the time after the repair counts.
    let mut f = fault(1000, 4000);
    f.majority_healthy = false;
    let mut answers = steady(0, 1000, 0, 1);
    answers.extend(steady(4500, 5000, 2, 3));
    let r = check(&history(answers, vec![f]), &rules());
    assert!(r.ok(), "{:?}", r.violations);
}

#[test]
fn an_outage_while_a_joint_membership_is_in_force_counts_only_from_the_repair() {
    // No leader from 1 s to 5 s under a fault that left a majority of all members connected.
    let mut answers = steady(0, 1000, 0, 1);
    answers.extend(polled(&[0, 1, 2], 1000, 5000, |_, _| (None, 2)));
    answers.extend(steady(5000, 6000, 1, 3));
    let r = check(&history(answers.clone(), vec![fault(1000, 4800)]), &rules());
    assert_found(&r, "long outage", 1);
    // The same while a peer reported a joint membership: its halves may both lack a majority.
    let mut h = history(answers, vec![fault(1000, 4800)]);
    h.members.push(crate::history::MembersSample {
        peer: 1,
        sent: 1500 * MS,
        received: 1502 * MS,
        index: Some(70),
        joint: true,
        applied: Some(70),
        members: vec![
            (0, crate::history::Role::Voter),
            (1, crate::history::Role::Voter),
            (2, crate::history::Role::Voter),
        ],
    });
    let r = check(&h, &rules());
    assert_found(&r, "long outage", 0);
}

#[test]
fn a_claim_naming_another_peer_and_unknown_names_fail() {
    let mut bad = answer(2, 2000, 2001, Some(1), 2);
    bad.is_leader = true;
    let r = planted(vec![bad, answer(2, 2100, 2101, Some(UNKNOWN_PEER), 2)]);
    assert_found(&r, "bad claim", 1);
    assert_found(&r, "unknown name", 1);
}

#[test]
fn a_witness_that_leads_or_is_named_leader_fails() {
    // peer-1 leads term 2 in the planted history: as a witness it may not.
    let mut h = history(leader_change(), vec![]);
    h.witnesses = vec![1];
    let r = check(&h, &rules());
    assert_found(&r, "witness leads", 1);
    let text = r.violations[0].explain(&h);
    assert!(text.contains("WITNESS LEADS: peer-1"), "{text}");
    // peer-2 as the witness: it never leads nor is named, the history passes.
    h.witnesses = vec![2];
    let r = check(&h, &rules());
    assert!(r.ok(), "{:?}", r.violations);
}
