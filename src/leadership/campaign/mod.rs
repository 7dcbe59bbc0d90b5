//! When this peer may campaign, and when as leader it goes quiet: pre-vote gating with the fast
//! campaign, the split-vote hold and check-quorum, as one pure step (what the loop observed →
//! what to do). The step has no clock, no randomness and no I/O of its own: the caller passes
//! the time and a random fraction, runs the pre-vote round it asks for, switches openraft's
//! elections and heartbeats, campaigns, logs and sleeps. Why each controller exists and what it
//! prevents: docs/DESIGN.md, "Pre-vote" and "Check-quorum".

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::config::Timing;
use crate::raft::NodeId;

/// How often the step wants to run while no leader is fresh and this peer does not lead, so
/// that a campaign starts close to its chosen moment. (Following a fresh leader, it sleeps
/// until that leader would go stale; leading, until its lease would lapse, and unleased, half
/// the maximum election timeout.)
const POLL: Duration = Duration::from_millis(5);

/// The time between two ranks' campaigns ([`campaign_rank`]): long enough for the first
/// one's vote requests to reach the others before the next one campaigns (a round trip
/// within a cluster takes about a millisecond), short enough that a rank that cannot campaign
/// (down, or a witness) costs little. 20 ms at the default timings.
fn campaign_slot(t: Timing) -> Duration {
    t.election_min / 5
}

/// A witness campaigns (as a caretaker) only after no leader's append-entries reached it for
/// this many maximum election timeouts: the application peers had about two elections' time
/// to win one, so none can (its log is behind the witness's).
const CARETAKER_AFTER: u32 = 3;

/// openraft's server state, as the controllers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftState {
    Leader,
    Candidate,
    Follower,
    Learner,
    Shutdown,
}

/// What the loop observed, all at `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    pub now: Instant,
    pub state: RaftState,
    pub term: u64,
    /// How much longer this peer's leader lease holds for `term` at `now`, if it holds.
    pub lease_left: Option<Duration>,
    /// How long the leader this peer last heard from is still fresh, if it is.
    pub fresh_leader: Option<Duration>,
    /// When this peer last accepted an append-entries of any leader (or started).
    pub last_append: Instant,
    /// The peer is shutting down: elections and heartbeats belong to the hand-off now.
    pub relinquished: bool,
    /// The peer may lead: false while its application is unhealthy (`--app-health`).
    pub may_lead: bool,
    /// The outcome of the pre-vote round the previous step asked for; `None` otherwise.
    pub pre_vote: Option<PreVote>,
    /// This peer's place in the campaign order of `term` ([`campaign_rank`]).
    pub rank: u32,
    /// A random fraction in [0, 1), drawn afresh for every step.
    pub random: f64,
}

/// This peer's place (0 first) in the order in which the followers of a lost leader campaign
/// in `term`: the voters but that leader, by id, rotated by the term so that a peer that
/// cannot win (its log behind, its links cut) is not first again in the next term. Every
/// follower that sees the same voters, leader and term draws a different place, so their
/// campaigns do not collide (a split vote costs a whole election timeout). A peer that is
/// no voter, or the lost leader itself, comes last.
pub fn campaign_rank(
    voters: &BTreeSet<NodeId>,
    me: NodeId,
    lost: Option<NodeId>,
    term: u64,
) -> u32 {
    let order: Vec<NodeId> = voters
        .iter()
        .copied()
        .filter(|id| Some(*id) != lost)
        .collect();
    let n = order.len() as u64;
    match order.iter().position(|id| *id == me) {
        Some(at) => ((at as u64 + n - term % n) % n) as u32,
        None => n as u32,
    }
}

/// The outcome of one pre-vote round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreVote {
    /// A quorum, this peer included, granted it.
    pub granted: bool,
    /// When the round ended: the next one is due a heartbeat interval later.
    pub finished: Instant,
}

/// What to do, in this order: the switches, the log lines, the campaign, then sleep.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actions {
    /// The peer relinquished: end the loop, do nothing else.
    pub stop: bool,
    /// Run a pre-vote round now, then step again with the same inputs, its outcome in
    /// `pre_vote` and the lease, `relinquished` and `last_append` read again. Nothing else
    /// was decided in this step.
    pub pre_vote_round: bool,
    /// Switch the leader's heartbeats on or off.
    pub heartbeats: Option<bool>,
    /// Switch openraft's elections on or off.
    pub elections: Option<bool>,
    /// Campaign now (`trigger().elect()`).
    pub campaign: bool,
    /// What to log, in order.
    pub events: Vec<Event>,
    /// How long to sleep after carrying the actions out.
    pub sleep: Duration,
    /// The sleep is a period, not a deadline: wake on the shared beat
    /// ([`crate::beat`]) with the other periodic loops.
    pub on_beat: bool,
    /// The sleep ends when the lease or the fresh leader's window lapses: a renewal of either
    /// ([`crate::leadership::Leadership::renewals`]) should end it early, to step again.
    pub until_lapse: bool,
}

/// A decision worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Check-quorum silenced this leader of `term`.
    HeartbeatsStopped { term: u64 },
    /// Pre-vote switched openraft's elections (the switch-off at start is not reported).
    ElectionsSwitched { on: bool },
    /// The fast campaign starts.
    Campaigning,
}

/// The state of the three controllers of one peer.
#[derive(Debug, Clone)]
pub struct Controller {
    timing: Timing,
    gate: PreVoteGate,
    hold: SplitVoteHold,
    campaign: FastCampaign,
    quorum: CheckQuorum,
    /// A witness: elections stay off unless it is due as a caretaker.
    witness: bool,
}

/// Pre-vote gating: openraft's elections are on only after a granted round while no leader is
/// fresh, this peer does not lead and no hold is on.
#[derive(Debug, Clone)]
struct PreVoteGate {
    granted: bool,
    next_round: Instant,
    /// What openraft's elections were last switched to; `None` before the first switch.
    elections: Option<bool>,
}

/// The split-vote hold: a peer seen still a candidate in a new term holds its elections off
/// for a random part of `election_max`, once per term.
#[derive(Debug, Clone, Default)]
struct SplitVoteHold {
    until: Option<Instant>,
    term: u64,
}

impl SplitVoteHold {
    fn observe(&mut self, i: &Inputs, election_max: Duration) {
        if i.state == RaftState::Candidate && i.term > self.term {
            self.term = i.term;
            self.until = Some(i.now + election_max.mul_f64(i.random));
        }
    }

    fn holds(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }
}

/// The fast campaign: the moment a ready follower campaigns, its rank's slot after it became
/// ready, fixed once per wait.
#[derive(Debug, Clone, Default)]
struct FastCampaign {
    at: Option<Instant>,
    /// The term the moment was fixed in.
    term: u64,
}

impl FastCampaign {
    /// Whether to campaign now; `ready` says the follower may.
    fn step(&mut self, ready: bool, i: &Inputs, slot: Duration) -> bool {
        if !ready {
            self.at = None;
            return false;
        }
        let at = *self.at.get_or_insert_with(|| {
            self.term = i.term;
            i.now + slot * i.rank
        });
        // A newer term seen while waiting: a peer ranked before this one campaigned and
        // this one voted for it. Its campaign goes on; openraft's own election timer (on
        // since the granted pre-vote) is the fallback if it fails.
        if i.term != self.term {
            return false;
        }
        let now = i.now >= at;
        if now {
            self.at = None;
        }
        now
    }
}

/// Check-quorum: a leader unleased for `2 × election_max` stops its heartbeats.
#[derive(Debug, Clone)]
struct CheckQuorum {
    unleased_since: Option<Instant>,
    heartbeats: bool,
}

impl CheckQuorum {
    /// The heartbeat switch to make, if any.
    fn step(&mut self, i: &Inputs, election_max: Duration) -> Option<bool> {
        if i.state != RaftState::Leader || i.lease_left.is_some() {
            self.unleased_since = None;
        } else {
            self.unleased_since.get_or_insert(i.now);
        }
        let beat = self
            .unleased_since
            .is_none_or(|since| i.now < since + election_max * 2);
        (self.heartbeats != beat).then(|| {
            self.heartbeats = beat;
            beat
        })
    }
}

impl Controller {
    /// Controllers for a peer started at `now`: heartbeats on, elections not switched yet, a
    /// pre-vote round due at once.
    pub fn new(timing: Timing, now: Instant) -> Self {
        Controller {
            timing,
            gate: PreVoteGate {
                granted: false,
                next_round: now,
                elections: None,
            },
            hold: SplitVoteHold::default(),
            campaign: FastCampaign::default(),
            quorum: CheckQuorum {
                unleased_since: None,
                heartbeats: true,
            },
            witness: false,
        }
    }

    /// A witness's controller: it campaigns only as a caretaker, when no leader was heard
    /// from for [`CARETAKER_AFTER`] maximum election timeouts (then through pre-vote as any
    /// peer, which it wins only when its log is the longest).
    pub fn witness(mut self) -> Self {
        self.witness = true;
        self
    }

    /// One decision. A pre-vote outcome passed when no round is due is ignored.
    pub fn step(&mut self, i: &Inputs) -> Actions {
        let t = self.timing;
        if i.relinquished {
            return Actions {
                stop: true,
                ..Actions::default()
            };
        }
        self.hold.observe(i, t.election_max);
        let following = i.state == RaftState::Leader || i.fresh_leader.is_some();
        let held = self.hold.holds(i.now);
        let caretaker_due = i.now >= i.last_append + t.election_max * CARETAKER_AFTER;
        let barred = (self.witness && !caretaker_due) || !i.may_lead;
        if following || held || barred {
            self.gate.granted = false;
        } else if i.now >= self.gate.next_round {
            let Some(round) = i.pre_vote else {
                return Actions {
                    pre_vote_round: true,
                    ..Actions::default()
                };
            };
            self.gate.granted = round.granted;
            self.gate.next_round = round.finished + t.heartbeat;
        }
        // Each wake-up costs a context switch: an idle peer should have few. A follower of a
        // fresh leader has nothing to decide until that leader goes stale, nor a leased leader
        // until its lease lapses (the loop also wakes at each renewal, which moves both
        // deadlines within the renewal's own wake-up); an unleased leader's check-quorum
        // counts in election timeouts (it silences heartbeats between 2 and 2.5 of them after
        // the lease lapsed).
        let (sleep, on_beat, until_lapse) = match (i.state, i.lease_left, i.fresh_leader) {
            (RaftState::Leader, Some(left), _) => (left, false, true),
            (RaftState::Leader, None, _) => (t.heartbeat.max(t.election_max / 2), true, false),
            (_, _, Some(left)) => (left, false, true),
            _ => (POLL, false, false),
        };
        let mut a = Actions {
            sleep,
            on_beat,
            until_lapse,
            ..Actions::default()
        };
        if let Some(beat) = self.quorum.step(i, t.election_max) {
            a.heartbeats = Some(beat);
            if !beat {
                a.events.push(Event::HeartbeatsStopped { term: i.term });
            }
        }
        let want = self.gate.granted && !following && !held && !barred;
        if self.gate.elections != Some(want) {
            if want || self.gate.elections.is_some() {
                a.events.push(Event::ElectionsSwitched { on: want });
            }
            self.gate.elections = Some(want);
            a.elections = Some(want);
        }
        // Every follower last heard the lost leader at about the same moment as this one.
        let leases_out = i.last_append + t.election_max + t.heartbeat / 5;
        let ready = want && i.state == RaftState::Follower && i.now >= leases_out;
        if self.campaign.step(ready, i, campaign_slot(t)) {
            a.campaign = true;
            a.events.push(Event::Campaigning);
        }
        a
    }
}

#[cfg(test)]
mod tests;
