//! Hostile HTTP on both ports: malformed, oversized, slow and concurrent requests. The peer
//! keeps answering, and its term and leader do not move.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use testkit::{Ask, Cluster};

use crate::spec;

/// Sends raw bytes and returns what came back before the server closed or went quiet.
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_leave_the_election_alone() {
    let c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let target = (leader + 1) % 3;
    let (app, peer) = (c.peers[target].http, c.peers[target].peer_addr);

    // Malformed: not HTTP at all, on both ports.
    for addr in [app, peer] {
        let answer = raw(addr, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n");
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
        let answer = raw(addr, huge.as_bytes());
        assert!(
            answer.is_empty() || status_line(&answer).contains("431"),
            "{:?}",
            status_line(&answer)
        );
    }
    // Oversized bodies (announced with a content length over the limit).
    let body = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\nx-raft-elector-election: test\r\n\
             x-raft-elector-from: peer-0\r\nx-raft-elector-protocol: 1\r\nConnection: close\r\n\r\n{}",
            "z".repeat(4096)
        )
    };
    assert!(status_line(&raw(app, body("/v1/resign").as_bytes())).contains("413"));
    assert!(status_line(&raw(peer, body("/raft/v1/vote").as_bytes())).contains("413"));
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

    // Slow clients (slowloris): many connections trickling a request head, while the peer
    // must keep answering normal requests.
    let slow: Vec<std::thread::JoinHandle<()>> = (0..40)
        .map(|i| {
            let addr = if i % 2 == 0 { app } else { peer };
            std::thread::spawn(move || {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    return;
                };
                let until = Instant::now() + Duration::from_secs(3);
                for b in b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ".iter().cycle() {
                    if Instant::now() > until || s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    // Concurrent normal requests meanwhile.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let answers = futures::future::join_all((0..50).map(|_| c.ask(target))).await;
        for a in answers {
            let a = a.expect("the peer kept answering");
            assert_eq!(
                (a.name.as_str(), a.term),
                (c.peers[leader].name.as_str(), term)
            );
        }
    }
    for t in slow {
        let _ = t.join();
    }
    // Nothing moved.
    assert_eq!(
        c.agreed_leader(&[0, 1, 2], Duration::from_secs(5)).await,
        (leader, term)
    );
}
