//! The leader lease and the follower's freshness window: the state, fed by the network
//! adapter (acknowledgements, newer terms) and the peer service (heartbeats heard, votes), and
//! the checks made at the moment an answer is given ([`Leadership::lease_remaining`],
//! [`Leadership::fresh_leader`]). Why these rules make "never two leaders" hold is in
//! `docs/DESIGN.md`, "Who may say I am the leader".

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::app_health::AppHealth;
use crate::config::Timing;
use crate::raft::{NodeId, RaftMetrics};

/// The lease and follower state of one peer, fed by the peer client and the peer handlers.
#[derive(Debug)]
pub struct Leadership {
    me: NodeId,
    /// The voters of the first cluster, used until Raft publishes its membership.
    initial: Vec<BTreeSet<NodeId>>,
    /// openraft's metrics, once it runs: the membership in force is read from them at each
    /// check, so that a quorum is always one of every configuration in force (both halves of
    /// a joint change), and learners never count.
    raft: OnceLock<watch::Receiver<RaftMetrics>>,
    timing: Timing,
    lease: Mutex<LeaseState>,
    heard: Mutex<HeardState>,
    /// Held (shared) by every write this peer appends as leader (claims, reports); taken
    /// alone by a shutting-down leader before it picks its successor, so that no write
    /// started before the shutdown lands after the successor caught up ([`Self::quiesce`]).
    appends: tokio::sync::RwLock<()>,
    /// When this peer last accepted an append-entries of any leader (its start before that):
    /// openraft's own lease on that leader runs from there.
    last_append: Mutex<Instant>,
    /// The term whose leadership check-quorum silenced (0: none). openraft keeps re-sending
    /// entries a follower never acknowledged even with heartbeats off, and every such request
    /// renews the followers' own lease on this leader; so while silenced, the network adapter
    /// lets only one through per peer every [`Timing::silenced_probe_every`].
    silenced: AtomicU64,
    /// This peer's application health (`--app-health`).
    app: AppHealth,
    /// Wakes the leader watcher ([`crate::node`]'s push source) on the events it asked for
    /// ([`Leadership::watch_for`]), so that it needs no polling tick.
    poke: Notify,
    /// The events the watcher wants to hear of: [`WANT_GAIN`], [`WANT_LEADING`], [`WANT_NAMED`].
    interest: AtomicU8,
    /// Counts renewals (acknowledgements that moved the lease's start, a heartbeat heard), so
    /// that the loops that sleep until the lease or the freshness window would run out move
    /// their deadline as it moves, within the same wake-up, instead of waking at every stale
    /// deadline ([`Self::renewals`]).
    renewed: watch::Sender<u64>,
    /// A witness: it may lead only as a caretaker, and then never claims
    /// ([`Self::claim_remaining`]).
    witness: bool,
}

/// The watcher names nobody: wake it when an acknowledgement or a heartbeat arrives.
pub const WANT_GAIN: u8 = 1;
/// The watcher says this peer leads: wake it when the lease is revoked or given up.
pub const WANT_LEADING: u8 = 2;
/// The watcher names another leader: wake it when this peer forgets it.
pub const WANT_NAMED: u8 = 4;

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
    /// The quorum's acknowledgement time (the lease's start) when renewals were last
    /// announced ([`Leadership::renewals`]).
    announced: Option<Instant>,
}

/// A renewal is announced only when it moves the lease's start by at least this much: the
/// acknowledgements of one heartbeat round, sent microseconds apart, make one announcement,
/// not one per follower.
const ANNOUNCE_STEP: Duration = Duration::from_millis(1);

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
            initial: vec![voters.into_iter().collect()],
            raft: OnceLock::new(),
            timing,
            lease: Mutex::new(LeaseState::default()),
            heard: Mutex::new(HeardState::default()),
            appends: tokio::sync::RwLock::new(()),
            last_append: Mutex::new(Instant::now()),
            silenced: AtomicU64::new(0),
            app: AppHealth::default(),
            poke: Notify::new(),
            interest: AtomicU8::new(0),
            renewed: watch::channel(0).0,
            witness: false,
        }
    }

    /// A witness's state: its leadership, when it leads as a caretaker, is never claimed.
    pub fn witness(mut self) -> Self {
        self.witness = true;
        self
    }

    /// The events the leader watcher wants to be woken for from now on.
    pub fn watch_for(&self, interest: u8) {
        self.interest.store(interest, Ordering::SeqCst);
    }

    /// Completes at the next event the watcher asked for (or at once if one came since the
    /// last call: [`Notify`] keeps one permit).
    pub fn changed(&self) -> &Notify {
        &self.poke
    }

    /// Changes at every renewal of the lease or of the freshness window: a loop that sleeps
    /// until either would run out waits on this too and moves its deadline.
    pub fn renewals(&self) -> watch::Receiver<u64> {
        self.renewed.subscribe()
    }

    fn renew(&self) {
        if self.renewed.receiver_count() > 0 {
            self.renewed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn wake(&self, want: u8) {
        if self.interest.load(Ordering::SeqCst) & want != 0 {
            self.poke.notify_one();
        }
    }

    /// This peer's application health.
    pub fn app(&self) -> &AppHealth {
        &self.app
    }

    /// Check-quorum silenced this peer's leadership of `term` (`None`: it speaks again).
    pub fn silence(&self, term: Option<u64>) {
        self.silenced.store(term.unwrap_or(0), Ordering::SeqCst);
    }

    /// Whether check-quorum silenced this peer's leadership of `term`.
    pub fn silenced(&self, term: u64) -> bool {
        term != 0 && self.silenced.load(Ordering::SeqCst) == term
    }

    /// How often a silenced leader still sends one append-entries to each peer.
    pub fn silenced_probe_every(&self) -> Duration {
        self.timing.silenced_probe_every()
    }

    /// From now on, the membership in force is the one Raft's metrics show.
    pub fn attach(&self, metrics: watch::Receiver<RaftMetrics>) {
        let _ = self.raft.set(metrics);
    }

    /// Calls `f` with the voter configurations in force.
    fn with_configs<T>(&self, f: impl FnOnce(&[BTreeSet<NodeId>]) -> T) -> T {
        match self.raft.get() {
            Some(rx) => f(rx
                .borrow()
                .membership_config
                .membership()
                .get_joint_config()),
            None => f(&self.initial),
        }
    }

    /// Whether this peer is a member (voter or learner) of the membership in force; true
    /// before Raft runs.
    pub fn is_member(&self) -> bool {
        match self.raft.get() {
            Some(rx) => rx
                .borrow()
                .membership_config
                .membership()
                .get_node(&self.me)
                .is_some(),
            None => true,
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
    /// Acknowledgements of learners are kept too, and count once they vote.
    pub fn on_ack(&self, peer: NodeId, term: u64, sent: Instant) {
        if peer == self.me {
            return;
        }
        let moved = self.with_configs(|configs| {
            let mut l = self.lease();
            if term > l.term {
                l.term = term;
                l.acks.clear();
                l.since = None;
            }
            if term != l.term {
                return false;
            }
            l.since = Some(l.since.map_or(sent, |s| s.min(sent)));
            let slot = l.acks.entry(peer).or_insert(sent);
            if sent > *slot {
                *slot = sent;
            }
            let start = Self::quorum_ack(self.me, configs, &l, Instant::now());
            let moved = match (start, l.announced) {
                (Some(start), Some(before)) => start >= before + ANNOUNCE_STEP,
                (start, _) => start.is_some(),
            };
            if moved {
                l.announced = start;
            }
            moved
        });
        self.wake(WANT_GAIN);
        if moved {
            self.renew();
        }
    }

    /// An incoming request carries `term`: if it is newer than this peer's leadership, stop
    /// claiming now, before openraft handles the request.
    pub fn on_newer_term(&self, term: u64) {
        let mut l = self.lease();
        if term > l.term {
            l.revoked_at = Some(Instant::now());
            drop(l);
            self.wake(WANT_LEADING);
        }
    }

    /// A follower answered with a higher vote: stop claiming now.
    pub fn revoke(&self) {
        self.lease().revoked_at = Some(Instant::now());
        self.wake(WANT_LEADING);
    }

    /// The peer is shutting down: never claim leadership again.
    pub fn relinquish(&self) {
        self.lease().relinquished = true;
        self.wake(WANT_LEADING);
    }

    /// Whether the peer is shutting down.
    pub fn relinquished(&self) -> bool {
        self.lease().relinquished
    }

    /// Leave to append a write as leader, held until it is applied; `None` once the peer is
    /// shutting down.
    pub async fn begin_append(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        let guard = self.appends.read().await;
        (!self.relinquished()).then_some(guard)
    }

    /// After [`Self::relinquish`]: waits (at most `within`) until every write begun before has
    /// ended, so that the log stops growing before a successor is picked: a successor that
    /// lacks an entry the others hold can win no election.
    pub async fn quiesce(&self, within: Duration) {
        if tokio::time::timeout(within, self.appends.write())
            .await
            .is_err()
        {
            tracing::debug!("writes still in flight after {within:?}: handing over anyway");
        }
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
        self.wake(WANT_LEADING);
    }

    /// Whether this peer's lease of `term` holds at `now` (a quorum acknowledged it recently
    /// enough). Whether it may say it leads is [`Self::may_claim`].
    pub fn lease_valid(&self, term: u64, now: Instant) -> bool {
        self.lease_remaining(term, now).is_some()
    }

    /// Whether this peer may act as the leader of `term` at `now`: say it leads, grant claims,
    /// fire the schedule, change the membership, mark its heartbeats as leased (which lets
    /// followers name it). As [`Self::lease_valid`], but never on a witness: a witness leads
    /// only as a caretaker that hands over at once (docs/DESIGN.md, "Witness").
    pub fn may_claim(&self, term: u64, now: Instant) -> bool {
        self.claim_remaining(term, now).is_some()
    }

    /// How much longer this peer may act as the leader of `term` ([`Self::may_claim`]).
    pub fn claim_remaining(&self, term: u64, now: Instant) -> Option<Duration> {
        if self.witness {
            return None;
        }
        self.lease_remaining(term, now)
    }

    /// How much longer the lease of `term` holds at `now`, if it holds. The lease alone
    /// (check-quorum, pre-vote answers); what a leader may do with it is
    /// [`Self::claim_remaining`].
    pub fn lease_remaining(&self, term: u64, now: Instant) -> Option<Duration> {
        self.with_configs(|configs| self.lease_remaining_in(configs, term, now))
    }

    fn lease_remaining_in(
        &self,
        configs: &[BTreeSet<NodeId>],
        term: u64,
        now: Instant,
    ) -> Option<Duration> {
        let l = self.lease();
        let alone = configs.iter().all(|c| c.len() == 1 && c.contains(&self.me));
        if l.relinquished || term <= l.resigned || (l.term != term && !alone) {
            return None;
        }
        let since = Self::quorum_ack(self.me, configs, &l, now)?;
        self.timing
            .leader_lease()
            .checked_sub(now.saturating_duration_since(since))
            .filter(|d| !d.is_zero())
    }

    /// Age of the newest heartbeat a quorum acknowledged, for metrics.
    pub fn quorum_ack_age(&self, now: Instant) -> Option<Duration> {
        self.with_configs(|configs| {
            let l = self.lease();
            Self::quorum_ack(self.me, configs, &l, now).map(|t| now.saturating_duration_since(t))
        })
    }

    /// The send time of the newest heartbeat acknowledged by a majority of every voter
    /// configuration in `configs` (this peer counting where it votes). None when this peer
    /// votes in none of them: a peer removed from the membership never claims.
    fn quorum_ack(
        me: NodeId,
        configs: &[BTreeSet<NodeId>],
        l: &LeaseState,
        now: Instant,
    ) -> Option<Instant> {
        if !configs.iter().any(|c| c.contains(&me)) {
            return None;
        }
        let mut oldest = now;
        for config in configs {
            let mine = usize::from(config.contains(&me));
            let needed = (config.len() / 2 + 1).saturating_sub(mine);
            if needed == 0 {
                continue;
            }
            let mut sent: Vec<Instant> = config
                .iter()
                .filter(|id| **id != me)
                .filter_map(|id| l.acks.get(id).copied())
                .filter(|t| l.revoked_at.is_none_or(|r| *t > r))
                .collect();
            if sent.len() < needed {
                return None;
            }
            sent.sort_unstable_by(|a, b| b.cmp(a));
            oldest = oldest.min(sent[needed - 1]);
        }
        Some(oldest)
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
        drop(h);
        self.wake(WANT_GAIN);
        self.renew();
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
            drop(h);
            self.wake(WANT_NAMED);
        }
    }

    /// Forget the leader heard from (it is handing leadership over to this peer).
    pub fn forget_leader(&self) {
        self.heard_mut().last = None;
        self.wake(WANT_NAMED);
    }

    /// The leader this follower heard from recently enough to name it, with the time left.
    /// A peer that is no member of the membership in force names nobody: it was removed.
    pub fn fresh_leader(&self, now: Instant) -> Option<(Heard, Duration)> {
        let h = self.heard_mut().last?;
        if !self.is_member() {
            return None;
        }
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

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_joint_lease_needs_a_quorum_of_both_halves() {
        let l = Leadership::new(1, [1, 2, 3], timing());
        let t0 = Instant::now();
        let joint = [set(&[1, 2, 3]), set(&[1, 4, 5])];
        l.on_ack(2, 7, t0);
        l.on_ack(3, 7, t0);
        assert!(
            l.lease_remaining_in(&joint, 7, t0).is_none(),
            "new half has only this peer"
        );
        l.on_ack(4, 7, t0);
        assert!(l.lease_remaining_in(&joint, 7, t0).is_some());
        assert!(
            l.lease_remaining_in(&[set(&[2, 3, 4])], 7, t0).is_none(),
            "a peer removed from the voters never claims"
        );
    }

    #[test]
    fn learners_acks_do_not_count() {
        let l = Leadership::new(1, [1, 2, 3], timing());
        let t0 = Instant::now();
        l.on_ack(9, 7, t0);
        assert!(l.lease_remaining_in(&[set(&[1, 2, 3])], 7, t0).is_none());
        assert!(
            l.lease_remaining_in(&[set(&[1, 9, 3])], 7, t0).is_some(),
            "once it votes, its acknowledgement counts"
        );
    }

    #[test]
    fn single_voter_always_has_its_quorum() {
        let l = Leadership::new(1, [1], timing());
        assert!(l.lease_valid(1, Instant::now()));
    }
}
