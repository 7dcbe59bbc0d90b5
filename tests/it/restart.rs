//! Restarts keep the term; a peer whose data is wiped does not bootstrap a second cluster.

use std::time::Duration;

use testkit::{Ask, Cluster};

use crate::spec;

async fn max_term(c: &Cluster) -> u64 {
    let answers = futures::future::join_all(c.running().into_iter().map(|i| c.ask(i))).await;
    answers
        .into_iter()
        .flatten()
        .map(|a| a.term)
        .max()
        .unwrap_or(0)
}

/// How every peer is ended before the restart.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// kill -9.
    Crash,
    /// SIGTERM, each peer after the other, each exiting 0 within its shutdown timeout.
    Stop,
}

/// Ends every peer, starts them all again with their data and waits for a leader; its term
/// must not be below `before`. Returns it.
async fn restart_all(c: &mut Cluster, ending: Ending, before: u64) -> u64 {
    for i in c.all() {
        match ending {
            Ending::Crash => c.kill(i),
            Ending::Stop => {
                c.stop(i).await;
            }
        }
    }
    c.spawn_all();
    let (_, after) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    assert!(
        after >= before,
        "after {ending:?}, the term went back from {before} to {after}"
    );
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_all_peers_keeps_terms_and_elects_again() {
    let mut c = Cluster::start(spec(3));
    c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    let before = max_term(&c).await;
    let after_crash = restart_all(&mut c, Ending::Crash, before).await;
    restart_all(&mut c, Ending::Stop, after_crash).await;
    for i in c.all() {
        let bootstraps = c.log_text(i).matches("bootstrapped a new cluster").count();
        assert!(bootstraps <= 1, "peer {i} bootstrapped {bootstraps} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_peer_rejoins_instead_of_bootstrapping_a_second_cluster() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let wiped = (leader + 1) % 3;
    c.kill(wiped);
    std::fs::remove_dir_all(c.data_dir(wiped)).expect("wipe");
    let earlier = c.log_text(wiped).len();
    c.spawn(wiped);

    let (now_leader, now_term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    assert!(now_term >= term);
    let others = c.all_but(wiped);
    assert!(
        others.contains(&now_leader),
        "the wiped peer must not lead a cluster of its own"
    );
    let log = c.log_text(wiped)[earlier..].to_string();
    assert!(
        log.contains("has a cluster already"),
        "no warning about the existing cluster:\n{log}"
    );
    assert!(!log.contains("bootstrapped a new cluster"));
}
