//! Membership that follows the StatefulSet, with real processes: learners beyond the voter
//! cap; two peers and a witness; bad flags. Scaling 3 -> 5 -> 3 -> 1 -> 3 under the nemesis
//! checker is in tests/nemesis (`scaling_3_5_3_1_3_passes_every_rule_of_the_checker`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::timeline::{self, Sample};
use testkit::{Ask, Cluster, Spec};

use crate::{spec, EXE};

const STEP: Duration = Duration::from_secs(10);

/// Asks every peer (running or not) who leads, one round after the other, until `done`.
fn sample(addrs: Vec<SocketAddr>, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Sample>> {
    timeline::sample(addrs, done, testkit::Answer::parse)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_beyond_the_voter_cap_are_learners_and_a_learner_replaces_a_voter_that_leaves() {
    let mut c = Cluster::new(spec(7));
    c.first_cluster(&[0, 1, 2]);
    for i in 3..7 {
        c.join_later(i, &[0, 1, 2]);
    }
    for i in 0..7 {
        c.spawn(i);
    }
    let all: Vec<usize> = (0..7).collect();
    c.agreed_leader(&all, Duration::from_secs(20)).await;
    // Five voters; which two are learners depends on the order of the joins.
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = c.members(0).await;
        if let Some(m) = m.filter(|m| m.voters.len() == 5 && m.learners.len() == 2) {
            break m;
        }
        assert!(Instant::now() < deadline, "no 5 voters + 2 learners");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let index = |name: &str| c.index(name);
    let voters: Vec<usize> = m.voters.iter().map(|n| index(n)).collect();
    let learners: Vec<usize> = m.learners.iter().map(|n| index(n)).collect();
    c.members_converge(&all, &voters, &learners, STEP).await;
    let (leader, _) = c.agreed_leader(&all, STEP).await;
    assert!(
        voters.contains(&leader),
        "the leader peer-{leader} is no voter"
    );
    // A learner names the leader and is told it does not lead.
    let learner = learners[0];
    let answer = c.ask(learner).await.expect("learner answers");
    assert_eq!(answer.name, c.peers[leader].name);
    assert!(!answer.is_leader);
    let (status, body) = c.get(learner, "/isLeader").await.expect("isLeader");
    assert_eq!((status, body.trim()), (200, r#"{"isLeader":false}"#));

    // A crash changes nothing by itself.
    let crashed = *voters
        .iter()
        .find(|v| **v != leader)
        .expect("a follower voter");
    c.kill(crashed);
    let others: Vec<usize> = all.iter().copied().filter(|i| *i != crashed).collect();
    tokio::time::sleep(Duration::from_millis(500)).await; // nothing to wait for: a crash must change nothing
    c.members_converge(&others, &voters, &learners, STEP).await;

    // A voter that leaves is replaced by a learner: five voters again.
    let leaving = *voters
        .iter()
        .find(|v| **v != leader && **v != crashed)
        .expect("another follower voter");
    c.stop(leaving).await;
    let left: Vec<usize> = others.iter().copied().filter(|i| *i != leaving).collect();
    let deadline = Instant::now() + STEP;
    loop {
        let m = c.members(leader).await.expect("members");
        if m.voters.len() == 5 && m.learners.len() == 1 {
            assert!(!m.voters.contains(&c.peers[leaving].name));
            break;
        }
        assert!(Instant::now() < deadline, "no learner promoted: {m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (leader2, _) = c.agreed_leader(&left, STEP).await;
    let m = c.members(leader2).await.expect("members");
    assert!(
        m.voters.contains(&c.peers[leader2].name),
        "the leader is no voter: {m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_members_give_five_voters_and_voters_crashed_for_good_are_replaced_by_learners() {
    // With --remove-unreachable-after, the leader removes a voter silent that long (never
    // sooner than the 30 s floor), and the most up-to-date learners take the free seats.
    let mut s = spec(9);
    s.flags
        .extend(["--remove-unreachable-after".to_string(), "30s".to_string()]);
    let mut c = Cluster::new(s);
    c.first_cluster(&[0, 1, 2]);
    for i in 3..9 {
        c.join_later(i, &[0, 1, 2]);
    }
    for i in 0..9 {
        c.spawn(i);
    }
    let all: Vec<usize> = (0..9).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let m = c.members(0).await;
        if let Some(m) = m.filter(|m| m.voters.len() == 5 && m.learners.len() == 4) {
            break m;
        }
        assert!(Instant::now() < deadline, "no 5 voters + 4 learners");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let voters: Vec<usize> = m.voters.iter().map(|n| c.index(n)).collect();
    let learners: Vec<usize> = m.learners.iter().map(|n| c.index(n)).collect();
    c.members_converge(&all, &voters, &learners, STEP).await;
    let (leader, _) = c.agreed_leader(&all, STEP).await;
    assert!(
        voters.contains(&leader),
        "the leader peer-{leader} is no voter"
    );

    let crashed: Vec<usize> = voters
        .iter()
        .copied()
        .filter(|v| *v != leader)
        .take(2)
        .collect();
    for &i in &crashed {
        c.kill(i);
    }
    let killed = Instant::now();
    let names: Vec<String> = crashed.iter().map(|&i| c.peers[i].name.clone()).collect();
    let deadline = killed + Duration::from_secs(60);
    let m = loop {
        let (now_leader, _) = c
            .agreed_leader(
                &all.iter()
                    .copied()
                    .filter(|i| !crashed.contains(i))
                    .collect::<Vec<_>>(),
                STEP,
            )
            .await;
        let m = c.members(now_leader).await.expect("members");
        assert!(
            m.voters.contains(&c.peers[now_leader].name),
            "the leader peer-{now_leader} is no voter: {m:?}"
        );
        let gone = names
            .iter()
            .all(|n| !m.voters.contains(n) && !m.learners.contains(n));
        if gone && m.voters.len() == 5 && m.learners.len() == 2 {
            break m;
        }
        assert!(
            names.iter().all(|n| m.voters.contains(n))
                || killed.elapsed() >= Duration::from_secs(30),
            "a crashed voter was removed {:?} after the crash, before the 30 s floor: {m:?}",
            killed.elapsed()
        );
        assert!(
            Instant::now() < deadline,
            "the crashed voters were not replaced: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "two crashed voters of nine members replaced by learners {:?} after the crash: voters {:?}",
        killed.elapsed(),
        m.voters
    );
    let survivors: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !crashed.contains(i))
        .collect();
    let voters: Vec<usize> = m.voters.iter().map(|n| c.index(n)).collect();
    let learners: Vec<usize> = m.learners.iter().map(|n| c.index(n)).collect();
    c.members_converge(&survivors, &voters, &learners, STEP)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_two_replicas_keeps_a_leader_throughout() {
    // A StatefulSet of two, updated one pod at a time (the higher ordinal first): each
    // stopping peer leaves the membership, the other leads alone, and the restarted peer
    // joins again before the next one stops.
    let mut c = Cluster::new(spec(2));
    c.spawn_all();
    let addrs: Vec<SocketAddr> = c.peers.iter().map(|p| p.http).collect();
    let (first, _) = c.agreed_leader(&[0, 1], STEP).await;
    c.members_converge(&[0, 1], &[0, 1], &[], STEP).await;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample(addrs, done.clone());
    let mut steps = vec![format!("peer-{first} leads")];
    for i in [1, 0] {
        let other = 1 - i;
        let t = Instant::now();
        c.stop(i).await;
        let (alone, _) = c.agreed_leader(&[other], STEP).await;
        assert_eq!(alone, other);
        c.members_converge(&[other], &[other], &[], STEP).await;
        c.spawn(i);
        c.members_converge(&[0, 1], &[0, 1], &[], STEP).await;
        let (leader, term) = c.agreed_leader(&[0, 1], STEP).await;
        steps.push(format!(
            "peer-{i} restarted in {:?}: peer-{leader} leads in term {term}",
            t.elapsed()
        ));
    }
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("sampler");
    let summary = timeline::check(&samples)
        .unwrap_or_else(|broken| panic!("two replicas: {broken}\n  {}", steps.join("\n  ")));
    // Throughout: after the first claim, the longest run of samples in which nobody claimed.
    let mut gap = Duration::ZERO;
    let mut last_claim: Option<Duration> = None;
    for s in &samples {
        if s.answers.iter().flatten().any(|a| a.is_leader) {
            if let Some(at) = last_claim {
                gap = gap.max(s.at - at);
            }
            last_claim = Some(s.at);
        }
    }
    eprintln!(
        "two replicas: {} samples, {} with a claim; longest time without a claim {gap:?}\n  {}",
        summary.samples,
        summary.with_leader,
        steps.join("\n  ")
    );
    // A hand-off takes milliseconds; a lost leader would show as at least an election timeout
    // plus the lease. Generous: a loaded machine stretches everything.
    assert!(
        gap < Duration::from_secs(2),
        "no claim for {gap:?}: the leader was lost\n  {}",
        steps.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_membership_flags_are_refused_with_a_clear_error() {
    let c = Cluster::new(Spec::new(EXE, 1));
    for (extra, says) in [
        (vec!["--witness"], "a witness cannot be the only peer"),
        (vec!["--max-voters", "4"], "--max-voters must be odd"),
        (
            vec!["--remove-unreachable-after", "5s"],
            "--remove-unreachable-after must be at least",
        ),
    ] {
        let mut cmd = c.command(0);
        let out = cmd.args(&extra).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} was accepted");
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_from_another_election_or_without_the_secret_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123").expect("secret");
    let other = dir.path().join("other");
    std::fs::write(&other, "another secret of 20b").expect("secret");
    let mut s = spec(5);
    s.flags.extend([
        "--peer-secret-file".to_string(),
        secret.display().to_string(),
    ]);
    let mut c = Cluster::new(s);
    c.first_cluster(&[0, 1, 2]);
    for i in 0..3 {
        c.spawn(i);
    }
    c.agreed_leader(&[0, 1, 2], STEP).await;
    // peer-3 has the wrong secret; peer-4 belongs to another election.
    for (i, election, secret) in [(3, "test", &other), (4, "other", &secret)] {
        let mut cmd = std::process::Command::new(EXE);
        cmd.args(["--election", election, "--id", &c.peers[i].name])
            .args(["--peers", &c.peer_list_among(&[0, 1, 2, i])])
            .arg("--data-dir")
            .arg(c.data_dir(i))
            .args(["--http", &c.peers[i].http.to_string()])
            .arg("--peer-secret-file")
            .arg(secret)
            .env_remove("HOSTNAME");
        c.procs.spawn(i, cmd);
    }
    let deadline = Instant::now() + STEP;
    loop {
        let mut refused = (0.0, 0.0);
        for i in 0..3 {
            let text = c
                .get(i, "/metrics")
                .await
                .map(|(_, t)| t)
                .unwrap_or_default();
            let auth = testkit::metric(&text, "raft_elector_joins_refused_total{reason=\"auth\"}");
            let election = testkit::metric(
                &text,
                "raft_elector_joins_refused_total{reason=\"election\"}",
            );
            refused.0 += auth.unwrap_or(0.0);
            refused.1 += election.unwrap_or(0.0);
        }
        if refused.0 > 0.0 && refused.1 > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "joins refused (auth, election): {refused:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.members_converge(&[0, 1, 2], &[0, 1, 2], &[], STEP).await;
}
