//! Three peers started together elect one leader that every peer names.

use std::time::Duration;

use testkit::{Ask, Cluster};

use crate::spec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_elect_one_leader_that_all_name() {
    let c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let leader_name = c.peers[leader].name.clone();
    assert!(term >= 1);

    for i in 0..3 {
        // The old sidecar's answer on any other path; nais/elector's on / (old clients read
        // only `name`).
        let (status, body) = c.get(i, "/some/other/path").await.expect("answer");
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(json, serde_json::json!({ "name": leader_name }), "peer {i}");
        let (status, body) = c.get(i, "/").await.expect("answer");
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(json["name"], leader_name.as_str(), "/ on peer {i}");
        assert!(json["last_update"].is_string(), "/ on peer {i}: {json}");
        let (_, body) = c.get(i, "/isLeader").await.expect("answer");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(json, serde_json::json!({ "isLeader": i == leader }));

        let answer = c.ask(i).await.expect("answer");
        assert_eq!(
            (answer.name.as_str(), answer.term, answer.is_leader),
            (leader_name.as_str(), term, i == leader)
        );
        assert_eq!(answer.id, c.peers[i].name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_peers_elect_one_leader() {
    let c = Cluster::start(spec(5));
    let (leader, _) = c
        .agreed_leader(&[0, 1, 2, 3, 4], Duration::from_secs(10))
        .await;
    let claims = futures::future::join_all((0..5).map(|i| c.ask(i))).await;
    let leaders: Vec<usize> = (0..5)
        .filter(|&i| claims[i].as_ref().is_some_and(|a| a.is_leader))
        .collect();
    assert_eq!(leaders, vec![leader]);
}

/// With short election timeouts openraft keeps its own heartbeat period: put on the 64 ms
/// timer grid, a 60 ms lease (`--election-timeout-max 80ms`) would never see a heartbeat sent
/// leased, and no follower would ever name the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_short_election_timeouts_the_followers_name_a_leader() {
    let mut s = spec(3);
    s.flags.extend(
        [
            "--heartbeat",
            "10ms",
            "--election-timeout-min",
            "40ms",
            "--election-timeout-max",
            "80ms",
        ]
        .map(String::from),
    );
    let c = Cluster::start(s);
    let (leader, _) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    // Sampled for a second: the followers name a leader nearly all the time (a loaded
    // machine may delay a heartbeat past the short lease now and then). With the grid's
    // period they named one in 29 % of their answers, only just after each of the elections
    // that followed one another.
    let (mut asked, mut named) = (0, 0);
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < until {
        for i in (0..3).filter(|i| *i != leader) {
            if let Some(a) = c.ask(i).await {
                asked += 1;
                named += usize::from(!a.name.is_empty());
            }
        }
    }
    assert!(
        asked > 0 && named * 5 >= asked * 4,
        "followers named a leader in {named} of {asked} answers"
    );
}
