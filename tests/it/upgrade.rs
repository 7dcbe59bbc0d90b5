//! Upgrades from the previous release ([`testkit::release`]): its data directories open with
//! this one, and a cluster of it upgraded one peer at a time, as a StatefulSet's rolling update
//! does, keeps one leader throughout, although the two releases speak different peer
//! protocols for a while (this one adds joins, leaves and probes, which the previous one does
//! not know).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::{timeline, Answer, Ask, Cluster};

use crate::spec;

const STEP: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_from_the_previous_release_keeps_one_leader_and_every_peers_data() {
    let previous = testkit::release::previous_release_exe(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
    );
    let mut s = spec(3);
    s.previous_release = true;
    let mut c = Cluster::new(s);
    for p in &mut c.peers {
        p.exe = Some(previous.clone());
    }
    c.spawn_all();
    let all = [0, 1, 2];
    let addrs: Vec<SocketAddr> = c.peers.iter().map(|p| p.http).collect();
    let (first, first_term) = c.agreed_leader(&all, STEP).await;
    let answer = c.ask(first).await.expect("the leader answers");
    assert_eq!(
        answer.voters, 0,
        "peer-{first} answers with `voters`: it is not the previous release"
    );

    let done = Arc::new(AtomicBool::new(false));
    let sampler = timeline::sample(addrs, done.clone(), Answer::parse_either_release);
    let mut steps = vec![format!(
        "previous release: peer-{first} leads in term {first_term}"
    )];
    // A StatefulSet updates the highest ordinal first, the leader wherever it is.
    for i in (0..3).rev() {
        let sent = Instant::now();
        c.signal(i, Signal::SIGTERM);
        let stopped = c.expect_stopped(i, sent).await;
        c.peers[i].exe = None;
        c.spawn(i);
        let (leader, term) = c.agreed_leader(&all, STEP).await;
        steps.push(format!(
            "peer-{i} upgraded (stopped in {stopped:?}): peer-{leader} leads in term {term}"
        ));
    }

    // Every peer runs this release on the data the previous one wrote: the three voters it
    // stored are the membership, and the answer now has this release's contract.
    c.members_converge(&all, &all, &[], STEP).await;
    let (leader, term) = c.agreed_leader(&all, STEP).await;
    let answer = c.ask(leader).await.expect("the leader answers");
    assert_eq!(answer.voters, 3, "{answer:?}");
    assert!(term >= first_term);

    done.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("sampler");
    let summary = timeline::check(&samples)
        .unwrap_or_else(|broken| panic!("rolling upgrade: {broken}\n  {}", steps.join("\n  ")));
    eprintln!(
        "rolling upgrade: {} samples, {} with a claim, never two; no term went back; claimants by term {:?}\n  {}",
        summary.samples,
        summary.with_leader,
        summary.claimants,
        steps.join("\n  ")
    );
    // The steps are quick (a few seconds in all): the sampler must still have seen them.
    assert!(
        summary.samples >= 10,
        "too few samples: {}",
        summary.samples
    );
}
