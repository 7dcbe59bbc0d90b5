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

use crate::{jobs, spec};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_stay_exactly_once_through_a_rolling_upgrade_that_starts_batching() {
    const CLAIMERS: usize = 12;
    const SLOTS: usize = 5;
    let before = testkit::release::release_exe(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        testkit::release::BEFORE_BATCHES,
    );
    let mut s = spec(3);
    s.flags.extend(["--snapshot-logs".into(), "10".into()]);
    let mut c = Cluster::new(s);
    for p in &mut c.peers {
        p.exe = Some(before.clone());
    }
    c.spawn_all();
    let all = c.all();
    c.agreed_leader(&all, STEP).await;
    let client = testkit::jobs::client();
    let grants = std::sync::Mutex::new(testkit::jobs::Grants::default());
    let answered = jobs::Answered::default();
    let record = (&client, &grants, &answered);
    let mut rounds = 0..SLOTS;
    jobs::claim_round(&c, record, CLAIMERS, all.clone(), rounds.clone()).await;
    // One peer at a time, highest ordinal first, as a StatefulSet does; claims go on between
    // the steps. While a member runs the release before batches, a leader of this release
    // appends every claim as an entry of its own.
    for i in (0..3).rev() {
        let sent = Instant::now();
        c.signal(i, Signal::SIGTERM);
        c.expect_stopped(i, sent).await;
        c.peers[i].exe = None;
        c.spawn(i);
        c.agreed_leader(&all, STEP).await;
        rounds = rounds.end..rounds.end + SLOTS;
        jobs::claim_round(&c, record, CLAIMERS, all.clone(), rounds.clone()).await;
        if i > 0 {
            let (entries, claims) = jobs::claim_counts(&c).await;
            assert_eq!(
                entries, claims,
                "claims were batched while a member runs the release before batches"
            );
        }
    }
    // Every peer runs this release: concurrent claims share entries once the leader has
    // asked every member again (at most 1 s after it last found one of the earlier release);
    // at most 10 rounds, within the history of 100 slots.
    c.agreed_leader(&all, STEP).await;
    let deadline = Instant::now() + STEP;
    let (new_entries, new_claims) = loop {
        let (entries, claims) = jobs::claim_counts(&c).await;
        rounds = rounds.end..rounds.end + SLOTS;
        jobs::claim_round(&c, record, CLAIMERS, all.clone(), rounds.clone()).await;
        let (entries_after, claims_after) = jobs::claim_counts(&c).await;
        let (new_entries, new_claims) = (entries_after - entries, claims_after - claims);
        if new_entries < new_claims {
            break (new_entries, new_claims);
        }
        assert!(
            Instant::now() < deadline && rounds.end < SLOTS * 14,
            "after the upgrade, {new_claims} concurrent claims still took {new_entries} entries"
        );
    };
    let grants = grants.into_inner().expect("lock");
    assert_eq!(grants.len(), CLAIMERS * rounds.end);
    grants.tokens_unique().unwrap_or_else(|e| panic!("{e}"));
    jobs::tokens_follow_real_time(&answered.into_inner().expect("lock"));
    // Every peer applied the same log to the same tokens, those of the release before
    // batches included.
    for i in all {
        for k in 0..CLAIMERS {
            let job = format!("batch-{k:02}");
            jobs::ledger_shows(&c, &client, i, &job, rounds.end, &grants).await;
        }
    }
    eprintln!(
        "rolling upgrade with {CLAIMERS} claimers: {} slots granted once each; afterwards {new_claims} claims in {new_entries} entries",
        grants.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_the_release_before_batches_installs_a_snapshot_of_this_one_with_grants() {
    const CLAIMERS: usize = 8;
    let before = testkit::release::release_exe(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        testkit::release::BEFORE_BATCHES,
    );
    let mut s = spec(3);
    s.flags.extend(["--snapshot-logs".into(), "5".into()]);
    let mut c = Cluster::new(s);
    let old = 2;
    c.peers[old].exe = Some(before);
    c.spawn_all();
    let all = c.all();
    c.agreed_leader(&all, STEP).await;
    let client = testkit::jobs::client();
    let grants = std::sync::Mutex::new(testkit::jobs::Grants::default());
    let answered = jobs::Answered::default();
    let record = (&client, &grants, &answered);
    jobs::claim_round(&c, record, CLAIMERS, all.clone(), 0..3).await;
    // The old peer misses many entries; the new peers snapshot every 5 and purge behind, so
    // it catches up from a snapshot that a peer of this release built while it holds grants
    // (format 2: no batch was appended while it is a member).
    c.kill(old);
    let others = c.all_but(old);
    c.agreed_leader(&others, STEP).await;
    jobs::claim_round(&c, record, CLAIMERS, others, 3..13).await;
    let (entries, claims) = jobs::claim_counts(&c).await;
    assert_eq!(
        entries, claims,
        "claims were batched with a member of the release before"
    );
    c.spawn(old);
    let grants = grants.into_inner().expect("lock");
    for k in 0..CLAIMERS {
        let job = format!("batch-{k:02}");
        jobs::ledger_shows(&c, &client, old, &job, 13, &grants).await;
    }
    let purged = c
        .metric(0, "raft_elector_purged_index")
        .await
        .unwrap_or(0.0);
    assert!(
        purged > 20.0,
        "the log was not purged (up to {purged}): no snapshot was needed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_from_http_peers_keeps_one_leader_and_ends_with_every_peer_on_streams() {
    let before = testkit::release::release_exe(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        testkit::release::BEFORE_STREAMS,
    );
    let mut c = Cluster::new(spec(3));
    for p in &mut c.peers {
        p.exe = Some(before.clone());
    }
    c.spawn_all();
    let all = c.all();
    let (first, first_term) = c.agreed_leader(&all, STEP).await;
    assert_eq!(
        c.metric(first, "raft_elector_peer_streams").await,
        None,
        "peer-{first} serves streams: it is not the release before them"
    );
    let addrs: Vec<SocketAddr> = c.peers.iter().map(|p| p.http).collect();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = timeline::sample(addrs, done.clone(), Answer::parse);
    let mut steps = vec![format!(
        "release before streams: peer-{first} leads in term {first_term}"
    )];
    // Highest ordinal first, as a StatefulSet does; between steps the cluster mixes peers
    // that send streams with peers that answer their handshake 404 and send HTTP.
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
    // Every peer now runs this release: the leader's requests reach each follower over a
    // stream (a peer found speaking HTTP is asked again once it could not be reached).
    let (leader, _) = c.agreed_leader(&all, STEP).await;
    let deadline = Instant::now() + STEP;
    for i in c.all_but(leader) {
        while c.metric(i, "raft_elector_peer_streams").await < Some(1.0) {
            assert!(
                Instant::now() < deadline,
                "peer-{i} serves no stream after the upgrade\n  {}",
                steps.join("\n  ")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("sampler");
    let summary = timeline::check(&samples)
        .unwrap_or_else(|broken| panic!("upgrade to streams: {broken}\n  {}", steps.join("\n  ")));
    eprintln!(
        "upgrade to streams: {} samples, {} with a claim, never two; claimants by term {:?}\n  {}",
        summary.samples,
        summary.with_leader,
        summary.claimants,
        steps.join("\n  ")
    );
    assert!(
        summary.samples >= 10,
        "too few samples: {}",
        summary.samples
    );
}
