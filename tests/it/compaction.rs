//! Leadership can be resigned on request, and the log stays short however many elections
//! happen: snapshots and purging keep it (and the disk) flat.

use std::time::Duration;

use testkit::{metric, Ask, Cluster};

use crate::spec;

fn gauge(text: &str, name: &str) -> i64 {
    metric(text, name).unwrap_or_else(|| panic!("{name} missing:\n{text}")) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_elections_leave_a_short_log() {
    let mut spec = spec(3);
    spec.flags = vec!["--snapshot-logs".into(), "10".into()];
    let c = Cluster::start(spec);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut last_term = 0;
    let mut changes = 0;
    for _ in 0..80 {
        if changes >= 40 {
            break;
        }
        let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
        if term > last_term {
            changes += 1;
        }
        last_term = term;
        // A follower cannot resign.
        let follower = (leader + 1) % 3;
        let resp = client
            .post(format!("http://{}/v1/resign", c.peers[follower].http))
            .send()
            .await
            .expect("resign");
        assert_eq!(resp.status().as_u16(), 409);
        let resp = client
            .post(format!("http://{}/v1/resign", c.peers[leader].http))
            .send()
            .await
            .expect("resign");
        // 503: nobody took over in time (a loaded machine); the leader then simply stays.
        let status = resp.status().as_u16();
        assert!(
            matches!(status, 200 | 503),
            "{status}: {:?}",
            resp.text().await
        );
    }
    assert!(changes >= 40, "only {changes} leader changes");
    for i in 0..3 {
        let (_, text) = c.get(i, "/metrics").await.expect("metrics");
        let (last, purged) = (
            gauge(&text, "raft_elector_last_log_index"),
            gauge(&text, "raft_elector_purged_index"),
        );
        assert!(last >= 40, "peer {i}: last log index {last}");
        assert!(purged >= 10, "peer {i}: nothing purged (last {last})");
        assert!(
            last - purged <= 25,
            "peer {i}: {} entries kept",
            last - purged
        );
    }
}
