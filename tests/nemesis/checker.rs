//! The history checker: reads everything a run recorded and lists every broken promise.
//!
//! Rules (times are those of the test process; an answer is valid over [sent, received]):
//!
//! 1. **Stale leader.** Peer P claims leadership in term t in an answer whose request was SENT
//!    after another peer's claim with a higher term had already been RECEIVED. Claims whose
//!    intervals overlap are concurrent and not compared.
//! 2. **Two leaders in one term.** Two different peers claim leadership with the same term.
//! 3. **Term going down.** A peer reports a lower term (in an answer or in its metrics) in a
//!    request SENT after one of its answers with a higher term was RECEIVED.
//! 4. **No leader after a fault healed.** Within [`Rules::heal_bound`] after a fault was
//!    repaired, every peer must name the same leader with the same term and that leader must
//!    claim it (answers sent after the repair). Also, while a majority of peers is up and
//!    connected, the cluster may not be without an agreed leader for longer than
//!    [`Rules::outage_bound`] ([`crate::liveness`]).
//! 5. **Stale follower** ([`crate::followers`]). Let R be when the first claim of a term above t
//!    was RECEIVED. A follower F names leader L for term t in a request SENT after
//!    `A + follower_window`, where A is the latest time a heartbeat L sent before R can have
//!    reached F: `R + delivery` (50 ms), or later when a recorded fault held messages between
//!    L and F back: L or F paused, or F cut from L, until `healed` (A = `max(R, healed) +
//!    delivery`, for a fault that began by `R + delivery`); L or F slowed by d (A =
//!    `min(R, healed) + d + delivery`, for a slow that began by R). This holds whether or not
//!    F had seen the newer term: a follower on a minority side still hearing the old leader
//!    must stop naming it. A follower naming for term t a peer other than the one that claimed
//!    term t is reported too.
//! 6. A claim that names another peer (or nobody), and a name that is no peer of the cluster.
//! 7. **Unclean exit.** Every peer the nemesis stopped with SIGTERM (restarts, leaves, the end
//!    of the run) exited with code 0 within [`Rules::shutdown_bound`] of the signal.
//!
//! 12. **Witness leads.** A peer started with `--witness` claims leadership, or another peer
//!     names it leader.
//!
//! 13-15, the job ledger ([`crate::ledger`]): no slot granted twice, no token reused, tokens
//! growing in the order of grants. 16-17, the schedule ([`crate::schedule`]): no slot ran
//! twice, none skipped.
//!
//! 8-11, the membership ([`crate::membership`]): a leader is a voter of its own membership; a
//! peer's membership index never goes back; one membership per index across peers; after the
//! last fault every running peer lists the same members, exactly the running peers.
//!
//! Peers join and leave on purpose (spares started, members stopped with SIGTERM): rule 4 asks
//! only the peers the nemesis meant to be members then ([`History::enrolled`]).

use std::collections::BTreeMap;
use std::fmt;

use crate::followers::stale_followers;
use crate::history::{Answer, History, MembersSample, Micros, UNKNOWN_PEER};
use crate::ledger::ledger;
use crate::liveness::liveness;
use crate::membership::membership;
use crate::schedule::schedule;
pub use crate::violation::Violation;

/// The bounds the checker applies.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// How long after a leased heartbeat ARRIVED a follower may name its sender: the product's
    /// follower window, 3/4 of the maximum election timeout (180 ms at the default timings).
    pub follower_window: Micros,
    /// How late a heartbeat may reach the follower's handler after its leader checked its lease,
    /// when no recorded fault held it back (the trip through a proxy, a busy machine).
    pub delivery: Micros,
    /// How soon after a fault was repaired all peers must agree on one leader.
    pub heal_bound: Micros,
    /// The longest time without an agreed leader while a majority is up and connected.
    pub outage_bound: Micros,
    /// How long a peer's last answer stands for its current view, when measuring agreement.
    pub fresh: Micros,
    /// How soon after SIGTERM a peer must have exited with code 0: its `--shutdown-timeout`
    /// plus a margin.
    pub shutdown_bound: Micros,
    /// How soon after the last fault every running peer must list the same members.
    pub members_bound: Micros,
    /// The peers' `--max-voters`: members beyond it are learners.
    pub max_voters: usize,
}

/// An interval without a leader agreed by a majority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Micros,
    pub to: Micros,
    /// The fault injected last before it started (`None`: before the first fault).
    pub fault: Option<usize>,
}

impl Window {
    pub fn len(&self) -> Micros {
        self.to - self.from
    }
}

/// How many, and the largest (microseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: usize,
    pub max: Micros,
}

impl Tally {
    pub fn add(&mut self, after: Micros) {
        self.count += 1;
        self.max = self.max.max(after);
    }
}

/// What the checker found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    /// Answers checked.
    pub answers: usize,
    /// Of them, leader claims.
    pub claims: usize,
    /// Of them, followers naming a leader.
    pub naming: usize,
    /// Of them, answers naming nobody.
    pub unknown: usize,
    /// Terms read from the peers' metrics.
    pub term_samples: usize,
    /// Follower answers naming a leader already replaced (sent after the newer claim came
    /// back) within `delivery + follower_window`, allowed; the largest is how long after.
    pub replaced_named: Tally,
    /// Such answers sent later, allowed only because a fault held heartbeats back.
    pub excused: Tally,
    /// Peers stopped with SIGTERM, and the slowest exit after the signal.
    pub exits: Tally,
    /// Stretches without a leader agreed by a majority.
    pub windows: Vec<Window>,
    /// Per fault: microseconds from its repair until all peers agreed.
    pub recovery: Vec<Option<Micros>>,
    /// `/v1/members` answers checked, and the membership indexes among them.
    pub members_samples: usize,
    pub membership_indexes: usize,
    /// Claims with a `/v1/members` answer of the same process before and after.
    pub claims_bracketed: usize,
    /// Falls of a membership index (peer, higher index, lower index) allowed because the
    /// higher one may never have been committed.
    pub back_excused: usize,
    /// The first of them (the higher membership and the lower one after it), for the summary.
    pub first_excused: Option<(MembersSample, MembersSample)>,
    /// How long after [`History::settle_from`] the membership settled.
    pub settled: Option<Micros>,
    /// Answers to claims that named a holder (201, 200, 409), and the slots granted.
    pub claim_answers: usize,
    pub slots_granted: usize,
    /// Runs of the scheduled job, and its slots recorded lost.
    pub schedule_runs: usize,
    pub schedule_lost: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks a whole history.
pub fn check(h: &History, rules: &Rules) -> Report {
    let mut r = Report {
        answers: h.answers.len(),
        claims: h.answers.iter().filter(|a| a.is_claim()).count(),
        naming: h
            .answers
            .iter()
            .filter(|a| !a.is_leader && a.leader.is_some())
            .count(),
        unknown: h.answers.iter().filter(|a| a.leader.is_none()).count(),
        term_samples: h.terms.len(),
        ..Report::default()
    };
    shape(h, &mut r);
    witnesses(h, &mut r);
    stale_leaders(h, &mut r);
    same_term(h, &mut r);
    terms_down(h, &mut r);
    stale_followers(h, rules, &mut r);
    liveness(h, rules, &mut r);
    exits(h, rules, &mut r);
    membership(h, rules, &mut r);
    ledger(h, &mut r);
    schedule(h, &mut r);
    r
}

/// Rule 6: claims name their own peer; names are peers of the cluster.
fn shape(h: &History, r: &mut Report) {
    let mut bad = 0;
    for a in &h.answers {
        let v = if a.leader == Some(UNKNOWN_PEER) {
            Violation::UnknownName { answer: a.clone() }
        } else if a.is_leader && a.leader != Some(a.peer) {
            Violation::BadClaim { answer: a.clone() }
        } else {
            continue;
        };
        bad += 1;
        if bad <= 5 {
            r.violations.push(v);
        }
    }
}

/// Rule 12: a witness never claims leadership and is never named leader.
fn witnesses(h: &History, r: &mut Report) {
    let mut found = h
        .answers
        .iter()
        .filter(|a| a.leader.is_some_and(|l| h.witnesses.contains(&l)));
    if let Some(first) = found.next() {
        r.violations.push(Violation::WitnessLeads {
            answer: first.clone(),
            count: 1 + found.count(),
        });
    }
}

/// Rule 1, by a sweep: claims in order of sending, with every claim received before.
fn stale_leaders(h: &History, r: &mut Report) {
    let n = h.peers.len();
    let claims: Vec<&Answer> = h.answers.iter().filter(|a| a.is_claim()).collect();
    let mut by_received = claims.clone();
    by_received.sort_by_key(|a| a.received);
    let mut by_sent = claims;
    by_sent.sort_by_key(|a| a.sent);
    // Per peer, its highest-term claim received so far (the earliest one of that term).
    let mut best: Vec<Option<&Answer>> = vec![None; n];
    let mut j = 0;
    // (stale peer, stale term, newer peer, newer term) -> (newer, first stale, count)
    type Key = (usize, u64, usize, u64);
    let mut found: BTreeMap<Key, (Answer, Answer, usize)> = BTreeMap::new();
    for a in by_sent {
        while j < by_received.len() && by_received[j].received < a.sent {
            let b = by_received[j];
            if b.peer < n && best[b.peer].is_none_or(|x| b.term > x.term) {
                best[b.peer] = Some(b);
            }
            j += 1;
        }
        let newer = best
            .iter()
            .enumerate()
            .filter(|(q, _)| *q != a.peer)
            .filter_map(|(_, b)| *b)
            .filter(|b| b.term > a.term)
            .max_by_key(|b| b.term);
        if let Some(b) = newer {
            found
                .entry((a.peer, a.term, b.peer, b.term))
                .and_modify(|e| e.2 += 1)
                .or_insert((b.clone(), a.clone(), 1));
        }
    }
    let mut list: Vec<_> = found.into_values().collect();
    list.sort_by_key(|(_, stale, _)| stale.sent);
    for (newer, stale, count) in list {
        r.violations.push(Violation::StaleLeader {
            newer,
            stale,
            count,
        });
    }
}

/// Rule 2.
fn same_term(h: &History, r: &mut Report) {
    let mut by_term: BTreeMap<u64, Vec<&Answer>> = BTreeMap::new();
    for a in h.answers.iter().filter(|a| a.is_claim()) {
        let peers = by_term.entry(a.term).or_default();
        if peers.iter().all(|b| b.peer != a.peer) {
            peers.push(a);
        }
    }
    for claims in by_term.values() {
        if claims.len() > 1 {
            r.violations.push(Violation::SameTerm {
                first: claims[0].clone(),
                second: claims[1].clone(),
            });
        }
    }
}

/// A term a peer reported, from an answer or from its metrics.
#[derive(Debug, Clone, Copy)]
struct Seen {
    sent: Micros,
    received: Micros,
    term: u64,
    source: &'static str,
}

/// Rule 3: per peer, every report against the highest term it reported before.
fn terms_down(h: &History, r: &mut Report) {
    let n = h.peers.len();
    let mut per_peer: Vec<Vec<Seen>> = vec![Vec::new(); n];
    let answers = h
        .answers
        .iter()
        .map(|a| (a.peer, a.sent, a.received, a.term, "answered term"));
    let samples = h
        .terms
        .iter()
        .map(|s| (s.peer, s.sent, s.received, s.term, "metrics term"));
    for (peer, sent, received, term, source) in answers.chain(samples) {
        if peer < n {
            per_peer[peer].push(Seen {
                sent,
                received,
                term,
                source,
            });
        }
    }
    for (peer, seen) in per_peer.iter().enumerate() {
        let mut by_received: Vec<Seen> = seen.clone();
        by_received.sort_by_key(|s| s.received);
        let mut by_sent: Vec<Seen> = seen.clone();
        by_sent.sort_by_key(|s| s.sent);
        let mut max: Option<Seen> = None;
        let mut j = 0;
        let mut downs: BTreeMap<(u64, u64), (Seen, Seen)> = BTreeMap::new();
        for s in by_sent {
            while j < by_received.len() && by_received[j].received < s.sent {
                let b = by_received[j];
                if max.is_none_or(|m| b.term > m.term) {
                    max = Some(b);
                }
                j += 1;
            }
            if let Some(m) = max.filter(|m| s.term < m.term) {
                downs.entry((m.term, s.term)).or_insert((m, s));
            }
        }
        for (higher, lower) in downs.into_values() {
            r.violations.push(Violation::TermDown {
                peer,
                higher: (higher.sent, higher.received, higher.term, higher.source),
                lower: (lower.sent, lower.received, lower.term, lower.source),
            });
        }
    }
}

/// Rule 7: every peer stopped with SIGTERM exited with code 0 within the bound.
fn exits(h: &History, rules: &Rules, r: &mut Report) {
    let bound = std::time::Duration::from_micros(rules.shutdown_bound);
    for stop in &h.stops {
        r.exits
            .add(stop.exit.took.map_or(0, |t| t.as_micros() as Micros));
        if !stop.exit.clean(bound) {
            r.violations.push(Violation::UncleanExit {
                stop: stop.clone(),
                bound: rules.shutdown_bound,
            });
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for v in &self.violations {
            *counts.entry(v.rule()).or_default() += 1;
        }
        if counts.is_empty() {
            write!(f, "no violations")
        } else {
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            write!(
                f,
                "{} violations ({})",
                self.violations.len(),
                parts.join(", ")
            )
        }
    }
}
