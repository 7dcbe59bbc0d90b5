//! What a run records: every answer of every peer with the times its request was sent and its
//! answer came back, the terms peers reported in their metrics, the faults injected (with the
//! peers whose messages each could hold back), and how every peer stopped with SIGTERM ended.
//!
//! Times are microseconds since the start of the run, from one monotonic clock in the test
//! process. An answer is valid over the whole interval [sent, received]: the peer computed it
//! at some unknown moment inside it.

use std::fmt;
use std::time::Instant;

pub use crate::roster::{Enrolment, Life, LifeEvent, MembersSample, Role};

/// Microseconds since the run started.
pub type Micros = u64;

/// The run's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Micros {
        self.at(Instant::now())
    }

    pub fn at(&self, t: Instant) -> Micros {
        t.saturating_duration_since(self.start).as_micros() as Micros
    }
}

/// The name in an answer that matched no peer of the cluster.
pub const UNKNOWN_PEER: usize = usize::MAX;

/// One answer of `GET /v1/leader`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The peer asked (index into the cluster).
    pub peer: usize,
    pub sent: Micros,
    pub received: Micros,
    /// The peer it named as leader (`None` for `""`, [`UNKNOWN_PEER`] for a stranger).
    pub leader: Option<usize>,
    pub term: u64,
    pub is_leader: bool,
}

impl Answer {
    pub fn is_claim(&self) -> bool {
        self.is_leader
    }
}

/// The current term a peer reported on `/metrics` (`raft_elector_term`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermSample {
    pub peer: usize,
    pub sent: Micros,
    pub received: Micros,
    pub term: u64,
}

/// A request to `GET /v1/leader` that got no answer (refused, reset, timed out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub peer: usize,
    pub sent: Micros,
    pub received: Micros,
}

/// What the nemesis did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// kill -9 of the leader, restarted later with its data.
    KillLeader,
    /// kill -9 of a random peer, restarted later with its data.
    KillRandom,
    /// SIGSTOP of the leader, SIGCONT 0.5-5 s later.
    PauseLeader,
    /// The leader cut off from every other peer.
    IsolateLeader,
    /// A random split into a majority and a minority (2/1, 3/2).
    Split,
    /// Two sides cut from each other, one peer connected to both.
    Bridge,
    /// A peer stopped with SIGTERM (hand-off, leave) and started again with its data at once.
    Restart,
    /// Every peer killed (or stopped), then all started again.
    RestartAll,
    /// Every packet to and from one peer delayed.
    SlowPeer,
    /// A spare peer started (it joins), stopped with SIGTERM later (it leaves).
    Join,
    /// A member stopped with SIGTERM (it leaves), started again later (it joins again).
    Leave,
    /// A member stopped with SIGTERM while it (or the leader) is cut off from the others.
    LeaveCutOff,
    /// kill -9 of the leader right after a spare was started to join.
    KillInJoin,
    /// kill -9 of the leader right after a member was sent SIGTERM to leave.
    KillInLeave,
    /// Scaled as a StatefulSet: every spare started, stopped at once, every member but one
    /// stopped at once, started again (`tests/nemesis/scale.rs`).
    Scale,
}

impl FaultKind {
    pub const ALL: [FaultKind; 15] = [
        FaultKind::KillLeader,
        FaultKind::KillRandom,
        FaultKind::PauseLeader,
        FaultKind::IsolateLeader,
        FaultKind::Split,
        FaultKind::Bridge,
        FaultKind::Restart,
        FaultKind::RestartAll,
        FaultKind::SlowPeer,
        FaultKind::Join,
        FaultKind::Leave,
        FaultKind::LeaveCutOff,
        FaultKind::KillInJoin,
        FaultKind::KillInLeave,
        FaultKind::Scale,
    ];

    /// Whether it changes the membership on purpose (and needs spare peers).
    pub fn membership(self) -> bool {
        matches!(
            self,
            FaultKind::Join
                | FaultKind::Leave
                | FaultKind::LeaveCutOff
                | FaultKind::KillInJoin
                | FaultKind::KillInLeave
                | FaultKind::Scale
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillLeader => "kill-9 leader",
            FaultKind::KillRandom => "kill-9 random",
            FaultKind::PauseLeader => "pause leader",
            FaultKind::IsolateLeader => "isolate leader",
            FaultKind::Split => "split",
            FaultKind::Bridge => "bridge",
            FaultKind::Restart => "restart",
            FaultKind::RestartAll => "restart all",
            FaultKind::SlowPeer => "slow peer",
            FaultKind::Join => "join",
            FaultKind::Leave => "leave",
            FaultKind::LeaveCutOff => "leave cut off",
            FaultKind::KillInJoin => "kill-9 in join",
            FaultKind::KillInLeave => "kill-9 in leave",
            FaultKind::Scale => "scale",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a fault may hold messages between peers back, so that one sent before or during it
/// arrives late (what the follower rule of the checker allows for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The peer was stopped (SIGSTOP, the cgroup freezer): requests sent to it, and requests it
    /// was about to send, move on only when it resumes.
    Paused(usize),
    /// Every message to and from the peer took up to `delay` longer.
    Slowed { peer: usize, delay: Micros },
    /// The links between the two sides were cut: bytes already on their way (held by a fault
    /// proxy, or retransmitted by TCP after an iptables DROP) may arrive when the cut heals.
    Cut(Vec<usize>, Vec<usize>),
}

impl Held {
    /// Whether it may hold back what `leader` sends to `follower`; with the extra delay of a
    /// slow link (`None`: held until the fault was repaired).
    pub fn holds(&self, leader: usize, follower: usize) -> Option<Option<Micros>> {
        let sides = |a: &[usize], b: &[usize]| a.contains(&leader) && b.contains(&follower);
        match self {
            Held::Paused(p) if *p == leader || *p == follower => Some(None),
            Held::Slowed { peer, delay } if *peer == leader || *peer == follower => {
                Some(Some(*delay))
            }
            Held::Cut(a, b) if sides(a, b) || sides(b, a) => Some(None),
            _ => None,
        }
    }
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// What exactly was done, e.g. "peer-1 isolated (drop)".
    pub detail: String,
    pub start: Micros,
    /// When the fault was repaired (the last peer restarted, the network healed, SIGCONT).
    pub healed: Micros,
    /// Whether a majority of peers stayed up and connected throughout, so that a leader is
    /// expected even before the fault heals.
    pub majority_healthy: bool,
    /// The messages it may have held back.
    pub held: Vec<Held>,
}

impl Fault {
    pub fn describe(&self) -> String {
        format!(
            "FAULT {} ({}) from {} to {}",
            self.kind,
            self.detail,
            ms(self.start),
            ms(self.healed)
        )
    }
}

/// A peer the nemesis stopped with SIGTERM, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// When the SIGTERM was sent.
    pub at: Micros,
    /// Why: the fault that stopped it, or the end of the run.
    pub why: String,
    pub exit: testkit::Exit,
}

/// One claim of a job slot ([`crate::ledger`]) and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimSample {
    pub peer: usize,
    pub sent: Micros,
    pub received: Micros,
    pub slot: String,
    pub status: u16,
    /// The holder and token a 201, 200 or 409 named.
    pub holder: Option<usize>,
    pub token: Option<u64>,
}

/// Everything a run recorded.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub peers: Vec<String>,
    pub answers: Vec<Answer>,
    pub terms: Vec<TermSample>,
    pub faults: Vec<Fault>,
    /// Requests that got no answer (refused, timed out, unreadable).
    pub failures: Vec<Failure>,
    /// Every peer stopped with SIGTERM (restarts and the end of the run).
    pub stops: Vec<Stop>,
    /// Every `/v1/members` answer.
    pub members: Vec<MembersSample>,
    /// Every answer to a claim of a job slot.
    pub claims: Vec<ClaimSample>,
    /// The schedule's runs and ledger, when the peers ran one ([`crate::schedule`]).
    pub schedule: Option<crate::schedule::ScheduleRecord>,
    /// Every start and end of a peer process, in order.
    pub lives: Vec<LifeEvent>,
    /// Peers joining and leaving on purpose, in order.
    pub enrolments: Vec<Enrolment>,
    /// From when the membership must settle: after the last fault (`None`: not checked).
    pub settle_from: Option<Micros>,
    /// Ends of the steps of scripted changes (scale up, scale down): from each, the membership
    /// must settle on the roster of that moment, as after the last fault.
    pub steps: Vec<Micros>,
    /// Peers started with `--witness`: they must never lead.
    pub witnesses: Vec<usize>,
    /// When the run ended.
    pub end: Micros,
}

impl History {
    /// The name of a peer index as found in an answer.
    pub fn name(&self, peer: Option<usize>) -> String {
        match peer {
            None => "\"\"".to_string(),
            Some(UNKNOWN_PEER) => "<unknown peer>".to_string(),
            Some(i) => self
                .peers
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("#{i}")),
        }
    }

    /// One claim's answer as a readable line.
    pub fn show_claim(&self, c: &ClaimSample) -> String {
        format!(
            "{} claim of slot {} [{} .. {}] status={} holder={} token={}",
            self.name(Some(c.peer)),
            c.slot,
            ms(c.sent),
            ms(c.received),
            c.status,
            self.name(c.holder),
            c.token.map_or("-".into(), |t| t.to_string())
        )
    }

    /// One answer as a readable line.
    pub fn show(&self, a: &Answer) -> String {
        format!(
            "{} answered [{} .. {}] leader={} term={} is_leader={}",
            self.name(Some(a.peer)),
            ms(a.sent),
            ms(a.received),
            self.name(a.leader),
            a.term,
            a.is_leader
        )
    }

    /// The whole history as text, one event per line in order of sending.
    pub fn dump(&self) -> String {
        let mut lines: Vec<(Micros, String)> = self
            .answers
            .iter()
            .map(|a| (a.sent, self.show(a)))
            .collect();
        let span = |peer: usize, what: String, sent: Micros, received: Micros| {
            let name = self.name(Some(peer));
            (
                sent,
                format!("{name} {what} [{} .. {}]", ms(sent), ms(received)),
            )
        };
        lines.extend(self.terms.iter().map(|t| {
            let what = format!("metrics term={}", t.term);
            span(t.peer, what, t.sent, t.received)
        }));
        lines.extend(
            self.failures
                .iter()
                .map(|f| span(f.peer, "no answer".into(), f.sent, f.received)),
        );
        lines.extend(self.members.iter().map(|m| (m.sent, self.show_members(m))));
        lines.extend(self.lives.iter().map(|l| {
            let what = format!("{:?} {}", l.what, self.name(Some(l.peer)));
            (l.at, format!("PROCESS {what} at {}", ms(l.at)))
        }));
        lines.extend(self.enrolments.iter().map(|e| {
            let how = if e.member { "joins" } else { "leaves" };
            let name = self.name(Some(e.peer));
            (e.at, format!("MEMBERSHIP {name} {how} at {}", ms(e.at)))
        }));
        lines.extend(self.faults.iter().map(|f| (f.start, f.describe())));
        lines.extend(self.stops.iter().map(|s| {
            let name = self.name(Some(s.exit.peer));
            let text = format!(
                "SIGTERM to {name} ({}) at {}: {}",
                s.why,
                ms(s.at),
                s.exit.how
            );
            (s.at, text)
        }));
        lines.sort_by_key(|(t, _)| *t);
        let mut out = String::new();
        for (_, l) in lines {
            out += &l;
            out += "\n";
        }
        out
    }

    /// The answers of `peer` received in `[from, to]`, for the context of a violation.
    pub fn excerpt(&self, from: Micros, to: Micros) -> Vec<String> {
        let mut lines: Vec<&Answer> = self
            .answers
            .iter()
            .filter(|a| a.received >= from && a.sent <= to)
            .collect();
        lines.sort_by_key(|a| (a.sent, a.peer));
        let faults = self
            .faults
            .iter()
            .filter(|f| f.start <= to && f.healed >= from)
            .map(Fault::describe);
        let mut members: Vec<&MembersSample> = self
            .members
            .iter()
            .filter(|m| m.received >= from && m.sent <= to)
            .collect();
        members.sort_by_key(|m| (m.sent, m.peer));
        let mut timed: Vec<(Micros, String)> =
            lines.iter().map(|a| (a.sent, self.show(a))).collect();
        timed.extend(members.iter().map(|m| (m.sent, self.show_members(m))));
        timed.sort_by_key(|(t, _)| *t);
        faults.chain(timed.into_iter().map(|(_, l)| l)).collect()
    }
}

/// Microseconds as "12.345s" (run time).
pub fn ms(t: Micros) -> String {
    format!("{}.{:06}s", t / 1_000_000, t % 1_000_000)
}
