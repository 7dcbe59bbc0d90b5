//! The membership rules against planted histories: a clean one passes, each broken promise
//! fails its rule; the roster keeps spares and peers that left out of the liveness rule.

#![cfg(test)]

use crate::checker::check;
use crate::checker_tests::{assert_found, fault, history_of, rules, steady, MS};
use crate::history::{Enrolment, History, Life, LifeEvent, MembersSample, Role};

const V: Role = Role::Voter;
const L: Role = Role::Learner;

fn sample(peer: usize, sent_ms: u64, index: u64, members: &[(usize, Role)]) -> MembersSample {
    MembersSample {
        peer,
        sent: sent_ms * MS,
        received: sent_ms * MS + 2 * MS,
        index: Some(index),
        joint: false,
        applied: Some(index),
        members: members.to_vec(),
    }
}

/// `peers` asked for their membership every 75 ms from `from_ms` to `to_ms`.
fn polled(
    peers: &[usize],
    from_ms: u64,
    to_ms: u64,
    of: impl Fn(usize, u64) -> (u64, Vec<(usize, Role)>),
) -> Vec<MembersSample> {
    let mut out = Vec::new();
    let mut t = from_ms;
    while t < to_ms {
        for &p in peers {
            let (index, members) = of(p, t);
            out.push(sample(p, t, index, &members));
        }
        t += 75;
    }
    out
}

const THREE: [(usize, Role); 3] = [(0, V), (1, V), (2, V)];

/// peer-0 leads term 1 for 3 s; the three peers list each other as voters at index 1.
fn clean() -> History {
    let mut h = history_of(3, steady(0, 3000, 0, 1), vec![]);
    h.members = polled(&[0, 1, 2], 0, 3000, |_, _| (1, THREE.to_vec()));
    h.settle_from = Some(1000 * MS);
    h
}

#[test]
fn a_clean_membership_history_passes() {
    let r = check(&clean(), &rules());
    assert!(r.ok(), "{r}: {:?}", r.violations);
    assert!(r.claims_bracketed > 250, "{}", r.claims_bracketed);
    assert_eq!(r.membership_indexes, 1);
    assert!(r.settled.is_some_and(|t| t < 100 * MS), "{:?}", r.settled);
}

#[test]
fn a_leader_its_own_membership_does_not_list_as_voter_fails() {
    let mut h = clean();
    // From 1.5 s to 2 s peer-0 lists itself as a learner at index 3, before and after its
    // claims: a violation (counted once per peer and membership).
    let learner = [(0, L), (1, V), (2, V)];
    for m in h.members.iter_mut().filter(|m| m.peer == 0) {
        if (1500 * MS..2000 * MS).contains(&m.sent) {
            *m = sample(0, m.sent / MS, 3, &learner);
        }
    }
    // The others must agree on index 3 too, or rule 10 fires as well.
    for m in h.members.iter_mut().filter(|m| m.peer != 0) {
        if m.sent >= 1500 * MS {
            *m = sample(m.peer, m.sent / MS, 3, &learner);
        }
    }
    for m in h.members.iter_mut().filter(|m| m.peer == 0) {
        if m.sent >= 2000 * MS {
            *m = sample(0, m.sent / MS, 4, &THREE);
        }
    }
    for m in h.members.iter_mut().filter(|m| m.peer != 0) {
        if m.sent >= 2000 * MS {
            *m = sample(m.peer, m.sent / MS, 4, &THREE);
        }
    }
    let r = check(&h, &rules());
    assert_found(&r, "leader not a voter", 1);
    let text = r.violations[0].explain(&h);
    assert!(text.contains("peer-0(learner)"), "{text}");
    assert!(
        matches!(&r.violations[0], crate::violation::Violation::LeaderNotVoter { count, .. } if *count > 30)
    );
}

#[test]
fn a_claim_between_two_different_memberships_or_processes_is_not_judged() {
    let mut h = clean();
    // peer-0 lists itself as a learner just before a claim and as a voter just after.
    let learner = [(0, L), (1, V), (2, V)];
    h.members.retain(|m| m.peer != 0);
    h.members.push(sample(0, 995, 3, &learner));
    h.members.push(sample(0, 1005, 4, &THREE));
    let mut others = polled(&[1, 2], 0, 3000, |_, t| {
        if t < 1000 {
            (3, learner.to_vec())
        } else {
            (4, THREE.to_vec())
        }
    });
    h.members.retain(|m| m.peer == 0);
    h.members.append(&mut others);
    h.settle_from = None;
    let r = check(&h, &rules());
    assert!(r.ok(), "{:?}", r.violations);
    // The same membership before and after, but from two processes (restarted in between).
    let mut h = clean();
    h.members
        .retain(|m| !(m.peer == 0 && (900 * MS..1100 * MS).contains(&m.sent)));
    h.members.push(sample(0, 950, 1, &[(1, V), (2, V)]));
    h.members.push(sample(0, 1050, 1, &[(1, V), (2, V)]));
    let restart = |at_ms: u64, what| LifeEvent {
        peer: 0,
        at: at_ms * MS,
        what,
    };
    h.lives = vec![
        restart(0, Life::Started),
        restart(1000, Life::Killed),
        restart(1000, Life::Started),
    ];
    let r = check(&h, &rules());
    // Only rule 10 fires (the planted membership differs at index 1), not rule 8.
    assert_found(&r, "leader not a voter", 0);
    assert_found(&r, "two memberships at one index", 1);
}

#[test]
fn a_membership_index_going_back_fails_unless_it_may_not_have_been_committed() {
    let four = |_: usize, t: u64| {
        if t < 1500 {
            (1, THREE.to_vec())
        } else {
            (7, THREE.to_vec())
        }
    };
    let mut h = clean();
    h.members = polled(&[0, 1, 2], 0, 3000, four);
    // peer-1 lists index 1 again at 2 s, after every peer had listed index 7.
    h.members.push(sample(1, 2001, 1, &THREE));
    let r = check(&h, &rules());
    assert_found(&r, "membership went back", 1);
    assert_eq!(r.back_excused, 0);
    // Index 9, listed by peer-1 and peer-2 (a majority) but applied by none, may have been an
    // entry of an older term that a newer leader overwrote: falling back from it is allowed,
    // and counted.
    let nine = [(0, V), (1, V), (2, V), (3, L)];
    let unapplied = |p, t| MembersSample {
        applied: Some(7),
        ..sample(p, t, 9, &nine)
    };
    let mut h = clean();
    h.members = polled(&[0, 1, 2], 0, 3000, four);
    h.members.push(unapplied(1, 2001));
    h.members.push(unapplied(2, 2002));
    let r = check(&h, &rules());
    assert_found(&r, "membership went back", 0);
    assert_eq!(
        r.back_excused, 2,
        "one fall per peer, however many answers show it"
    );
    let (higher, lower) = r.first_excused.clone().expect("the fall is shown");
    assert_eq!((higher.index, lower.index), (Some(9), Some(7)));
    // Once any peer listed it with index 9 applied, it was committed: the falls fail.
    let mut h = clean();
    h.members = polled(&[0, 1, 2], 0, 3000, four);
    h.members.push(unapplied(1, 2001));
    h.members.push(sample(0, 2040, 9, &nine));
    h.members.push(sample(0, 2120, 9, &nine));
    // peer-1 and peer-0 (which applied it) both list index 7 afterwards.
    assert_found(&check(&h, &rules()), "membership went back", 2);
    // After a kill -9 and a restart, what had not been written may be lost: not compared. A
    // restart after SIGTERM keeps everything: compared.
    for (end, found) in [(Life::Killed, 0), (Life::Terminated, 1)] {
        let mut h = clean();
        h.members = polled(&[0, 1, 2], 0, 3000, four);
        h.members.push(sample(1, 2001, 1, &THREE));
        h.lives = vec![
            LifeEvent {
                peer: 1,
                at: 1900 * MS,
                what: end,
            },
            LifeEvent {
                peer: 1,
                at: 2000 * MS,
                what: Life::Started,
            },
        ];
        assert_found(&check(&h, &rules()), "membership went back", found);
    }
}

#[test]
fn two_memberships_at_one_index_fail() {
    let mut h = clean();
    h.members
        .push(sample(2, 2001, 1, &[(0, V), (1, V), (2, L)]));
    let r = check(&h, &rules());
    assert_found(&r, "two memberships at one index", 1);
    // A joint change is a different membership too.
    let mut h = clean();
    let mut joint = sample(2, 2001, 1, &THREE);
    joint.joint = true;
    h.members.push(joint);
    assert_found(&check(&h, &rules()), "two memberships at one index", 1);
}

#[test]
fn a_membership_that_does_not_settle_on_the_running_peers_fails() {
    // peer-3 was a spare that joined and left; peer-2 still lists it after the last fault.
    let mut h = clean();
    h.peers.push("peer-3".into());
    h.enrolments = vec![
        Enrolment {
            peer: 3,
            at: 0,
            member: false,
        },
        Enrolment {
            peer: 3,
            at: 200 * MS,
            member: true,
        },
        Enrolment {
            peer: 3,
            at: 800 * MS,
            member: false,
        },
    ];
    let with_3 = [(0, V), (1, V), (2, V), (3, V)];
    h.members = polled(&[0, 1, 2], 0, 3000, |p, t| {
        if p == 2 && t >= 300 {
            (2, with_3.to_vec())
        } else if t < 300 {
            (1, THREE.to_vec())
        } else {
            (3, THREE.to_vec())
        }
    });
    let r = check(&h, &rules());
    assert_found(&r, "membership not settled", 1);
    let text = r
        .violations
        .iter()
        .find(|v| v.rule() == "membership not settled")
        .map(|v| v.explain(&h))
        .unwrap_or_default();
    assert!(text.contains("exactly {peer-0,peer-1,peer-2}"), "{text}");
    // Settling late (peer-2 lists the right members from 2.5 s, 1.5 s after settle_from) is
    // within the 3 s bound of the planted rules; at 4.5 s it would not be.
    let mut h2 = h.clone();
    h2.members = polled(&[0, 1, 2], 0, 3000, |p, t| {
        if p == 2 && (300..2500).contains(&t) {
            (2, with_3.to_vec())
        } else if t < 300 {
            (1, THREE.to_vec())
        } else {
            (3, THREE.to_vec())
        }
    });
    let r = check(&h2, &rules());
    assert_found(&r, "membership not settled", 0);
    assert!(r.settled.is_some_and(|t| t > 1400 * MS), "{:?}", r.settled);
    // The same rule after each step of a scripted change: a step ending at 1 s (roster of
    // three) that never settles fails, as the last fault does.
    let mut h3 = h.clone();
    h3.settle_from = None;
    h3.steps = vec![1000 * MS];
    assert_found(&check(&h3, &rules()), "membership not settled", 1);
    h3.members = h2.members.clone();
    assert_found(&check(&h3, &rules()), "membership not settled", 0);
}

#[test]
fn peers_out_of_the_roster_are_not_waited_for() {
    // A fourth peer that never runs (a spare) and answers nothing: without the roster every
    // repair would wait for it forever.
    let mut h = history_of(4, steady(0, 3000, 0, 1), vec![fault(1000, 1200)]);
    let r = check(&h, &rules());
    assert_found(&r, "no leader after heal", 1);
    h.enrolments = vec![Enrolment {
        peer: 3,
        at: 0,
        member: false,
    }];
    let r = check(&h, &rules());
    assert!(r.ok(), "{:?}", r.violations);
}
