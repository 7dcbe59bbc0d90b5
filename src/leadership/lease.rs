//! The leader lease and the follower's freshness window: the state, fed by the network
//! adapter (acknowledgements, newer terms) and the peer service (heartbeats heard, votes), and
//! the checks made at the moment an answer is given ([`Leadership::lease_remaining`],
//! [`Leadership::fresh_leader`]). Why these rules make "never two leaders" hold is in
//! `docs/DESIGN.md`, "Who may say I am the leader".

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Timing;
use crate::raft::NodeId;

/// The lease and follower state of one peer, fed by the peer client and the peer handlers.
#[derive(Debug)]
pub struct Leadership {
    me: NodeId,
    /// The other voters: only their acknowledgements count towards a quorum.
    others: Vec<NodeId>,
    timing: Timing,
    lease: Mutex<LeaseState>,
    heard: Mutex<HeardState>,
    /// When this peer last accepted an append-entries of any leader (its start before that):
    /// openraft's own lease on that leader runs from there.
    last_append: Mutex<Instant>,
}

#[derive(Debug, Default)]
struct HeardState {
    /// The newest term this peer's vote has reached through a peer request.
    seen_term: u64,
    last: Option<Heard>,
}

#[derive(Debug, Default)]
struct LeaseState {
    /// Term of the acknowledgements below.
    term: u64,
    /// Per follower, the send time of the newest append-entries it accepted in `term`.
    acks: HashMap<NodeId, Instant>,
    /// Send time of the first append-entries accepted in `term`: about when it was elected.
    since: Option<Instant>,
    /// Acknowledgements of requests sent at or before this instant do not count.
    revoked_at: Option<Instant>,
    /// Set for good when the peer shuts down: it never claims again.
    relinquished: bool,
    /// This peer resigned the leadership of this term (and earlier ones): no claims for them.
    resigned: u64,
}

/// The leader a follower last heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    pub leader: NodeId,
    pub term: u64,
    /// When its newest accepted append-entries arrived.
    pub at: Instant,
}

impl Leadership {
    pub fn new(me: NodeId, voters: impl IntoIterator<Item = NodeId>, timing: Timing) -> Self {
        Leadership {
            me,
            others: voters.into_iter().filter(|id| *id != me).collect(),
            timing,
            lease: Mutex::new(LeaseState::default()),
            heard: Mutex::new(HeardState::default()),
            last_append: Mutex::new(Instant::now()),
        }
    }

    fn lease(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        // A panic while holding this lock cannot leave the state inconsistent (every update is
        // a single assignment), so a poisoned lock is still usable.
        self.lease.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn heard_mut(&self) -> std::sync::MutexGuard<'_, HeardState> {
        self.heard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `peer` accepted an append-entries of this leader's `term` that was sent at `sent`.
    pub fn on_ack(&self, peer: NodeId, term: u64, sent: Instant) {
        if !self.others.contains(&peer) {
            return;
        }
        let mut l = self.lease();
        if term > l.term {
            l.term = term;
            l.acks.clear();
            l.since = None;
        }
        if term == l.term {
            l.since = Some(l.since.map_or(sent, |s| s.min(sent)));
            let slot = l.acks.entry(peer).or_insert(sent);
            if sent > *slot {
                *slot = sent;
            }
        }
    }

    /// An incoming request carries `term`: if it is newer than this peer's leadership, stop
    /// claiming now, before openraft handles the request.
    pub fn on_newer_term(&self, term: u64) {
        let mut l = self.lease();
        if term > l.term {
            l.revoked_at = Some(Instant::now());
        }
    }

    /// A follower answered with a higher vote: stop claiming now.
    pub fn revoke(&self) {
        self.lease().revoked_at = Some(Instant::now());
    }

    /// The peer is shutting down: never claim leadership again.
    pub fn relinquish(&self) {
        self.lease().relinquished = true;
    }

    /// Whether the peer is shutting down.
    pub fn relinquished(&self) -> bool {
        self.lease().relinquished
    }

    /// About when this peer was elected leader of `term` (the send time of the first
    /// append-entries a follower accepted), if it was.
    pub fn leading_since(&self, term: u64) -> Option<Instant> {
        let l = self.lease();
        (l.term == term).then_some(l.since).flatten()
    }

    /// Stop claiming leadership of `term` and earlier terms (0 resumes).
    pub fn resign_term(&self, term: u64) {
        self.lease().resigned = term;
    }

    /// Whether this peer may say it leads in `term` at `now`.
    pub fn lease_valid(&self, term: u64, now: Instant) -> bool {
        self.lease_remaining(term, now).is_some()
    }

    /// How much longer the lease of `term` holds at `now`, if it holds.
    pub fn lease_remaining(&self, term: u64, now: Instant) -> Option<Duration> {
        let l = self.lease();
        if l.relinquished || term <= l.resigned || (l.term != term && !self.others.is_empty()) {
            return None;
        }
        let since = self.quorum_ack(&l, now)?;
        self.timing
            .leader_lease()
            .checked_sub(now.saturating_duration_since(since))
            .filter(|d| !d.is_zero())
    }

    /// Age of the newest heartbeat a quorum acknowledged, for metrics.
    pub fn quorum_ack_age(&self, now: Instant) -> Option<Duration> {
        let l = self.lease();
        self.quorum_ack(&l, now)
            .map(|t| now.saturating_duration_since(t))
    }

    /// The send time of the newest heartbeat acknowledged by a quorum (this peer included).
    fn quorum_ack(&self, l: &LeaseState, now: Instant) -> Option<Instant> {
        let voters = self.others.len() + 1;
        let needed = voters / 2; // acks needed from others: majority minus this peer
        if needed == 0 {
            return Some(now);
        }
        let mut sent: Vec<Instant> = l
            .acks
            .values()
            .copied()
            .filter(|t| l.revoked_at.is_none_or(|r| *t > r))
            .collect();
        if sent.len() < needed {
            return None;
        }
        sent.sort_unstable_by(|a, b| b.cmp(a));
        Some(sent[needed - 1])
    }

    /// This peer accepted an append-entries (or snapshot) from `leader` in `term`, received at
    /// `at`.
    pub fn on_heard(&self, leader: NodeId, term: u64, at: Instant) {
        let mut h = self.heard_mut();
        if term < h.seen_term {
            return;
        }
        h.seen_term = term;
        match h.last {
            Some(old) if old.term == term && old.at > at => {}
            _ => h.last = Some(Heard { leader, term, at }),
        }
    }

    /// This peer accepted an append-entries (leased or not) that arrived at `at`.
    pub fn on_append(&self, at: Instant) {
        let mut last = self.last_append.lock().unwrap_or_else(|p| p.into_inner());
        *last = (*last).max(at);
    }

    /// When this peer last accepted an append-entries (or started).
    pub fn last_append(&self) -> Instant {
        *self.last_append.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This peer's vote moved to `term` (it voted, or saw a newer term): forget older leaders.
    pub fn on_vote_moved(&self, term: u64) {
        let mut h = self.heard_mut();
        h.seen_term = h.seen_term.max(term);
        if h.last.is_some_and(|old| old.term < term) {
            h.last = None;
        }
    }

    /// Forget the leader heard from (it is handing leadership over to this peer).
    pub fn forget_leader(&self) {
        self.heard_mut().last = None;
    }

    /// The leader this follower heard from recently enough to name it, with the time left.
    pub fn fresh_leader(&self, now: Instant) -> Option<(Heard, Duration)> {
        let h = self.heard_mut().last?;
        let left = self
            .timing
            .follower_window()
            .checked_sub(now.saturating_duration_since(h.at))?;
        (!left.is_zero()).then_some((h, left))
    }

    /// How long after it was sent an acknowledged heartbeat still holds the lease.
    pub fn leader_lease(&self) -> Duration {
        self.timing.leader_lease()
    }

    /// This peer's Raft id.
    pub fn me(&self) -> NodeId {
        self.me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            heartbeat: Duration::from_millis(10),
            election_min: Duration::from_millis(40),
            election_max: Duration::from_millis(80),
        }
    }

    #[test]
    fn needs_a_quorum_of_fresh_acks() {
        let l = Leadership::new(1, [1, 2, 3, 4, 5], timing());
        let t0 = Instant::now();
        assert!(!l.lease_valid(7, t0));
        l.on_ack(2, 7, t0);
        assert!(!l.lease_valid(7, t0), "2 of 5 is no quorum");
        l.on_ack(3, 7, t0);
        assert!(l.lease_valid(7, t0 + Duration::from_millis(10)));
        assert!(!l.lease_valid(6, t0), "another term is not leased");
        // 60 ms = 3/4 of 80 ms: the lease ends there, counted from the send time.
        assert!(!l.lease_valid(7, t0 + Duration::from_millis(61)));
    }

    #[test]
    fn the_quorum_instant_is_the_majoritys_oldest_ack() {
        let l = Leadership::new(1, [1, 2, 3], timing());
        let t0 = Instant::now();
        l.on_ack(2, 3, t0);
        l.on_ack(3, 3, t0 + Duration::from_millis(50));
        // One other ack is enough with 3 voters: the newest counts.
        assert!(l.lease_valid(3, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn a_newer_term_revokes_older_acks() {
        let l = Leadership::new(1, [1, 2, 3], timing());
        let t0 = Instant::now();
        l.on_ack(2, 4, t0);
        assert!(l.lease_valid(4, t0));
        l.on_newer_term(5);
        assert!(!l.lease_valid(4, Instant::now()));
        let later = Instant::now() + Duration::from_millis(1);
        l.on_ack(2, 4, later);
        assert!(
            l.lease_valid(4, later),
            "a heartbeat sent after the revocation counts again"
        );
        l.relinquish();
        assert!(!l.lease_valid(4, later));
    }

    #[test]
    fn followers_forget_stale_leaders() {
        let l = Leadership::new(1, [1, 2, 3], timing());
        let t0 = Instant::now();
        l.on_heard(2, 9, t0);
        assert_eq!(l.fresh_leader(t0).map(|(h, _)| h.leader), Some(2));
        assert!(l.fresh_leader(t0 + Duration::from_millis(61)).is_none());
        l.on_vote_moved(10);
        assert!(l.fresh_leader(t0).is_none());
        l.on_heard(3, 8, t0);
        assert!(
            l.fresh_leader(t0).is_none(),
            "an older term than seen before is ignored"
        );
    }

    #[test]
    fn single_voter_always_has_its_quorum() {
        let l = Leadership::new(1, [1], timing());
        assert!(l.lease_valid(1, Instant::now()));
    }
}
