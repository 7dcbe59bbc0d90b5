//! Rule 5 of the checker: a follower names a leader only as long as the product allows.
//!
//! The product (src/leadership/lease.rs, docs/DESIGN.md "Who may say I am the leader"): a
//! follower names leader L for term t only from append-entries that L sent while its own lease
//! held (marked leased), and only for [`Rules::follower_window`] after such a heartbeat ARRIVED.
//! A heartbeat L sent while leased was sent before any leader of a newer term was elected, so
//! before the first claim of a newer term was made, so before that claim's answer came back
//! (R, in test time). Hence every answer naming L for term t is computed before
//! `arrival + window`, where `arrival` is when a heartbeat L sent before R reached the
//! follower's handler. Without a fault, that is within [`Rules::delivery`] of R; a fault that
//! holds messages back ([`Held`]) makes it later:
//!
//! * the follower or L paused (SIGSTOP, freezer) from `start` to `healed`, or the follower cut
//!   from L (a fault proxy holds the bytes of an open connection; TCP retransmits after an
//!   iptables DROP or a network disconnect): `max(R, healed) + delivery`, when the fault began by
//!   `R + delivery` (else the heartbeat had arrived before it);
//! * the follower or L slowed by `d`: `min(R, healed) + d + delivery`, when the slow began by R.
//!
//! An answer of the follower naming L for term t whose request was SENT after the latest such
//! arrival plus the window is a violation, whether or not the follower had seen the newer term.
//! A follower naming for term t another peer than the one that claimed term t is reported too.

use std::collections::{BTreeMap, HashMap};

use crate::checker::{Report, Rules};
use crate::history::{Answer, History, Micros};
use crate::violation::Violation;

/// Per term, the first claim (by reception) of it, and of any term above it.
struct Claims<'a> {
    claimer: HashMap<u64, &'a Answer>,
    /// (term, earliest-received claim of a term >= it), ascending by term.
    firsts: Vec<(u64, &'a Answer)>,
}

impl<'a> Claims<'a> {
    fn new(h: &'a History) -> Claims<'a> {
        let mut claims: Vec<&Answer> = h.answers.iter().filter(|a| a.is_claim()).collect();
        claims.sort_by_key(|a| a.received);
        let mut claimer: HashMap<u64, &Answer> = HashMap::new();
        for a in &claims {
            claimer.entry(a.term).or_insert(a);
        }
        let by_term: BTreeMap<u64, &Answer> = claimer.iter().map(|(t, a)| (*t, *a)).collect();
        let mut firsts = Vec::new();
        let mut best: Option<&Answer> = None;
        for (term, a) in by_term.iter().rev() {
            if best.is_none_or(|b| a.received < b.received) {
                best = Some(a);
            }
            firsts.extend(best.map(|b| (*term, b)));
        }
        firsts.reverse();
        Claims { claimer, firsts }
    }

    /// The earliest-received claim of a term above `t`.
    fn replaced(&self, t: u64) -> Option<&'a Answer> {
        let i = self.firsts.partition_point(|(term, _)| *term <= t);
        self.firsts.get(i).map(|(_, a)| *a)
    }
}

/// The latest time a heartbeat `leader` sent to `follower` before `replaced` can have reached
/// the follower, given the faults that may have held it back; and the fault that made it later.
pub fn latest_arrival(
    h: &History,
    rules: &Rules,
    leader: usize,
    follower: usize,
    replaced: Micros,
) -> (Micros, Option<usize>) {
    let mut latest = (replaced + rules.delivery, None);
    for (i, f) in h.faults.iter().enumerate() {
        for held in &f.held {
            let arrival = match held.holds(leader, follower) {
                Some(None) if f.start <= replaced + rules.delivery => f.healed.max(replaced),
                Some(Some(delay)) if f.start <= replaced => f.healed.min(replaced) + delay,
                _ => continue,
            } + rules.delivery;
            if arrival > latest.0 {
                latest = (arrival, Some(i));
            }
        }
    }
    latest
}

/// Rule 5, over every follower answer that names another peer of the cluster.
pub fn stale_followers(h: &History, rules: &Rules, r: &mut Report) {
    let claims = Claims::new(h);
    let mut wrong = 0;
    // (follower, leader, term) -> the first violation, counting the others.
    let mut stale: BTreeMap<(usize, usize, u64), Violation> = BTreeMap::new();
    let n = h.peers.len();
    for a in &h.answers {
        let Some(leader) = a.leader.filter(|l| *l < n && *l != a.peer) else {
            continue;
        };
        if a.is_leader {
            continue;
        }
        if let Some(c) = claims.claimer.get(&a.term) {
            if c.peer != leader && wrong < 5 {
                wrong += 1;
                r.violations.push(Violation::WrongLeaderForTerm {
                    answer: a.clone(),
                    claimed_by: (*c).clone(),
                });
            }
        }
        let Some(newer) = claims.replaced(a.term) else {
            continue;
        };
        if a.sent <= newer.received {
            continue;
        }
        let late = a.sent - newer.received;
        let (arrival, extended_by) = latest_arrival(h, rules, leader, a.peer, newer.received);
        let limit = arrival + rules.follower_window;
        if a.sent <= limit {
            let plain = rules.delivery + rules.follower_window;
            match extended_by {
                Some(_) if late > plain => r.excused.add(late),
                _ => r.replaced_named.add(late),
            }
            continue;
        }
        stale
            .entry((a.peer, leader, a.term))
            .and_modify(|v| {
                if let Violation::FollowerStale { count, .. } = v {
                    *count += 1;
                }
            })
            .or_insert(Violation::FollowerStale {
                answer: a.clone(),
                replaced_by: newer.clone(),
                limit,
                extended_by,
                count: 1,
            });
    }
    let mut found: Vec<Violation> = stale.into_values().collect();
    found.sort_by_key(|v| match v {
        Violation::FollowerStale { answer, .. } => answer.sent,
        _ => 0,
    });
    r.violations.extend(found);
}
