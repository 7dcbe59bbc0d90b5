//! Peer authentication: peers with the election's secret form a cluster; a peer with another
//! secret is refused before anything it sends is decoded, and cannot steer the election.

use std::time::{Duration, Instant};

use testkit::{metric, Ask, Cluster};

use crate::{secret_file, spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_peers_with_the_secret_take_part() {
    let mut c = Cluster::new(spec(3));
    let good = secret_file(&c, "good", "correct horse battery staple");
    let bad = secret_file(&c, "bad", "a different secret altogether");
    for i in 0..2 {
        c.peers[i].extra = vec!["--peer-secret-file".into(), good.clone()];
    }
    c.peers[2].extra = vec!["--peer-secret-file".into(), bad];
    c.spawn_all();
    let (leader, term) = c.agreed_leader(&[0, 1], Duration::from_secs(10)).await;
    assert!(leader < 2);

    // The outsider never learns who leads, and its refused requests are counted.
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        let a = c.ask(2).await.expect("answer");
        assert!(a.name.is_empty() && !a.is_leader, "outsider: {a:?}");
    }
    let (_, metrics) = c.get(leader, "/metrics").await.expect("metrics");
    let refused = metric(
        &metrics,
        "raft_elector_peer_requests_refused_total{reason=\"auth\"}",
    );
    assert!(
        refused.is_some_and(|n| n >= 1.0),
        "auth refusals not counted:\n{metrics}"
    );
    // The two insiders are undisturbed (the outsider cannot raise their term).
    assert_eq!(
        c.agreed_leader(&[0, 1], Duration::from_secs(5)).await,
        (leader, term)
    );

    // An unauthenticated request straight to a peer port is refused too.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/raft/v1/vote", c.peers[0].peer_addr))
        .header("x-raft-elector-election", "test")
        .header("x-raft-elector-from", "peer-1")
        .header("x-raft-elector-protocol", "1")
        .body(Vec::<u8>::new())
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status().as_u16(), 401);
}
