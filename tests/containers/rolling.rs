//! A rolling restart, one peer after the other from the highest ordinal down, as a
//! StatefulSet update does, while a sampler asks all three peers who leads, continuously. The
//! whole timeline of samples is checked (testkit::timeline): never two claimants at a time,
//! one claimant per term, no claim in an older term than an earlier one, no peer's term going
//! back; and after each step all three agree on a leader, in a term never lower than before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::timeline::{self, Sample};
use testkit::Ask;

use crate::three_peers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_never_shows_two_leaders() {
    let c = three_peers("rolling_restart_never_shows_two_leaders").await;
    c.agreed_leader(&c.all(), Duration::from_secs(30)).await;

    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let probe = c.probe.clone();
        let done = done.clone();
        let all = c.all();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            // Bounded: the test's steps end well within this many rounds.
            for _ in 0..100_000 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let at = t0.elapsed();
                let answers = probe.ask_all(&all).await;
                samples.push(Sample { at, answers });
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        })
    };

    let mut steps = Vec::new();
    let mut agreed: Vec<(usize, u64)> = Vec::new();
    for i in (0..c.len()).rev() {
        let others = c.all_but(i);
        let step = Instant::now();
        let (stop_took, code) = c.stop(i).await;
        assert_eq!(code, 0, "{} exited {code} on SIGTERM", c.nodes[i].name);
        // While it is gone (the pod being recreated), the two others have a leader.
        c.agreed_leader(&others, Duration::from_secs(20)).await;
        let without = step.elapsed();
        c.start_peer(i).await;
        let (leader, term) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
        agreed.push((leader, term));
        steps.push(format!(
            "{}: stop {stop_took:?}, leader among the others {without:?}, all three agree on {} (term {term}) {:?}",
            c.nodes[i].name,
            c.nodes[leader].name,
            step.elapsed()
        ));
    }
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("sampler");

    let summary = timeline::check(&samples)
        .unwrap_or_else(|broken| panic!("rolling restart: {broken}\n  {}", steps.join("\n  ")));
    eprintln!(
        "rolling restart: {} samples, {} with a leader claiming, never two; claimants by term: {:?}\n  {}",
        summary.samples,
        summary.with_leader,
        summary.claimants,
        steps.join("\n  ")
    );
    assert!(
        samples.len() >= 50,
        "too few samples ({}) to mean anything",
        samples.len()
    );
    // After each step the agreed term never went back, and the agreed leader is the one that
    // claimed that term in the samples, if any sample saw a claim in it.
    for pair in agreed.windows(2) {
        assert!(
            pair[1].1 >= pair[0].1,
            "the agreed term went back: {agreed:?}"
        );
    }
    for (leader, term) in &agreed {
        if let Some(claimant) = summary.claimants.get(term) {
            assert_eq!(
                claimant, &c.nodes[*leader].name,
                "term {term}: agreed on {}, but {claimant} claimed it",
                c.nodes[*leader].name
            );
        }
    }
}
