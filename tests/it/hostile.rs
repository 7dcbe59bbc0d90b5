//! Hostile HTTP on both ports: malformed requests, heads over the size limit, garbage bodies on
//! every peer RPC. The peer refuses each, keeps answering, and its term and leader do not move.
//! The listeners' limits (slow heads, connection caps, body sizes, handler time), each one hit,
//! are in [`limits`].

mod limits;

use std::time::Duration;

use testkit::raw::{exchange, status_line};
use testkit::{Ask, Cluster};

use crate::spec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_leave_the_election_alone() {
    let c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let target = (leader + 1) % 3;
    let (app, peer) = (c.peers[target].http, c.peers[target].peer_addr);
    let quiet = Duration::from_secs(3);

    // Malformed: not HTTP at all, on both ports.
    for addr in [app, peer] {
        let answer = exchange(addr, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n", quiet);
        assert!(
            answer.is_empty() || status_line(&answer).contains("400"),
            "{answer:?}"
        );
    }
    // A request head far over the limit.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    for addr in [app, peer] {
        let answer = exchange(addr, huge.as_bytes(), quiet);
        assert!(
            answer.is_empty() || status_line(&answer).contains("431"),
            "{:?}",
            status_line(&answer)
        );
    }
    // Garbage bodies of a fitting size on every peer RPC.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for path in ["append", "vote", "snapshot", "handoff", "prevote"] {
        let resp = client
            .post(format!("http://{peer}/raft/v1/{path}"))
            .header("x-raft-elector-election", "test")
            .header("x-raft-elector-from", c.peers[leader].name.as_str())
            .header("x-raft-elector-protocol", "1")
            .body(vec![0xa5u8; 300])
            .send()
            .await
            .expect("response");
        assert_eq!(resp.status().as_u16(), 400, "{path}");
    }
    // Nothing moved.
    let a = c.ask(target).await.expect("the peer answers");
    assert_eq!(
        (a.name.as_str(), a.term),
        (c.peers[leader].name.as_str(), term)
    );
    assert_eq!(
        c.agreed_leader(&[0, 1, 2], Duration::from_secs(5)).await,
        (leader, term)
    );
}
