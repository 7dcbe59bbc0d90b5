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
//!    [`Rules::outage_bound`].
//! 5. **Stale follower.** A follower names leader L for term t although it had already seen a
//!    newer term (it reported one before the request was sent) and L had been replaced (a claim
//!    with a higher term was received) more than [`Rules::lease`] before the request was sent.
//!    A follower naming for term t a peer other than the one that claimed term t is reported
//!    too.
//! 6. A claim that names another peer (or nobody), and a name that is no peer of the cluster.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::history::{ms, Answer, History, Micros, UNKNOWN_PEER};

/// The bounds the checker applies.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// How long after a leader was replaced a follower that saw the newer term may still name
    /// it: the product's follower window, 3/4 of the maximum election timeout (150 ms at the
    /// default timings).
    pub lease: Micros,
    /// How soon after a fault was repaired all peers must agree on one leader.
    pub heal_bound: Micros,
    /// The longest time without an agreed leader while a majority is up and connected.
    pub outage_bound: Micros,
    /// How long a peer's last answer stands for its current view, when measuring agreement.
    pub fresh: Micros,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    StaleLeader {
        newer: Answer,
        stale: Answer,
        /// How many stale claims of the same peer and term followed the same newer claim.
        count: usize,
    },
    SameTerm {
        first: Answer,
        second: Answer,
    },
    TermDown {
        peer: usize,
        higher: (Micros, Micros, u64, &'static str),
        lower: (Micros, Micros, u64, &'static str),
    },
    FollowerStale {
        answer: Answer,
        seen_term: u64,
        seen_at: Micros,
        replaced_by: Answer,
    },
    WrongLeaderForTerm {
        answer: Answer,
        claimed_by: Answer,
    },
    BadClaim {
        answer: Answer,
    },
    UnknownName {
        answer: Answer,
    },
    NoLeaderAfterHeal {
        fault: usize,
        healed: Micros,
        agreed: Option<Micros>,
    },
    LongOutage {
        from: Micros,
        to: Micros,
        counted_from: Micros,
    },
}

impl Violation {
    pub fn rule(&self) -> &'static str {
        match self {
            Violation::StaleLeader { .. } => "stale leader",
            Violation::SameTerm { .. } => "two leaders in one term",
            Violation::TermDown { .. } => "term went down",
            Violation::FollowerStale { .. } => "stale follower",
            Violation::WrongLeaderForTerm { .. } => "wrong leader for term",
            Violation::BadClaim { .. } => "bad claim",
            Violation::UnknownName { .. } => "unknown name",
            Violation::NoLeaderAfterHeal { .. } => "no leader after heal",
            Violation::LongOutage { .. } => "long outage",
        }
    }

    /// A readable account, with the answers around it.
    pub fn explain(&self, h: &History) -> String {
        let mut out = String::new();
        let (from, to) = match self {
            Violation::StaleLeader {
                newer,
                stale,
                count,
            } => {
                out += &format!(
                    "STALE LEADER: {} claimed term {} in a request sent at {}, after {} had claimed the newer term {} in an answer received at {} ({} such claims)\n  newer: {}\n  stale: {}\n",
                    h.name(Some(stale.peer)), stale.term, ms(stale.sent), h.name(Some(newer.peer)), newer.term, ms(newer.received), count, h.show(newer), h.show(stale)
                );
                (newer.sent, stale.received)
            }
            Violation::SameTerm { first, second } => {
                out += &format!(
                    "TWO LEADERS IN TERM {}:\n  {}\n  {}\n",
                    first.term,
                    h.show(first),
                    h.show(second)
                );
                (
                    first.sent.min(second.sent),
                    first.received.max(second.received),
                )
            }
            Violation::TermDown {
                peer,
                higher,
                lower,
            } => {
                out += &format!(
                    "TERM WENT DOWN on {}: {} {} [{} .. {}], then {} {} [{} .. {}]\n",
                    h.name(Some(*peer)),
                    higher.3,
                    higher.2,
                    ms(higher.0),
                    ms(higher.1),
                    lower.3,
                    lower.2,
                    ms(lower.0),
                    ms(lower.1)
                );
                (higher.0, lower.1)
            }
            Violation::FollowerStale {
                answer,
                seen_term,
                seen_at,
                replaced_by,
            } => {
                out += &format!(
                    "STALE FOLLOWER: {}\n  it had reported term {} at {}, and {} claimed term {} at {} (more than the lease earlier)\n",
                    h.show(answer), seen_term, ms(*seen_at), h.name(Some(replaced_by.peer)), replaced_by.term, ms(replaced_by.received)
                );
                (replaced_by.sent, answer.received)
            }
            Violation::WrongLeaderForTerm { answer, claimed_by } => {
                out += &format!(
                    "WRONG LEADER FOR TERM {}: {}\n  but term {} was claimed by: {}\n",
                    answer.term,
                    h.show(answer),
                    answer.term,
                    h.show(claimed_by)
                );
                (
                    answer.sent.min(claimed_by.sent),
                    answer.received.max(claimed_by.received),
                )
            }
            Violation::BadClaim { answer } => {
                out += &format!(
                    "BAD CLAIM (is_leader but names another): {}\n",
                    h.show(answer)
                );
                (answer.sent, answer.received)
            }
            Violation::UnknownName { answer } => {
                out += &format!("UNKNOWN NAME: {}\n", h.show(answer));
                (answer.sent, answer.received)
            }
            Violation::NoLeaderAfterHeal {
                fault,
                healed,
                agreed,
            } => {
                let f = &h.faults[*fault];
                out += &format!(
                    "NO LEADER AFTER HEAL: fault #{fault} {} ({}) healed at {}; all peers agreed {}\n",
                    f.kind,
                    f.detail,
                    ms(*healed),
                    match agreed {
                        Some(t) => format!("only at {} ({} ms later)", ms(*t), (t - healed) / 1000),
                        None => "never".to_string(),
                    }
                );
                (*healed, healed + 2_000_000)
            }
            Violation::LongOutage {
                from,
                to,
                counted_from,
            } => {
                out += &format!(
                    "LONG OUTAGE: no leader agreed by a majority from {} to {} ({} ms counted from {}, while a majority was up and connected)\n",
                    ms(*from), ms(*to), (to - counted_from) / 1000, ms(*counted_from)
                );
                (*from, (*from + 1_000_000).min(*to))
            }
        };
        let lines = h.excerpt(from.saturating_sub(30_000), to + 30_000);
        let shown = lines.len().min(60);
        out += "  history around it:\n";
        for l in &lines[..shown] {
            out += &format!("    {l}\n");
        }
        if lines.len() > shown {
            out += &format!("    ... {} more lines\n", lines.len() - shown);
        }
        out
    }
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

/// What the checker found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub answers: usize,
    pub claims: usize,
    pub naming: usize,
    pub unknown: usize,
    pub term_samples: usize,
    /// Follower answers naming a leader that had been replaced more than the lease earlier,
    /// where the follower had not seen the newer term (a minority side): allowed, counted.
    pub followers_behind: usize,
    pub followers_behind_max: Micros,
    pub windows: Vec<Window>,
    /// Per fault: microseconds from its repair until all peers agreed.
    pub recovery: Vec<Option<Micros>>,
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
    stale_leaders(h, &mut r);
    same_term(h, &mut r);
    terms_and_followers(h, rules, &mut r);
    liveness(h, rules, &mut r);
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
struct Seen<'a> {
    sent: Micros,
    received: Micros,
    term: u64,
    answer: Option<&'a Answer>,
}

impl Seen<'_> {
    fn source(&self) -> &'static str {
        if self.answer.is_some() {
            "answered term"
        } else {
            "metrics term"
        }
    }
}

/// Rules 3 and 5: per peer, every report against the highest term it reported before.
fn terms_and_followers(h: &History, rules: &Rules, r: &mut Report) {
    let n = h.peers.len();
    // Who claimed each term, and for each term the earliest claim with a higher term.
    let mut claimer: HashMap<u64, &Answer> = HashMap::new();
    let mut claims: Vec<&Answer> = h.answers.iter().filter(|a| a.is_claim()).collect();
    claims.sort_by_key(|a| a.received);
    for a in &claims {
        claimer.entry(a.term).or_insert(a);
    }
    // (term, earliest claim of a term >= it), ascending by term, suffix minimum by received.
    let mut firsts: Vec<(u64, &Answer)> = Vec::new();
    {
        let mut by_term: BTreeMap<u64, &Answer> = BTreeMap::new();
        for a in &claims {
            by_term.entry(a.term).or_insert(a);
        }
        let mut best: Option<&Answer> = None;
        for (term, a) in by_term.iter().rev() {
            if best.is_none_or(|b| a.received < b.received) {
                best = Some(a);
            }
            if let Some(b) = best {
                firsts.push((*term, b));
            }
        }
        firsts.reverse();
    }
    let replaced = |t: u64| -> Option<&Answer> {
        let i = firsts.partition_point(|(term, _)| *term <= t);
        firsts.get(i).map(|(_, a)| *a)
    };

    let mut per_peer: Vec<Vec<Seen>> = vec![Vec::new(); n];
    for a in &h.answers {
        if a.peer < n {
            per_peer[a.peer].push(Seen {
                sent: a.sent,
                received: a.received,
                term: a.term,
                answer: Some(a),
            });
        }
    }
    for s in &h.terms {
        if s.peer < n {
            per_peer[s.peer].push(Seen {
                sent: s.sent,
                received: s.received,
                term: s.term,
                answer: None,
            });
        }
    }
    let mut wrong_reported = 0;
    for (peer, seen) in per_peer.iter().enumerate() {
        let mut by_received: Vec<Seen> = seen.clone();
        by_received.sort_by_key(|s| s.received);
        let mut by_sent: Vec<Seen> = seen.clone();
        by_sent.sort_by_key(|s| s.sent);
        let mut max: Option<Seen> = None;
        let mut j = 0;
        let mut downs: BTreeMap<(u64, u64), (Seen, Seen)> = BTreeMap::new();
        let mut stale: BTreeMap<(usize, u64), Violation> = BTreeMap::new();
        for s in by_sent {
            while j < by_received.len() && by_received[j].received < s.sent {
                let b = by_received[j];
                if max.is_none_or(|m| b.term > m.term) {
                    max = Some(b);
                }
                j += 1;
            }
            if let Some(m) = max {
                if s.term < m.term {
                    downs.entry((m.term, s.term)).or_insert((m, s));
                }
            }
            // Rule 5, for answers naming another peer.
            let Some(a) = s.answer else { continue };
            let Some(leader) = a.leader else { continue };
            if a.is_leader || leader == peer || leader == UNKNOWN_PEER {
                continue;
            }
            if let Some(c) = claimer.get(&a.term) {
                if c.peer != leader && wrong_reported < 5 {
                    wrong_reported += 1;
                    r.violations.push(Violation::WrongLeaderForTerm {
                        answer: a.clone(),
                        claimed_by: (*c).clone(),
                    });
                }
            }
            let Some(newer) = replaced(a.term) else {
                continue;
            };
            if a.sent <= newer.received + rules.lease {
                continue;
            }
            match max {
                Some(m) if m.term > a.term => {
                    stale
                        .entry((leader, a.term))
                        .or_insert(Violation::FollowerStale {
                            answer: a.clone(),
                            seen_term: m.term,
                            seen_at: m.received,
                            replaced_by: newer.clone(),
                        });
                }
                _ => {
                    r.followers_behind += 1;
                    r.followers_behind_max = r.followers_behind_max.max(a.sent - newer.received);
                }
            }
        }
        for (higher, lower) in downs.into_values() {
            r.violations.push(Violation::TermDown {
                peer,
                higher: (higher.sent, higher.received, higher.term, higher.source()),
                lower: (lower.sent, lower.received, lower.term, lower.source()),
            });
        }
        r.violations.extend(stale.into_values());
    }
}

/// The state of one peer at a moment, as its newest answer says.
#[derive(Clone, Copy)]
struct View {
    received: Micros,
    leader: Option<usize>,
    term: u64,
    is_leader: bool,
}

/// An answer or a failed request of one peer, in order of reception.
enum Event<'a> {
    Answer(&'a Answer),
    Failed(usize, Micros),
}

impl Event<'_> {
    fn at(&self) -> Micros {
        match self {
            Event::Answer(a) => a.received,
            Event::Failed(_, t) => *t,
        }
    }
}

fn events(h: &History) -> Vec<Event<'_>> {
    let mut ev: Vec<Event> = h.answers.iter().map(Event::Answer).collect();
    ev.extend(h.failures.iter().map(|f| Event::Failed(f.peer, f.received)));
    ev.sort_by_key(|e| e.at());
    ev
}

fn apply(views: &mut [Option<View>], e: &Event, min_sent: Micros) {
    match *e {
        Event::Answer(a) if a.peer < views.len() && a.sent >= min_sent => {
            views[a.peer] = Some(View {
                received: a.received,
                leader: a.leader,
                term: a.term,
                is_leader: a.is_leader,
            })
        }
        Event::Failed(p, _) if p < views.len() => views[p] = None,
        _ => {}
    }
}

/// The leader named by at least `needed` fresh views (its own claim included), if any.
fn agreed(views: &[Option<View>], now: Micros, fresh: Micros, needed: usize) -> Option<usize> {
    let live = |v: &Option<View>| v.filter(|v| v.received + fresh >= now);
    for (p, v) in views.iter().enumerate() {
        let Some(v) = live(v) else { continue };
        if !v.is_leader {
            continue;
        }
        let count = views
            .iter()
            .filter_map(live)
            .filter(|w| w.leader == Some(p) && w.term == v.term)
            .count();
        if count >= needed {
            return Some(p);
        }
    }
    None
}

/// Rule 4, and the availability measurements.
fn liveness(h: &History, rules: &Rules, r: &mut Report) {
    let n = h.peers.len();
    let ev = events(h);
    // All peers agree, with answers sent after each repair.
    for (i, f) in h.faults.iter().enumerate() {
        let start = ev.partition_point(|e| e.at() < f.healed);
        let mut views: Vec<Option<View>> = vec![None; n];
        let mut found = None;
        for e in &ev[start..] {
            apply(&mut views, e, f.healed);
            if agreed(&views, e.at(), rules.fresh, n).is_some() {
                found = Some(e.at());
                break;
            }
        }
        r.recovery.push(found.map(|t| t - f.healed));
        if found.is_none_or(|t| t - f.healed > rules.heal_bound) {
            r.violations.push(Violation::NoLeaderAfterHeal {
                fault: i,
                healed: f.healed,
                agreed: found,
            });
        }
    }
    // Windows without a leader agreed by a majority, on a 1 ms grid.
    let Some(first) = ev.first().map(Event::at) else {
        return;
    };
    let majority = n / 2 + 1;
    let mut views: Vec<Option<View>> = vec![None; n];
    let mut j = 0;
    let mut open: Option<Micros> = None;
    let mut t = first;
    while t <= h.end {
        while j < ev.len() && ev[j].at() <= t {
            apply(&mut views, &ev[j], 0);
            j += 1;
        }
        let up = agreed(&views, t, rules.fresh, majority).is_some();
        match (up, open) {
            (false, None) => open = Some(t),
            (true, Some(from)) => {
                r.windows.push(window(h, from, t));
                open = None;
            }
            _ => {}
        }
        t += 1000;
    }
    if let Some(from) = open {
        r.windows.push(window(h, from, h.end));
    }
    // Outages while a majority was up and connected.
    let mut long = 0;
    for w in &r.windows {
        if w.fault.is_none() {
            continue; // the first election
        }
        let excused = h
            .faults
            .iter()
            .filter(|f| !f.majority_healthy && f.start <= w.to && f.healed >= w.from)
            .map(|f| f.healed)
            .max()
            .unwrap_or(0);
        let counted_from = w.from.max(excused);
        if w.to > counted_from && w.to - counted_from > rules.outage_bound {
            long += 1;
            if long <= 10 {
                r.violations.push(Violation::LongOutage {
                    from: w.from,
                    to: w.to,
                    counted_from,
                });
            }
        }
    }
}

fn window(h: &History, from: Micros, to: Micros) -> Window {
    let fault = h.faults.iter().rposition(|f| f.start <= from);
    Window { from, to, fault }
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
