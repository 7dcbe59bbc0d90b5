//! The membership rules of the checker, over the `/v1/members` answers the clients record
//! (every peer about every 75 ms) and the processes the nemesis started and ended.
//!
//! 8. **Leader not a voter.** A claim of leadership by P, bracketed by two `/v1/members`
//!    answers of the same P process (the last one received before the claim was sent, the
//!    first one sent after the claim came back) that show the same membership, which does not
//!    list P as a voter. (Between two answers that show different memberships the claim is not
//!    judged: the change may have happened at any moment in between.)
//! 9. **Membership index going back.** A peer reports a membership index lower than one it
//!    reported earlier (in an answer sent after the higher one came back), within one run of
//!    its data: process restarts after SIGTERM keep it (everything was written), a kill -9
//!    starts a new one (an entry appended but not yet written may be lost). Raft may truncate
//!    an uncommitted entry, so only a fall from a membership known to be committed is a
//!    violation: one that some peer listed while it reported an applied index at or past the
//!    membership's (applied entries are committed). Other falls are allowed, and counted. (A
//!    majority of voters listing a membership does not make it committed: the entry may be of
//!    an older term, which a newer leader may overwrite, as in figure 8 of the Raft paper, or
//!    a leader may list an entry it appended but had not yet written when it was killed.)
//! 10. **Two memberships at one index.** Two answers (of any peers) with the same membership
//!     index and different members, roles or joint state.
//! 11. **Membership not settled.** From [`History::settle_from`] (after the last fault, every
//!     peer of the nemesis' roster running), within [`Rules::members_bound`] every peer of the
//!     roster reports the same membership, whose members are exactly the roster (all voters up
//!     to [`Rules::max_voters`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::checker::{Report, Rules};
use crate::history::{Answer, History, Life, MembersSample, Micros, Role, UNKNOWN_PEER};
use crate::violation::Violation;

/// Every membership rule.
pub fn membership(h: &History, rules: &Rules, r: &mut Report) {
    let per_peer = by_peer(h);
    r.members_samples = h.members.len();
    r.membership_indexes = h
        .members
        .iter()
        .filter_map(|m| m.index)
        .collect::<BTreeSet<_>>()
        .len();
    leader_not_voter(h, &per_peer, r);
    going_back(h, &per_peer, r);
    one_per_index(h, r);
    settled(h, rules, r);
}

/// Each peer's samples in order of sending (each peer is asked by one task, one request at a
/// time, so they are also in order of reception).
fn by_peer(h: &History) -> Vec<Vec<&MembersSample>> {
    let mut out: Vec<Vec<&MembersSample>> = vec![Vec::new(); h.peers.len()];
    for m in &h.members {
        if m.peer < out.len() {
            out[m.peer].push(m);
        }
    }
    for v in &mut out {
        v.sort_by_key(|m| m.sent);
    }
    out
}

/// Which process of `peer` answered a request sent at `t`: how many times it had been
/// started by then.
fn process(h: &History, peer: usize, t: Micros) -> usize {
    h.lives
        .iter()
        .filter(|l| l.peer == peer && l.what == Life::Started && l.at <= t)
        .count()
}

/// Which run of its data `peer`'s process at `t` belongs to: a new one after each kill -9.
fn data_run(h: &History, peer: usize, t: Micros) -> usize {
    let mut run = 0;
    let mut killed = false;
    for l in h.lives.iter().filter(|l| l.peer == peer && l.at <= t) {
        match l.what {
            Life::Killed => killed = true,
            Life::Terminated => killed = false,
            Life::Started if killed => {
                run += 1;
                killed = false;
            }
            Life::Started => {}
        }
    }
    run
}

/// Rule 8.
fn leader_not_voter(h: &History, per_peer: &[Vec<&MembersSample>], r: &mut Report) {
    let mut found: BTreeMap<(usize, Option<u64>), Violation> = BTreeMap::new();
    for claim in h.answers.iter().filter(|a| a.is_claim()) {
        let Some(samples) = per_peer.get(claim.peer) else {
            continue;
        };
        let Some((before, after)) = bracket(h, samples, claim) else {
            continue;
        };
        r.claims_bracketed += 1;
        if !before.same(after) || before.role_of(claim.peer) == Some(Role::Voter) {
            continue;
        }
        found
            .entry((claim.peer, before.index))
            .and_modify(|v| {
                if let Violation::LeaderNotVoter { count, .. } = v {
                    *count += 1;
                }
            })
            .or_insert(Violation::LeaderNotVoter {
                claim: claim.clone(),
                before: before.clone(),
                after: after.clone(),
                count: 1,
            });
    }
    r.violations.extend(found.into_values());
}

/// The samples of the claiming process just before and just after the claim.
fn bracket<'a>(
    h: &History,
    samples: &[&'a MembersSample],
    claim: &Answer,
) -> Option<(&'a MembersSample, &'a MembersSample)> {
    let i = samples.partition_point(|m| m.received <= claim.sent);
    let j = samples.partition_point(|m| m.sent < claim.received);
    let (before, after) = (*samples.get(i.checked_sub(1)?)?, *samples.get(j)?);
    let me = process(h, claim.peer, claim.sent);
    let same_process =
        process(h, claim.peer, before.sent) == me && process(h, claim.peer, after.sent) == me;
    same_process.then_some((before, after))
}

/// Whether some peer listed exactly `m` while it had applied its entry: `m` was committed.
fn known_committed(m: &MembersSample, applied: &BTreeMap<Key, u64>) -> bool {
    m.index
        .is_some_and(|index| applied.get(&key(m)).is_some_and(|a| *a >= index))
}

/// A membership as compared across peers.
type Key = (Option<u64>, bool, Vec<(usize, Role)>);

fn key(m: &MembersSample) -> Key {
    (m.index, m.joint, m.members.clone())
}

/// Rule 9, per peer and run of its data, by a sweep as for terms.
fn going_back(h: &History, per_peer: &[Vec<&MembersSample>], r: &mut Report) {
    // Per membership, the highest applied index any peer reported with it.
    let mut applied: BTreeMap<Key, u64> = BTreeMap::new();
    for m in &h.members {
        if let Some(a) = m.applied {
            let e = applied.entry(key(m)).or_default();
            *e = (*e).max(a);
        }
    }
    let mut excused: BTreeSet<(usize, usize, Option<u64>, Option<u64>)> = BTreeSet::new();
    for (peer, samples) in per_peer.iter().enumerate() {
        let mut runs: BTreeMap<usize, Vec<&MembersSample>> = BTreeMap::new();
        for m in samples {
            runs.entry(data_run(h, peer, m.sent)).or_default().push(m);
        }
        for (k, run) in &runs {
            let mut max: Option<&MembersSample> = None;
            let mut j = 0;
            let mut downs: BTreeMap<(Option<u64>, Option<u64>), Violation> = BTreeMap::new();
            for s in run {
                // In order of sending, which is the order of reception (one asker per peer).
                while j < run.len() && run[j].received < s.sent {
                    if max.is_none_or(|m| run[j].index > m.index) {
                        max = Some(run[j]);
                    }
                    j += 1;
                }
                let Some(m) = max.filter(|m| s.index < m.index) else {
                    continue;
                };
                if !known_committed(m, &applied) {
                    excused.insert((peer, *k, m.index, s.index));
                    if r.first_excused.is_none() {
                        r.first_excused = Some(((*m).clone(), (*s).clone()));
                    }
                    continue;
                }
                downs
                    .entry((m.index, s.index))
                    .or_insert(Violation::MembershipBack {
                        higher: (*m).clone(),
                        lower: (*s).clone(),
                    });
            }
            r.violations.extend(downs.into_values());
        }
    }
    r.back_excused = excused.len();
}

/// Rule 10.
fn one_per_index(h: &History, r: &mut Report) {
    let mut first: BTreeMap<u64, &MembersSample> = BTreeMap::new();
    let mut found: BTreeSet<u64> = BTreeSet::new();
    let mut ordered: Vec<&MembersSample> = h.members.iter().collect();
    ordered.sort_by_key(|m| m.received);
    for m in ordered {
        let Some(index) = m.index else { continue };
        let f = *first.entry(index).or_insert(m);
        if !f.same(m) && found.insert(index) {
            r.violations.push(Violation::TwoMemberships {
                first: f.clone(),
                second: m.clone(),
            });
        }
    }
}

/// Whether every peer of `roster` shows the same membership, made of exactly the roster (all
/// voters when they are at most `max_voters`).
pub fn agreed(latest: &[Option<&MembersSample>], roster: &[usize], max_voters: usize) -> bool {
    let Some(Some(first)) = roster.first().map(|&p| latest[p]) else {
        return false;
    };
    let all_same = roster
        .iter()
        .all(|&p| latest[p].is_some_and(|m| m.same(first)));
    let voters_ok = roster.len() > max_voters || first.voters().len() == roster.len();
    all_same && first.names() == roster && !first.names().contains(&UNKNOWN_PEER) && voters_ok
}

/// Rule 11: after the last fault, and after every step of a scripted change.
fn settled(h: &History, rules: &Rules, r: &mut Report) {
    for &from in &h.steps {
        if let Err(v) = settled_from(h, from, h.roster(from), rules) {
            r.violations.push(*v);
        }
    }
    let Some(from) = h.settle_from else { return };
    match settled_from(h, from, h.roster(h.end), rules) {
        Ok(after) => r.settled = Some(after),
        Err(v) => {
            if let Violation::NotSettled { from, at, .. } = &*v {
                r.settled = at.map(|t| t - from);
            }
            r.violations.push(*v);
        }
    }
}

/// How long after `from` every peer of `roster` listed exactly `roster`, within
/// [`Rules::members_bound`].
fn settled_from(
    h: &History,
    from: Micros,
    roster: Vec<usize>,
    rules: &Rules,
) -> Result<Micros, Box<Violation>> {
    let mut latest: Vec<Option<&MembersSample>> = vec![None; h.peers.len()];
    let mut ordered: Vec<&MembersSample> = h.members.iter().filter(|m| m.sent >= from).collect();
    ordered.sort_by_key(|m| m.received);
    let mut at = None;
    for m in ordered {
        latest[m.peer] = Some(m);
        if agreed(&latest, &roster, rules.max_voters) {
            at = Some(m.received);
            break;
        }
    }
    match at {
        Some(t) if t - from <= rules.members_bound => Ok(t - from),
        _ => Err(Box::new(Violation::NotSettled {
            from,
            at,
            roster,
            latest: latest.into_iter().map(|m| m.cloned()).collect(),
        })),
    }
}
