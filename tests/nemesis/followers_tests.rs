//! The follower rule (5) and the exit rule (7) against planted histories.

#![cfg(test)]

use std::time::Duration;

use crate::checker::{check, Report, Tally};
use crate::checker_tests::{
    answer, assert_found, fault, history, history_of, polled, rules, steady, MS,
};
use crate::followers::latest_arrival;
use crate::history::{FaultKind, Held, History, Stop};

/// Five peers: peer-0 leads term 1 until a 3/2 split at 1 s puts it in the minority with
/// peer-2; the majority {1, 3, 4} elects peer-1, whose claim of term 2 comes back at 1.302 s;
/// peer-2 names peer-0 until `named_until_ms`, then nobody; the split heals at 2.5 s and all
/// five name peer-1 from 2.6 s.
fn minority_follower(named_until_ms: u64) -> History {
    let all = [0, 1, 2, 3, 4];
    let mut answers = polled(&all, 0, 1000, |_, _| (Some(0), 1));
    answers.extend(polled(&[1, 3, 4], 1300, 2600, |_, _| (Some(1), 2)));
    // The old leader stops claiming once its lease is gone.
    answers.extend(polled(&[0], 1150, 2600, |_, _| (None, 1)));
    answers.extend(polled(&[2], 1000, 2600, |_, t| {
        (Some(0).filter(|_| t <= named_until_ms), 1)
    }));
    answers.extend(polled(&all, 2600, 3500, |_, _| (Some(1), 2)));
    let mut split = fault(1000, 2500);
    split.kind = FaultKind::Split;
    split.held = vec![Held::Cut(vec![0, 2], vec![1, 3, 4])];
    history_of(5, answers, vec![split])
}

/// The report on `h`, which must hold no violation.
fn clean(h: &History) -> Report {
    let r = check(h, &rules());
    assert!(r.ok(), "{r}: {:?}", r.violations);
    r
}

/// `count` of them, the largest `max_ms`.
fn tally(count: usize, max_ms: u64) -> Tally {
    Tally {
        count,
        max: max_ms * MS,
    }
}

/// The account of the one stale-follower violation `h` must hold.
fn one_stale_follower(h: &History) -> String {
    let r: Report = check(h, &rules());
    assert_found(&r, "stale follower", 1);
    r.violations[0].explain(h)
}

#[test]
fn a_minority_follower_naming_the_old_leader_past_the_window_fails() {
    // Sent up to 2.5 s: long after 1.302 s + 50 ms + 150 ms. The split does not excuse it:
    // peer-2 was on peer-0's side, nothing held peer-0's heartbeats back from it.
    let text = one_stale_follower(&minority_follower(2500));
    assert!(
        text.contains("STALE FOLLOWER: peer-2 answered [1.510000s"),
        "{text}"
    );
    assert!(text.contains("had to be sent by 1.502000s"), "{text}");
    assert!(text.contains("(100 such answers)"), "{text}");
}

#[test]
fn a_minority_follower_naming_the_old_leader_within_the_window_passes() {
    let r = clean(&minority_follower(1500));
    // Sent at 1.31 .. 1.50 s, after the newer claim came back: allowed and counted.
    assert_eq!(r.replaced_named, tally(20, 198));
}

/// Three peers: peer-0 leads term 1; peer-2 is paused from 1 s to 2 s; peer-1's claim of term 2
/// comes back at 1.302 s. When peer-2 resumes it reads a heartbeat peer-0 sent while leased,
/// before its pause, and names peer-0 for term 1 in answers sent up to `named_until_ms`.
fn paused_follower(named_until_ms: u64) -> History {
    let mut answers = steady(0, 1000, 0, 1);
    answers.extend(polled(&[0, 1], 1300, 3000, |_, _| (Some(1), 2)));
    // Its requests sent while it was stopped are answered when it resumes.
    answers.push(answer(2, 1500, 2001, Some(0), 1));
    answers.extend(polled(&[2], 2000, 3000, |_, t| {
        if t <= named_until_ms {
            (Some(0), 1)
        } else {
            (Some(1), 2)
        }
    }));
    let mut pause = fault(1000, 2000);
    pause.kind = FaultKind::PauseLeader;
    pause.held = vec![Held::Paused(2)];
    history(answers, vec![pause])
}

#[test]
fn a_paused_follower_may_name_the_old_leader_for_the_window_after_it_resumes() {
    // Resumed at 2 s: a heartbeat held until then lets it name peer-0 until 2.2 s.
    let r = clean(&paused_follower(2190));
    // 1.5 s (sent while paused) and 2.0 .. 2.19 s.
    assert_eq!(r.replaced_named, tally(1, 198));
    assert_eq!(r.excused, tally(20, 888));
}

#[test]
fn a_paused_follower_naming_the_old_leader_past_the_window_after_it_resumes_fails() {
    let text = one_stale_follower(&paused_follower(2400));
    assert!(text.contains("peer-2 answered [2.210000s"), "{text}");
    assert!(
        text.contains("had to be sent by 2.200000s, extended by fault #0"),
        "{text}"
    );
}

#[test]
fn heartbeats_are_late_by_the_delay_of_a_slow_link_and_until_a_pause_or_cut_heals() {
    let rules = rules();
    let mut slow = fault(1000, 3000);
    slow.held = vec![Held::Slowed {
        peer: 0,
        delay: 40 * MS,
    }];
    let mut pause = fault(1400, 1800);
    pause.held = vec![Held::Paused(1)];
    let mut cut = fault(2000, 2600);
    cut.held = vec![Held::Cut(vec![0], vec![1, 2])];
    let h = history(Vec::new(), vec![slow, pause, cut]);
    let at = |leader, follower, replaced_ms: u64| {
        let (t, by) = latest_arrival(&h, &rules, leader, follower, replaced_ms * MS);
        (t / MS, by)
    };
    // Nothing held: 50 ms.
    assert_eq!(at(1, 2, 500), (550, None));
    // The slow leader: 40 ms more while it was slow (started by then).
    assert_eq!(at(0, 2, 1200), (1290, Some(0)));
    assert_eq!(at(2, 0, 1200), (1290, Some(0)));
    // A slow that healed long before, or a cut healed before the replacement: no excuse.
    assert_eq!(at(0, 2, 3500), (3550, None));
    // Paused follower: until it resumed (1.8 s), if the pause began by the replacement + 50 ms.
    assert_eq!(at(2, 1, 1390), (1850, Some(1)));
    assert_eq!(at(2, 1, 1340), (1390, None));
    // Cut from the leader: until the heal; a follower on the leader's side: no excuse.
    assert_eq!(at(0, 2, 2100).0, 2650);
    assert_eq!(at(1, 2, 2100), (2150, None));
}

#[test]
fn a_peer_that_does_not_exit_0_in_time_after_sigterm_fails() {
    let mut h = history(steady(0, 1000, 0, 1), Vec::new());
    let stop = |peer, code: Option<i64>, took_ms: Option<u64>| Stop {
        at: 500 * MS,
        why: "restart".into(),
        exit: testkit::Exit {
            peer,
            code,
            took: took_ms.map(Duration::from_millis),
            how: format!("planted: {code:?} after {took_ms:?} ms"),
        },
    };
    h.stops = vec![stop(0, Some(0), Some(40)), stop(1, Some(0), Some(5999))];
    let r = check(&h, &rules());
    assert!(r.ok(), "{r}: {:?}", r.violations);
    assert_eq!(r.exits, tally(2, 5999));
    h.stops = vec![
        stop(0, Some(1), Some(40)),
        stop(1, Some(0), Some(6001)),
        stop(2, None, Some(30)),
        stop(2, None, None),
    ];
    let r = check(&h, &rules());
    assert_found(&r, "unclean exit after SIGTERM", 4);
    let text = r.violations[0].explain(&h);
    assert!(
        text.contains("UNCLEAN EXIT AFTER SIGTERM: peer-0 (restart)"),
        "{text}"
    );
}
