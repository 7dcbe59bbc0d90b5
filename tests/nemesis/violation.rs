//! The broken promises the checker reports, each with a readable account and the history
//! around it.

use crate::history::{ms, Answer, ClaimSample, History, MembersSample, Micros, Stop};

/// A term a peer reported: (sent, received, term, "answered term" or "metrics term").
pub type Reported = (Micros, Micros, u64, &'static str);

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
        higher: Reported,
        lower: Reported,
    },
    FollowerStale {
        /// The first answer of this follower naming this leader for this term too late.
        answer: Answer,
        /// The earliest claim of a newer term.
        replaced_by: Answer,
        /// The latest sending time the product allows for such an answer.
        limit: Micros,
        /// The fault that held heartbeats back and so extended the limit, if one did.
        extended_by: Option<usize>,
        /// How many answers of this follower named this leader for this term too late.
        count: usize,
    },
    WrongLeaderForTerm {
        answer: Answer,
        claimed_by: Answer,
    },
    BadClaim {
        answer: Answer,
    },
    /// A witness claimed leadership, or was named leader.
    WitnessLeads {
        /// The first such answer.
        answer: Answer,
        count: usize,
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
    UncleanExit {
        stop: Stop,
        bound: Micros,
    },
    LeaderNotVoter {
        /// The first such claim of this peer with this membership.
        claim: Answer,
        before: MembersSample,
        after: MembersSample,
        count: usize,
    },
    MembershipBack {
        higher: MembersSample,
        lower: MembersSample,
    },
    TwoMemberships {
        first: MembersSample,
        second: MembersSample,
    },
    /// Rule 13: one slot, two holders or tokens.
    SlotTwice {
        first: ClaimSample,
        second: ClaimSample,
    },
    /// Rule 13: a grant to another peer than the asker, or a refusal naming the asker.
    GrantedWrongly {
        claim: ClaimSample,
    },
    /// Rule 14: one token, two slots.
    TokenReused {
        first: ClaimSample,
        second: ClaimSample,
    },
    /// Rule 15: a later first grant with a token not above an earlier one's.
    TokenBack {
        earlier: ClaimSample,
        later: ClaimSample,
    },
    /// Rule 16: a scheduled slot ran more than once.
    SlotRanTwice {
        slot: String,
        runs: Vec<String>,
    },
    /// Rule 17: a scheduled slot below the newest claimed one neither ran nor was lost.
    SlotNeverRan {
        slot: String,
        outcome: Option<String>,
    },
    NotSettled {
        from: Micros,
        /// When the roster agreed, if ever.
        at: Option<Micros>,
        roster: Vec<usize>,
        /// Every peer's newest `/v1/members` answer then (or at the end).
        latest: Vec<Option<MembersSample>>,
    },
}

/// The stretch of the run covered by two answers.
fn around(a: &Answer, b: &Answer) -> (Micros, Micros) {
    (a.sent.min(b.sent), a.received.max(b.received))
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
            Violation::WitnessLeads { .. } => "witness leads",
            Violation::UnknownName { .. } => "unknown name",
            Violation::NoLeaderAfterHeal { .. } => "no leader after heal",
            Violation::LongOutage { .. } => "long outage",
            Violation::UncleanExit { .. } => "unclean exit after SIGTERM",
            Violation::LeaderNotVoter { .. } => "leader not a voter",
            Violation::MembershipBack { .. } => "membership went back",
            Violation::TwoMemberships { .. } => "two memberships at one index",
            Violation::NotSettled { .. } => "membership not settled",
            Violation::SlotTwice { .. } => "slot granted twice",
            Violation::GrantedWrongly { .. } => "slot granted to another",
            Violation::TokenReused { .. } => "token reused",
            Violation::TokenBack { .. } => "token went back",
            Violation::SlotRanTwice { .. } => "scheduled slot ran twice",
            Violation::SlotNeverRan { .. } => "scheduled slot never ran",
        }
    }

    /// What happened, and the stretch of the run to show around it.
    fn account(&self, h: &History) -> (String, Micros, Micros) {
        match self {
            Violation::StaleLeader {
                newer,
                stale,
                count,
            } => (
                format!(
                    "STALE LEADER: {} claimed term {} in a request sent at {}, after {} had claimed the newer term {} in an answer received at {} ({count} such claims)\n  newer: {}\n  stale: {}\n",
                    h.name(Some(stale.peer)), stale.term, ms(stale.sent), h.name(Some(newer.peer)), newer.term, ms(newer.received), h.show(newer), h.show(stale)
                ),
                newer.sent,
                stale.received,
            ),
            Violation::SameTerm { first, second } => {
                let (from, to) = around(first, second);
                let text = format!("TWO LEADERS IN TERM {}:\n  {}\n  {}\n", first.term, h.show(first), h.show(second));
                (text, from, to)
            }
            Violation::TermDown {
                peer,
                higher: (h0, h1, ht, hs),
                lower: (l0, l1, lt, ls),
            } => (
                format!(
                    "TERM WENT DOWN on {}: {hs} {ht} [{} .. {}], then {ls} {lt} [{} .. {}]\n",
                    h.name(Some(*peer)), ms(*h0), ms(*h1), ms(*l0), ms(*l1)
                ),
                *h0,
                *l1,
            ),
            Violation::FollowerStale {
                answer,
                replaced_by,
                limit,
                extended_by,
                count,
            } => {
                let extended = match extended_by {
                    Some(i) => format!(", extended by fault #{i} that held heartbeats back: {}", h.faults[*i].describe()),
                    None => String::new(),
                };
                let text = format!(
                    "STALE FOLLOWER: {}\n  but {} had claimed the newer term {} in an answer received at {}; such an answer had to be sent by {}{extended} ({count} such answers)\n",
                    h.show(answer), h.name(Some(replaced_by.peer)), replaced_by.term, ms(replaced_by.received), ms(*limit)
                );
                (text, replaced_by.sent, answer.received)
            }
            Violation::WrongLeaderForTerm { answer, claimed_by } => {
                let (from, to) = around(answer, claimed_by);
                let text = format!("WRONG LEADER FOR TERM {}: {}\n  but term {} was claimed by: {}\n", answer.term, h.show(answer), answer.term, h.show(claimed_by));
                (text, from, to)
            }
            Violation::BadClaim { answer } => (
                format!("BAD CLAIM (is_leader but names another): {}\n", h.show(answer)),
                answer.sent,
                answer.received,
            ),
            Violation::UnknownName { answer } => (
                format!("UNKNOWN NAME: {}\n", h.show(answer)),
                answer.sent,
                answer.received,
            ),
            Violation::NoLeaderAfterHeal {
                fault,
                healed,
                agreed,
            } => {
                let agreed = match agreed {
                    Some(t) => format!("only at {} ({} ms later)", ms(*t), (t - healed) / 1000),
                    None => "never".to_string(),
                };
                let text = format!(
                    "NO LEADER AFTER HEAL: fault #{fault} {} healed at {}; all peers agreed {agreed}\n",
                    h.faults[*fault].describe(), ms(*healed)
                );
                (text, *healed, healed + 2_000_000)
            }
            Violation::LongOutage {
                from,
                to,
                counted_from,
            } => (
                format!(
                    "LONG OUTAGE: no leader agreed by a majority from {} to {} ({} ms counted from {}, while a majority was up and connected)\n",
                    ms(*from), ms(*to), (to - counted_from) / 1000, ms(*counted_from)
                ),
                *from,
                (*from + 1_000_000).min(*to),
            ),
            Violation::WitnessLeads { answer, count } => (
                format!(
                    "WITNESS LEADS: {} was started with --witness, which never leads; {count} answers say it does, the first:\n  {}\n",
                    h.name(answer.leader), h.show(answer)
                ),
                answer.sent,
                answer.received,
            ),
            Violation::UncleanExit { stop, bound } => (
                format!(
                    "UNCLEAN EXIT AFTER SIGTERM: {} ({}) was sent SIGTERM at {}: {}; it had to exit with code 0 within {} ms\n",
                    h.name(Some(stop.exit.peer)), stop.why, ms(stop.at), stop.exit.how, bound / 1000
                ),
                stop.at,
                stop.at,
            ),
            Violation::LeaderNotVoter { claim, before, after, count } => (
                format!(
                    "LEADER NOT A VOTER: {} claimed leadership while its own membership, the same before and after the claim, does not list it as a voter ({count} such claims)\n  before: {}\n  claim:  {}\n  after:  {}\n",
                    h.name(Some(claim.peer)), h.show_members(before), h.show(claim), h.show_members(after)
                ),
                before.sent,
                after.received,
            ),
            Violation::MembershipBack { higher, lower } => (
                format!(
                    "MEMBERSHIP WENT BACK on {} (a majority of the higher one's voters had reported it, so it was committed):\n  {}\n  then {}\n",
                    h.name(Some(higher.peer)), h.show_members(higher), h.show_members(lower)
                ),
                higher.sent,
                lower.received,
            ),
            Violation::TwoMemberships { first, second } => (
                format!(
                    "TWO MEMBERSHIPS AT INDEX {}:\n  {}\n  {}\n",
                    first.index.unwrap_or(0), h.show_members(first), h.show_members(second)
                ),
                first.sent.min(second.sent),
                first.received.max(second.received),
            ),
            Violation::SlotTwice { first, second } => (
                format!("SLOT GRANTED TWICE: slot {}\n  {}\n  {}\n", first.slot, h.show_claim(first), h.show_claim(second)),
                first.sent.min(second.sent),
                first.received.max(second.received),
            ),
            Violation::GrantedWrongly { claim } => (
                format!("SLOT GRANTED TO ANOTHER (a grant names another holder than the asker, or a refusal the asker):\n  {}\n", h.show_claim(claim)),
                claim.sent,
                claim.received,
            ),
            Violation::TokenReused { first, second } => (
                format!("TOKEN REUSED for two slots:\n  {}\n  {}\n", h.show_claim(first), h.show_claim(second)),
                first.sent.min(second.sent),
                first.received.max(second.received),
            ),
            Violation::TokenBack { earlier, later } => (
                format!("TOKEN WENT BACK: a grant sent after another was received has a token not above it:\n  {}\n  {}\n", h.show_claim(earlier), h.show_claim(later)),
                earlier.sent,
                later.received,
            ),
            Violation::SlotRanTwice { slot, runs } => (
                format!("SCHEDULED SLOT RAN TWICE: {slot}: {}\n", runs.join(", ")),
                0,
                0,
            ),
            Violation::SlotNeverRan { slot, outcome } => (
                format!("SCHEDULED SLOT NEVER RAN: {slot} (the ledger says {outcome:?}), though a later slot was claimed\n"),
                0,
                0,
            ),
            Violation::NotSettled { from, at, roster, latest } => {
                let when = match at {
                    Some(t) => format!("only at {} ({} ms after)", ms(*t), (t - from) / 1000),
                    None => "never".to_string(),
                };
                let mut text = format!(
                    "MEMBERSHIP NOT SETTLED: from {} every running peer had to list the same members, exactly {{{}}}; that happened {when}; their newest answers:\n",
                    ms(*from),
                    roster.iter().map(|p| h.name(Some(*p))).collect::<Vec<_>>().join(",")
                );
                for p in roster {
                    match latest.get(*p).and_then(|m| m.as_ref()) {
                        Some(m) => text += &format!("  {}\n", h.show_members(m)),
                        None => text += &format!("  {}: no answer\n", h.name(Some(*p))),
                    }
                }
                (text, *from, *from)
            }
        }
    }

    /// A readable account, with the answers around it.
    pub fn explain(&self, h: &History) -> String {
        let (mut out, from, to) = self.account(h);
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
