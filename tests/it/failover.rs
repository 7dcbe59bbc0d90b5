//! kill -9 of the leader: the survivors agree on a new leader with a higher term.

use std::time::{Duration, Instant};

use testkit::{Ask, Cluster};

use crate::spec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_elect_a_new_leader_after_kill_9() {
    let mut c = Cluster::start(spec(3));
    let (old, old_term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let survivors = c.all_but(old);

    let killed = Instant::now();
    c.kill(old);
    let (new, new_term) = c.agreed_leader(&survivors, Duration::from_secs(10)).await;
    eprintln!(
        "failover after kill -9: {} ms",
        killed.elapsed().as_millis()
    );
    assert_ne!(new, old);
    assert!(
        new_term > old_term,
        "term {new_term} is not above {old_term}"
    );
    let (_, metrics) = c.get(new, "/metrics").await.expect("metrics");
    let failed_rpcs = format!(
        "raft_elector_peer_rpc_errors_total{{peer=\"{}\"",
        c.peers[old].name
    );
    assert!(
        metrics.contains(&failed_rpcs),
        "no RPC errors counted towards the dead peer:\n{metrics}"
    );
    assert!(
        !metrics.contains("raft_elector_elections_started_total 0"),
        "the new leader campaigned:\n{metrics}"
    );

    // The killed peer comes back as a follower of the new leader, with a term not below it.
    c.spawn(old);
    let (again, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    assert!(term >= new_term);
    assert_ne!(
        again, old,
        "the restarted peer should not have taken over a healthy cluster"
    );
}
