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
