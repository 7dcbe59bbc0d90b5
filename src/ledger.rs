//! The job ledger: which peer holds each scheduled slot of each job, replicated through the
//! Raft log. A claim is a log entry; the first claim of a (job, slot) applied anywhere is the
//! grant, and every peer applies the same entries in the same order, so every peer agrees on
//! it. The grant's token is the claim entry's log index: it grows strictly with the order of
//! grants across all jobs, a fencing token applications can compare.
//!
//! Everything here is pure and deterministic (no clock, no configuration of its own: the
//! history bound and the times travel in the entries), because every peer must reach the same
//! state from the same log. The store persists it and snapshots it ([`crate::store`]).
//!
//! History is bounded per job: beyond `history` slots, the smallest slot keys are forgotten
//! and the job remembers the greatest key it forgot. A claim of a slot at or below that key
//! that is not remembered is refused as [`ClaimOutcome::Expired`], never granted again: with
//! slot keys that sort like their time (RFC 3339 in UTC, as the helpers use), that is "too
//! old". Slot keys compare as byte strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest job name and slot key, in bytes.
pub const MAX_KEY: usize = 128;
/// Most jobs the ledger keeps; a claim for a further job is refused.
pub const MAX_JOBS: usize = 256;
/// Longest outcome detail kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_DETAIL: usize = 512;
/// Largest `--job-history`.
pub const MAX_HISTORY: usize = 1000;

/// Why a job name or a slot key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} bytes long; at most {MAX_KEY} are allowed")]
    TooLong { what: &'static str, len: usize },
    #[error("{what} holds a character that is not printable (control characters are refused)")]
    NotPrintable { what: &'static str },
}

/// Checks a job name or slot key: non-empty, at most [`MAX_KEY`] bytes, no control character.
pub fn check_key(what: &'static str, key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty { what });
    }
    if key.len() > MAX_KEY {
        return Err(KeyError::TooLong {
            what,
            len: key.len(),
        });
    }
    if key.chars().any(char::is_control) {
        return Err(KeyError::NotPrintable { what });
    }
    Ok(())
}

/// Checks a job name and a slot key ([`check_key`] on each).
pub fn check_job_slot(job: &str, slot: &str) -> Result<(), KeyError> {
    check_key("job", job)?;
    check_key("slot", slot)
}

/// How a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Its run succeeded, as its holder reported.
    Ok,
    /// Its run failed, as its holder reported (or the schedule's request did not get a 2xx).
    Failed,
    /// Nobody ran it before its deadline, or a catch-up policy skipped it: never run.
    Missed,
    /// Its runner died before reporting (`--job-on-lost skip`): it may or may not have run,
    /// and is never run again.
    Lost,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Missed => "missed",
            Outcome::Lost => "lost",
        }
    }
}

/// How a granted slot ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub outcome: Outcome,
    pub detail: String,
    /// Milliseconds since the Unix epoch, stamped by the leader that appended it.
    pub at_ms: u64,
}

/// One granted slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub job: String,
    pub slot: String,
    /// The peer the claim came through.
    pub holder: String,
    /// The fencing token: the claim entry's log index, or (for the claims of one batch, and
    /// after one) the next number above the last token ([`Ledger::next_token`]).
    pub token: u64,
    /// The term of the claim entry.
    pub term: u64,
    /// Milliseconds since the Unix epoch, stamped by the leader that appended the claim.
    pub claimed_at_ms: u64,
    pub completion: Option<Completion>,
}

/// A claim, as replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub job: String,
    pub slot: String,
    pub holder: String,
    pub at_ms: u64,
    /// The leader's history bound, so that every peer forgets the same slots.
    pub history: u32,
    /// A new run of a slot whose run with this token was lost (`--job-on-lost retry`): granted
    /// again, with a new token, if that grant is still the slot's and has no outcome.
    pub retry_of: Option<u64>,
}

/// Slots of a scheduled job recorded as missed, in one entry (a cluster down for long may
/// have many). They are never run; they share one token (the entry's index, or the next one
/// up after a batch: [`Ledger::next_token`]), which fences nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    pub job: String,
    pub slots: Vec<String>,
    /// The leader that recorded them.
    pub holder: String,
    pub detail: String,
    pub at_ms: u64,
    pub history: u32,
}

/// A completion report, as replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub job: String,
    pub slot: String,
    pub token: u64,
    pub outcome: Outcome,
    pub detail: String,
    pub at_ms: u64,
}

/// What applying a claim decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimOutcome {
    /// This claim is the grant (`first`), or the same holder claimed again and gets its own
    /// grant back.
    Granted { grant: Grant, first: bool },
    /// Another holder has it.
    Held { grant: Grant },
    /// The slot is not remembered and is at or below the greatest forgotten key: it may have
    /// been granted once, so it is never granted again.
    Expired { forgotten_up_to: String },
    /// The ledger already keeps [`MAX_JOBS`] jobs.
    TooManyJobs,
}

/// What applying a completion decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DoneOutcome {
    /// Recorded (or the same report was recorded before).
    Recorded { grant: Grant },
    /// The token is not the grant's (or the slot was never granted, or is forgotten).
    WrongToken { grant: Option<Grant> },
    /// A different outcome was recorded before with this token.
    AlreadyDone { grant: Grant },
}

/// One job's remembered slots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLedger {
    pub slots: BTreeMap<String, Grant>,
    /// The greatest slot key forgotten so far.
    pub forgotten_up_to: Option<String>,
}

impl JobLedger {
    /// Keeps `grant` (a new one, or a new run of a slot), then forgets the smallest slots
    /// beyond `history`.
    fn insert(&mut self, grant: Grant, history: u32, changed: &mut Changed) {
        self.slots.insert(grant.slot.clone(), grant.clone());
        changed.written.push(grant.clone());
        let keep = (history as usize).clamp(1, MAX_HISTORY);
        while self.slots.len() > keep {
            let Some((slot, _)) = self.slots.pop_first() else {
                break;
            };
            changed.forgotten.push((grant.job.clone(), slot.clone()));
            self.forgotten_up_to = Some(slot);
            changed.marks.push(grant.job.clone());
        }
    }

    /// The greatest slot key this job has seen, remembered or forgotten.
    pub fn latest(&self) -> Option<&str> {
        let kept = self.slots.keys().next_back().map(String::as_str);
        kept.max(self.forgotten_up_to.as_deref())
    }
}

/// The whole ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub jobs: BTreeMap<String, JobLedger>,
    /// The last token handed out. Not part of the encoded ledger (snapshot format 2 stays
    /// what releases before batches read); the store keeps it beside the ledger, and in
    /// snapshots only while it still matters ([`Ledger::floor_matters`]).
    #[serde(skip)]
    pub token_floor: u64,
    /// The index of the last entry whose effect this ledger holds (set with each entry's
    /// effect, under the same lock, so a reader sees the two together).
    #[serde(skip)]
    pub applied_index: u64,
}

/// One job at a glance (`GET /v1/jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSummary {
    pub job: String,
    /// Slots remembered.
    pub slots: usize,
    /// The greatest remembered slot key, its holder and token.
    pub latest_slot: Option<String>,
    pub latest_holder: Option<String>,
    pub latest_token: Option<u64>,
    pub forgotten_up_to: Option<String>,
}

/// What an applied entry changed, for the store to persist: the grants written and the keys
/// forgotten, per job.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changed {
    pub written: Vec<Grant>,
    pub forgotten: Vec<(String, String)>,
    /// Jobs whose `forgotten_up_to` moved.
    pub marks: Vec<String>,
}

impl Ledger {
    /// The token of a grant applied from the entry at `index`: the index itself, unless an
    /// earlier entry (a batch of claims) already handed that number out, then the next one
    /// up. Tokens so grow strictly in the order of grants, and while no batch was ever
    /// appended this is the entry's index, exactly what releases before batches hand out:
    /// peers of both releases apply the same log to the same tokens.
    pub fn next_token(&mut self, index: u64) -> u64 {
        let token = index.max(self.token_floor.saturating_add(1));
        self.token_floor = token;
        token
    }

    /// Whether a later entry could get a token other than its own index: only after a batch
    /// handed out numbers above the indexes applied so far. Without a batch every token is
    /// the index of an entry already applied, and the floor can be left out (of snapshots
    /// that releases before batches must be able to install).
    pub fn floor_matters(&self) -> bool {
        self.token_floor > self.applied_index
    }

    /// Applies a claim appended at `index` in `term`.
    pub fn claim(
        &mut self,
        c: &Claim,
        index: u64,
        term: u64,
        changed: &mut Changed,
    ) -> ClaimOutcome {
        if !self.jobs.contains_key(&c.job) && self.jobs.len() >= MAX_JOBS {
            return ClaimOutcome::TooManyJobs;
        }
        let job = self.jobs.entry(c.job.clone()).or_default();
        if let Some(grant) = job.slots.get(&c.slot) {
            let retry = c.retry_of.is_some_and(|t| t == grant.token) && grant.completion.is_none();
            if !retry {
                return if grant.holder == c.holder {
                    ClaimOutcome::Granted {
                        grant: grant.clone(),
                        first: false,
                    }
                } else {
                    ClaimOutcome::Held {
                        grant: grant.clone(),
                    }
                };
            }
        } else if let Some(mark) = &job.forgotten_up_to {
            if c.slot.as_str() <= mark.as_str() {
                return ClaimOutcome::Expired {
                    forgotten_up_to: mark.clone(),
                };
            }
        }
        let token = self.next_token(index);
        let job = self.jobs.entry(c.job.clone()).or_default();
        let grant = Grant {
            job: c.job.clone(),
            slot: c.slot.clone(),
            holder: c.holder.clone(),
            token,
            term,
            claimed_at_ms: c.at_ms,
            completion: None,
        };
        job.insert(grant.clone(), c.history, changed);
        // The new slot itself may have been the smallest: then it was forgotten at once, and
        // is reported as granted all the same (it was, and never will be again).
        ClaimOutcome::Granted { grant, first: true }
    }

    /// Applies a record of missed slots appended at `index` in `term`: each slot not granted
    /// and not forgotten is recorded as missed. Returns how many were.
    pub fn missed(&mut self, m: &Missed, index: u64, term: u64, changed: &mut Changed) -> usize {
        if !self.jobs.contains_key(&m.job) && self.jobs.len() >= MAX_JOBS {
            return 0;
        }
        // One token for the entry, taken only if a slot is recorded: applying an entry a
        // second time (a snapshot's ledger may already hold a few entries past its index,
        // which are then applied again) must change nothing.
        let mut token = None;
        let job = self.jobs.entry(m.job.clone()).or_default();
        let mut recorded = 0;
        for slot in &m.slots {
            let forgotten = job
                .forgotten_up_to
                .as_ref()
                .is_some_and(|mark| slot <= mark);
            if forgotten || job.slots.contains_key(slot) {
                continue;
            }
            let floor = self.token_floor;
            let token = *token.get_or_insert_with(|| index.max(floor.saturating_add(1)));
            let grant = Grant {
                job: m.job.clone(),
                slot: slot.clone(),
                holder: m.holder.clone(),
                token,
                term,
                claimed_at_ms: m.at_ms,
                completion: Some(Completion {
                    outcome: Outcome::Missed,
                    detail: m.detail.clone(),
                    at_ms: m.at_ms,
                }),
            };
            job.insert(grant, m.history, changed);
            recorded += 1;
        }
        if let Some(token) = token {
            self.token_floor = token;
        }
        recorded
    }

    /// Applies a completion report.
    pub fn done(&mut self, d: &Done, changed: &mut Changed) -> DoneOutcome {
        let Some(grant) = self
            .jobs
            .get_mut(&d.job)
            .and_then(|j| j.slots.get_mut(&d.slot))
        else {
            return DoneOutcome::WrongToken { grant: None };
        };
        if grant.token != d.token {
            return DoneOutcome::WrongToken {
                grant: Some(grant.clone()),
            };
        }
        if let Some(done) = &grant.completion {
            return if done.outcome == d.outcome && done.detail == d.detail {
                DoneOutcome::Recorded {
                    grant: grant.clone(),
                }
            } else {
                DoneOutcome::AlreadyDone {
                    grant: grant.clone(),
                }
            };
        }
        grant.completion = Some(Completion {
            outcome: d.outcome,
            detail: d.detail.clone(),
            at_ms: d.at_ms,
        });
        changed.written.push(grant.clone());
        DoneOutcome::Recorded {
            grant: grant.clone(),
        }
    }

    /// Every job at a glance.
    pub fn summaries(&self) -> Vec<JobSummary> {
        self.jobs
            .iter()
            .map(|(name, j)| {
                let latest = j.slots.values().next_back();
                JobSummary {
                    job: name.clone(),
                    slots: j.slots.len(),
                    latest_slot: latest.map(|g| g.slot.clone()),
                    latest_holder: latest.map(|g| g.holder.clone()),
                    latest_token: latest.map(|g| g.token),
                    forgotten_up_to: j.forgotten_up_to.clone(),
                }
            })
            .collect()
    }

    /// Rebuilds a ledger from persisted grants and marks.
    pub fn from_parts(
        grants: impl IntoIterator<Item = Grant>,
        marks: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut ledger = Ledger::default();
        for g in grants {
            ledger
                .jobs
                .entry(g.job.clone())
                .or_default()
                .slots
                .insert(g.slot.clone(), g);
        }
        for (job, mark) in marks {
            ledger.jobs.entry(job).or_default().forgotten_up_to = Some(mark);
        }
        ledger
    }
}

/// Cuts `detail` to at most [`MAX_DETAIL`] bytes at a character boundary.
pub fn clip_detail(detail: &str) -> String {
    let mut end = detail.len().min(MAX_DETAIL);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    detail[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(job: &str, slot: &str, holder: &str, history: u32) -> Claim {
        Claim {
            job: job.into(),
            slot: slot.into(),
            holder: holder.into(),
            at_ms: 1,
            history,
            retry_of: None,
        }
    }

    /// A record of `slots` of `job` missed, by `p`, with a history of 10.
    fn missed_of(job: &str, slots: &[&str]) -> Missed {
        Missed {
            job: job.into(),
            slots: slots.iter().map(|s| s.to_string()).collect(),
            holder: "p".into(),
            detail: String::new(),
            at_ms: 1,
            history: 10,
        }
    }

    #[test]
    fn the_first_claim_is_the_grant_and_later_ones_see_it() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        let first = l.claim(&claim("mail", "s1", "web-0", 10), 7, 2, &mut ch);
        let ClaimOutcome::Granted { grant, first: true } = first else {
            panic!("{first:?}")
        };
        assert_eq!((grant.token, grant.term), (7, 2));
        match l.claim(&claim("mail", "s1", "web-1", 10), 8, 2, &mut ch) {
            ClaimOutcome::Held { grant } => {
                assert_eq!((grant.holder.as_str(), grant.token), ("web-0", 7))
            }
            other => panic!("{other:?}"),
        }
        match l.claim(&claim("mail", "s1", "web-0", 10), 9, 3, &mut ch) {
            ClaimOutcome::Granted {
                grant,
                first: false,
            } => assert_eq!(grant.token, 7),
            other => panic!("{other:?}"),
        }
        // Another job's slot of the same name is another slot.
        assert!(matches!(
            l.claim(&claim("report", "s1", "web-1", 10), 10, 3, &mut ch),
            ClaimOutcome::Granted { first: true, .. }
        ));
    }

    #[test]
    fn tokens_are_entry_indexes_until_a_batch_then_grow_by_one_above_the_last() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        let token = |o: ClaimOutcome| match o {
            ClaimOutcome::Granted { grant, .. } => grant.token,
            other => panic!("{other:?}"),
        };
        // Single claims: the entry's index, as releases before batches hand out.
        assert_eq!(token(l.claim(&claim("j", "a", "p", 10), 3, 1, &mut ch)), 3);
        assert_eq!(token(l.claim(&claim("j", "b", "p", 10), 7, 1, &mut ch)), 7);
        // A batch at index 8: 8, 9, 10; a claim that is no grant takes no token.
        let batch = [
            claim("j", "c", "p", 10),
            claim("j", "a", "q", 10),
            claim("j", "d", "p", 10),
        ];
        let held = l.claim(&batch[1], 8, 1, &mut ch);
        let tokens = [
            token(l.claim(&batch[0], 8, 1, &mut ch)),
            token(l.claim(&batch[2], 8, 1, &mut ch)),
        ];
        assert!(matches!(held, ClaimOutcome::Held { .. }), "{held:?}");
        assert_eq!(tokens, [8, 9]);
        // The entries right after take the next numbers up, until the index passes them.
        assert_eq!(token(l.claim(&claim("j", "e", "p", 10), 9, 1, &mut ch)), 10);
        let m = missed_of("j", &["f", "g"]);
        assert_eq!(l.missed(&m, 10, 1, &mut ch), 2);
        let missed: Vec<u64> = ["f", "g"].map(|s| l.jobs["j"].slots[s].token).to_vec();
        assert_eq!(missed, [11, 11], "missed slots of one entry share a token");
        assert_eq!(
            token(l.claim(&claim("j", "h", "p", 10), 20, 1, &mut ch)),
            20
        );
        assert_eq!(l.token_floor, 20);
    }

    #[test]
    fn the_floor_matters_only_after_a_batch_and_until_the_indexes_pass_it() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        let mut apply = |l: &mut Ledger, index: u64, claims: &[&str]| {
            for slot in claims {
                l.claim(&claim("j", slot, "p", 100), index, 1, &mut ch);
            }
            l.applied_index = index;
        };
        apply(&mut l, 1, &["a"]);
        apply(&mut l, 2, &[]);
        assert!(!l.floor_matters(), "single claims: tokens are indexes");
        apply(&mut l, 3, &["b", "c", "d"]);
        assert_eq!(l.token_floor, 5);
        assert!(
            l.floor_matters(),
            "a batch handed out 4 and 5 above index 3"
        );
        apply(&mut l, 4, &[]);
        assert!(l.floor_matters());
        apply(&mut l, 5, &[]);
        assert!(
            !l.floor_matters(),
            "index 6 and later are above every token"
        );
    }

    #[test]
    fn applying_entries_a_second_time_changes_nothing() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        let m = missed_of("j", &["m1", "m2"]);
        let done = Done {
            job: "j".into(),
            slot: "a".into(),
            token: 3,
            outcome: Outcome::Ok,
            detail: String::new(),
            at_ms: 2,
        };
        let entries = |l: &mut Ledger, ch: &mut Changed| {
            l.claim(&claim("j", "a", "p", 10), 3, 1, ch);
            for slot in ["b", "c"] {
                l.claim(&claim("j", slot, "q", 10), 4, 1, ch);
            }
            l.missed(&m, 5, 1, ch);
            l.done(&done, ch);
        };
        entries(&mut l, &mut ch);
        let once = l.clone();
        entries(&mut l, &mut ch);
        assert_eq!(l, once);
    }

    #[test]
    fn forgotten_slots_are_never_granted_again() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        for (i, slot) in ["a", "b", "c"].iter().enumerate() {
            l.claim(&claim("j", slot, "p", 2), i as u64 + 1, 1, &mut ch);
        }
        assert_eq!(l.jobs["j"].slots.len(), 2);
        assert_eq!(l.jobs["j"].forgotten_up_to.as_deref(), Some("a"));
        assert_eq!(ch.forgotten, vec![("j".to_string(), "a".to_string())]);
        for holder in ["p", "q"] {
            assert!(matches!(
                l.claim(&claim("j", "a", holder, 2), 9, 1, &mut ch),
                ClaimOutcome::Expired { .. }
            ));
        }
        // A slot below the mark that was never seen is refused too: it may have been granted.
        assert!(matches!(
            l.claim(&claim("j", "0", "q", 2), 9, 1, &mut ch),
            ClaimOutcome::Expired { .. }
        ));
    }

    #[test]
    fn completions_need_the_grants_token() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        l.claim(&claim("j", "s", "p", 5), 4, 1, &mut ch);
        let done = |token, ok: bool| Done {
            job: "j".into(),
            slot: "s".into(),
            token,
            outcome: if ok { Outcome::Ok } else { Outcome::Failed },
            detail: "d".into(),
            at_ms: 2,
        };
        assert!(matches!(
            l.done(&done(3, true), &mut ch),
            DoneOutcome::WrongToken { grant: Some(_) }
        ));
        assert!(matches!(
            l.done(&done(4, true), &mut ch),
            DoneOutcome::Recorded { .. }
        ));
        assert!(matches!(
            l.done(&done(4, true), &mut ch),
            DoneOutcome::Recorded { .. }
        ));
        assert!(matches!(
            l.done(&done(4, false), &mut ch),
            DoneOutcome::AlreadyDone { .. }
        ));
        let unknown = Done {
            slot: "x".into(),
            ..done(4, true)
        };
        assert!(matches!(
            l.done(&unknown, &mut ch),
            DoneOutcome::WrongToken { grant: None }
        ));
    }

    #[test]
    fn a_lost_run_is_granted_again_only_with_its_token_and_missed_slots_are_never_run() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        l.claim(&claim("j", "s1", "p", 10), 4, 1, &mut ch);
        let retry = |of| Claim {
            retry_of: Some(of),
            ..claim("j", "s1", "q", 10)
        };
        assert!(matches!(
            l.claim(&retry(3), 5, 2, &mut ch),
            ClaimOutcome::Held { .. }
        ));
        match l.claim(&retry(4), 6, 2, &mut ch) {
            ClaimOutcome::Granted { grant, first: true } => {
                assert_eq!((grant.token, grant.holder.as_str()), (6, "q"))
            }
            other => panic!("{other:?}"),
        }
        // The old run's token is no longer the slot's: asked again, the new holder gets its
        // own grant back, not a third one.
        match l.claim(&retry(4), 7, 2, &mut ch) {
            ClaimOutcome::Granted {
                grant,
                first: false,
            } => assert_eq!(grant.token, 6),
            other => panic!("{other:?}"),
        }
        let m = Missed {
            job: "j".into(),
            slots: vec!["s0".into(), "s1".into(), "s2".into()],
            holder: "q".into(),
            detail: "past the deadline".into(),
            at_ms: 3,
            history: 10,
        };
        assert_eq!(l.missed(&m, 8, 2, &mut ch), 2, "s1 is granted already");
        match l.claim(&claim("j", "s2", "p", 10), 9, 2, &mut ch) {
            ClaimOutcome::Held { grant } => {
                assert_eq!(grant.completion.map(|c| c.outcome), Some(Outcome::Missed))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l.jobs["j"].latest(), Some("s2"));
    }

    #[test]
    fn the_number_of_jobs_is_bounded() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        for i in 0..MAX_JOBS {
            l.claim(
                &claim(&format!("job{i}"), "s", "p", 1),
                i as u64 + 1,
                1,
                &mut ch,
            );
        }
        assert_eq!(
            l.claim(&claim("one-more", "s", "p", 1), 999, 1, &mut ch),
            ClaimOutcome::TooManyJobs
        );
    }

    #[test]
    fn keys_must_be_short_printable_and_present() {
        assert!(check_key("job", "mail").is_ok());
        assert!(check_key("slot", "2026-12-03T12:00:00Z").is_ok());
        assert_eq!(check_key("job", ""), Err(KeyError::Empty { what: "job" }));
        assert!(matches!(
            check_key("slot", &"x".repeat(129)),
            Err(KeyError::TooLong { len: 129, .. })
        ));
        assert!(matches!(
            check_key("slot", "a\nb"),
            Err(KeyError::NotPrintable { .. })
        ));
        assert_eq!(clip_detail(&"é".repeat(400)).len(), 512);
    }

    #[test]
    fn a_ledger_rebuilt_from_its_parts_is_the_same() {
        let mut l = Ledger::default();
        let mut ch = Changed::default();
        for (i, slot) in ["a", "b", "c"].iter().enumerate() {
            l.claim(&claim("j", slot, "p", 2), i as u64 + 1, 1, &mut ch);
        }
        let grants = l
            .jobs
            .values()
            .flat_map(|j| j.slots.values().cloned())
            .collect::<Vec<_>>();
        let mut rebuilt = Ledger::from_parts(grants, [("j".to_string(), "a".to_string())]);
        // The floor is stored beside the parts.
        rebuilt.token_floor = l.token_floor;
        assert_eq!(rebuilt, l);
    }
}
