//! A rolling restart, one peer after the other from the highest ordinal down, as a
//! StatefulSet update does, while a sampler asks all three peers who leads, continuously.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{Answer, Ask};

use crate::three_peers;

/// One round of questions to every peer (asked at once).
struct Sample {
    at: Duration,
    answers: Vec<Option<Answer>>,
}

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
                let answers = probe.ask_all(&all).await;
                samples.push(Sample {
                    at: t0.elapsed(),
                    answers,
                });
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        })
    };

    let mut steps = Vec::new();
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
        steps.push(format!(
            "{}: stop {stop_took:?}, leader among the others {without:?}, all three agree on {} (term {term}) {:?}",
            c.nodes[i].name,
            c.nodes[leader].name,
            step.elapsed()
        ));
    }
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("sampler");

    let mut with_leader = 0;
    for s in &samples {
        let claims: Vec<&Answer> = s.answers.iter().flatten().filter(|a| a.is_leader).collect();
        assert!(
            claims.len() <= 1,
            "two peers said they lead at {:?}: {claims:?}",
            s.at
        );
        with_leader += usize::from(claims.len() == 1);
    }
    eprintln!(
        "rolling restart: {} samples, {with_leader} with a leader claiming, none with two\n  {}",
        samples.len(),
        steps.join("\n  ")
    );
    assert!(
        samples.len() >= 50,
        "too few samples ({}) to mean anything",
        samples.len()
    );
}
