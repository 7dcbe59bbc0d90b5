//! Rule 4 of the checker, and the availability it measures: after every repair all peers agree
//! on one leader within [`Rules::heal_bound`]; while a majority is up and connected, no stretch
//! longer than [`Rules::outage_bound`] goes without a leader agreed by a majority.
//!
//! "All peers" and "a majority" are of the peers the nemesis meant to be members at the time
//! ([`History::enrolled`]): a spare not started, or a member stopped to leave, is not asked.
//! A fault that struck while a joint membership was in force does not count as leaving a
//! majority healthy: each half of a joint membership needs a majority of its own, which the
//! majority of all members the nemesis kept together may lack (e.g. {A, B, C} and {A, B} with
//! A cut off from B and C), and no Raft elects then.

use crate::checker::{Report, Rules, Window};
use crate::history::{Answer, Fault, History, Micros};
use crate::violation::Violation;

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

fn apply(views: &mut [Option<View>], e: &Event, min_sent: Micros, roster: &[bool]) {
    match *e {
        Event::Answer(a) if a.peer < views.len() && a.sent >= min_sent && roster[a.peer] => {
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

/// Who is enrolled, per peer, as time goes on.
struct Roster<'a> {
    h: &'a History,
    /// Enrolments in order of time.
    order: Vec<usize>,
    next: usize,
    now: Vec<bool>,
}

impl<'a> Roster<'a> {
    fn new(h: &'a History) -> Roster<'a> {
        let mut order: Vec<usize> = (0..h.enrolments.len()).collect();
        order.sort_by_key(|&i| h.enrolments[i].at);
        Roster {
            h,
            order,
            next: 0,
            now: vec![true; h.peers.len()],
        }
    }

    /// The roster at `t` (never earlier than at the last call).
    fn at(&mut self, t: Micros) -> &[bool] {
        while let Some(&i) = self.order.get(self.next) {
            let e = &self.h.enrolments[i];
            if e.at > t {
                break;
            }
            if e.peer < self.now.len() {
                self.now[e.peer] = e.member;
            }
            self.next += 1;
        }
        &self.now
    }
}

/// Rule 4, and the availability measurements.
pub fn liveness(h: &History, rules: &Rules, r: &mut Report) {
    let n = h.peers.len();
    let ev = events(h);
    // All peers agree, with answers sent after each repair.
    for (i, f) in h.faults.iter().enumerate() {
        let start = ev.partition_point(|e| e.at() < f.healed);
        let roster: Vec<bool> = (0..n).map(|p| h.enrolled(p, f.healed)).collect();
        let all = roster.iter().filter(|m| **m).count();
        let mut views: Vec<Option<View>> = vec![None; n];
        let mut found = None;
        for e in &ev[start..] {
            apply(&mut views, e, f.healed, &roster);
            if agreed(&views, e.at(), rules.fresh, all).is_some() {
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
    let mut roster = Roster::new(h);
    let mut views: Vec<Option<View>> = vec![None; n];
    let mut j = 0;
    let mut open: Option<Micros> = None;
    let mut t = first;
    while t <= h.end {
        let now = roster.at(t);
        for (p, v) in views.iter_mut().enumerate() {
            if !now[p] {
                *v = None;
            }
        }
        while j < ev.len() && ev[j].at() <= t {
            apply(&mut views, &ev[j], 0, now);
            j += 1;
        }
        let majority = now.iter().filter(|m| **m).count() / 2 + 1;
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
            .filter(|f| {
                (!f.majority_healthy || joint_during(h, f)) && f.start <= w.to && f.healed >= w.from
            })
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

/// Whether some peer answered `/v1/members` with a joint membership while `f` held.
fn joint_during(h: &History, f: &Fault) -> bool {
    h.members
        .iter()
        .any(|m| m.joint && m.received >= f.start && m.sent <= f.healed)
}

fn window(h: &History, from: Micros, to: Micros) -> Window {
    let fault = h.faults.iter().rposition(|f| f.start <= from);
    Window { from, to, fault }
}
