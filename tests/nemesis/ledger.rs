//! Rules 13-15, the job ledger: every peer's three claimers claim the same slots all run long
//! (one slot per quarter second, each claimed several times through every peer; concurrent
//! claims share log entries), and every answer must tell one story.
//!
//! 13. **Slot granted twice.** Two answers about one slot (a grant, 201 or 200, or a refusal
//!     naming the holder, 409) name different holders or tokens; or a grant goes to another
//!     peer than the one asked, or a refusal names the asker itself as holder.
//! 14. **Token reused.** Two slots carry the same token.
//! 15. **Token went back.** A first grant (201) in a request SENT after another first grant
//!     was RECEIVED carries a token not above it (tokens grow in the order grants are
//!     committed: a log index, or the next number up for the claims of a batch).

use std::collections::BTreeMap;

use crate::checker::Report;
use crate::history::{ClaimSample, History};
use crate::violation::Violation;

/// The job every nemesis client claims slots of.
pub const JOB: &str = "nemesis";

/// The slot a client claims at run time `t` (microseconds): a quarter-second bucket.
pub fn slot_at(t: u64) -> String {
    format!("{:08}", t / 250_000)
}

pub fn ledger(h: &History, r: &mut Report) {
    let decided: Vec<&ClaimSample> = h.claims.iter().filter(|c| c.holder.is_some()).collect();
    r.claim_answers = decided.len();
    let mut first_of_slot: BTreeMap<&str, &ClaimSample> = BTreeMap::new();
    let mut slot_of_token: BTreeMap<u64, &ClaimSample> = BTreeMap::new();
    for c in &decided {
        let granted = matches!(c.status, 200 | 201);
        if (granted && c.holder != Some(c.peer)) || (c.status == 409 && c.holder == Some(c.peer)) {
            r.violations.push(Violation::GrantedWrongly {
                claim: (*c).clone(),
            });
            continue;
        }
        match first_of_slot.get(c.slot.as_str()) {
            None => {
                first_of_slot.insert(&c.slot, c);
            }
            Some(first) if (first.holder, first.token) != (c.holder, c.token) => {
                r.violations.push(Violation::SlotTwice {
                    first: (*first).clone(),
                    second: (*c).clone(),
                });
            }
            Some(_) => {}
        }
        if let Some(token) = c.token {
            match slot_of_token.get(&token) {
                Some(other) if other.slot != c.slot => r.violations.push(Violation::TokenReused {
                    first: (*other).clone(),
                    second: (*c).clone(),
                }),
                Some(_) => {}
                None => {
                    slot_of_token.insert(token, c);
                }
            }
        }
    }
    r.slots_granted = first_of_slot.len();
    tokens_forward(&decided, r);
}

/// Rule 15, by a sweep: first grants in order of sending, against the largest token among
/// first grants received before.
fn tokens_forward(decided: &[&ClaimSample], r: &mut Report) {
    let mut created: Vec<&ClaimSample> = decided
        .iter()
        .copied()
        .filter(|c| c.status == 201)
        .collect();
    let mut by_received = created.clone();
    by_received.sort_by_key(|c| c.received);
    created.sort_by_key(|c| c.sent);
    let mut done = 0;
    let mut highest: Option<&ClaimSample> = None;
    for c in created {
        while done < by_received.len() && by_received[done].received < c.sent {
            let d = by_received[done];
            if highest.is_none_or(|h| d.token > h.token) {
                highest = Some(d);
            }
            done += 1;
        }
        if let Some(h) = highest {
            if c.token <= h.token {
                r.violations.push(Violation::TokenBack {
                    earlier: h.clone(),
                    later: c.clone(),
                });
            }
        }
    }
}
