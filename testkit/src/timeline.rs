//! A timeline of "who leads?" samples, every peer asked in each, one sample after the other,
//! and the promises that hold across all of them, not only within one sample: never two
//! claimants at a time, one claimant per term, a claim never in an older term than an earlier
//! claim, and no peer's term ever going back (terms are durable, across restarts too).
//!
//! Samples are taken in sequence (a sample's questions are sent after the previous sample's
//! answers came back), so the order of two samples is the real order of their answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::answer::Answer;
use crate::http;

/// One round of questions to every peer (asked at once), `at` its start.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    /// By peer index; `None` where the peer did not answer (stopped, restarting).
    pub answers: Vec<Option<Answer>>,
}

/// Asks every peer of `addrs` (running or not) who leads, one sample after the other, until
/// `done` is set; each answer read by `parse` ([`Answer::parse`], say). Bounded: stops after
/// 200,000 samples.
pub fn sample(
    addrs: Vec<SocketAddr>,
    done: Arc<AtomicBool>,
    parse: fn(&[u8]) -> Option<Answer>,
) -> tokio::task::JoinHandle<Vec<Sample>> {
    let t0 = Instant::now();
    let client = http::client(Duration::from_millis(300));
    tokio::spawn(async move {
        let mut samples = Vec::new();
        for _ in 0..200_000 {
            if done.load(Ordering::SeqCst) {
                break;
            }
            let at = t0.elapsed();
            let asks = addrs.iter().map(|a| http::ask_parsed(&client, *a, parse));
            let answers = futures::future::join_all(asks).await;
            samples.push(Sample { at, answers });
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples
    })
}

/// What a clean timeline showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub samples: usize,
    /// Samples in which one peer said it leads.
    pub with_leader: usize,
    /// The peer that claimed each term, by term.
    pub claimants: BTreeMap<u64, String>,
}

/// Checks `samples` (in the order they were taken); `Err` names the first broken promise.
pub fn check(samples: &[Sample]) -> Result<Summary, String> {
    let mut summary = Summary {
        samples: samples.len(),
        ..Summary::default()
    };
    // The last term each peer reported, and when.
    let mut terms: BTreeMap<&str, (u64, Duration)> = BTreeMap::new();
    // The newest claim so far: its term, claimant and sample time.
    let mut newest: Option<(u64, &str, Duration)> = None;
    for s in samples {
        let answers: Vec<&Answer> = s.answers.iter().flatten().collect();
        let claims: Vec<&&Answer> = answers.iter().filter(|a| a.is_leader).collect();
        if claims.len() > 1 {
            return Err(format!(
                "two peers said they lead at {:?}: {claims:?}",
                s.at
            ));
        }
        for a in &answers {
            if let Some((term, at)) = terms.get(a.id.as_str()) {
                if a.term < *term {
                    return Err(format!(
                        "{}'s term went back from {term} (at {at:?}) to {} (at {:?})",
                        a.id, a.term, s.at
                    ));
                }
            }
            terms.insert(&a.id, (a.term, s.at));
        }
        let Some(claim) = claims.first() else {
            continue;
        };
        summary.with_leader += 1;
        if let Some(other) = summary.claimants.get(&claim.term) {
            if *other != claim.id {
                return Err(format!(
                    "{} and {other} both claimed term {} (the former at {:?})",
                    claim.id, claim.term, s.at
                ));
            }
        }
        summary.claimants.insert(claim.term, claim.id.clone());
        if let Some((term, id, at)) = newest {
            if claim.term < term {
                return Err(format!(
                    "{} claimed term {} at {:?}, after {id} claimed the newer term {term} at {at:?}",
                    claim.id, claim.term, s.at
                ));
            }
        }
        newest = Some((claim.term, &claim.id, s.at));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Role;

    fn answer(id: &str, leader: &str, term: u64) -> Option<Answer> {
        Some(Answer {
            id: id.into(),
            election: "e".into(),
            role: if id == leader {
                Role::Leader
            } else {
                Role::Follower
            },
            name: leader.into(),
            term,
            is_leader: id == leader,
            valid_ms: 100,
            voters: 3,
            app_healthy: None,
        })
    }

    fn sample(ms: u64, answers: Vec<Option<Answer>>) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            answers,
        }
    }

    #[test]
    fn a_clean_hand_over_passes() {
        let samples = [
            sample(0, vec![answer("a", "a", 1), answer("b", "a", 1), None]),
            sample(10, vec![None, answer("b", "b", 2), answer("c", "b", 2)]),
            sample(20, vec![answer("a", "b", 2), answer("b", "b", 2), None]),
        ];
        let s = check(&samples).expect("clean");
        assert_eq!(s.with_leader, 3);
        assert_eq!(s.claimants.len(), 2);
    }

    #[test]
    fn two_claimants_in_one_sample_fail() {
        let samples = [sample(0, vec![answer("a", "a", 1), answer("b", "b", 2)])];
        assert!(check(&samples).unwrap_err().contains("two peers"));
    }

    #[test]
    fn a_claim_in_an_older_term_than_an_earlier_claim_fails() {
        let samples = [
            sample(0, vec![None, answer("b", "b", 2)]),
            sample(10, vec![answer("a", "a", 1), None]),
        ];
        assert!(check(&samples).unwrap_err().contains("newer term"));
    }

    #[test]
    fn two_claimants_of_one_term_in_different_samples_fail() {
        let samples = [
            sample(0, vec![answer("a", "a", 3), None]),
            sample(10, vec![None, answer("b", "b", 3)]),
        ];
        assert!(check(&samples).unwrap_err().contains("both claimed term 3"));
    }

    #[test]
    fn a_peer_whose_term_goes_back_fails() {
        let samples = [
            sample(0, vec![answer("a", "b", 4)]),
            sample(10, vec![answer("a", "", 3)]),
        ];
        assert!(check(&samples).unwrap_err().contains("term went back"));
    }
}
