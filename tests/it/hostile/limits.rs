//! The limits of both listeners (src/node/listeners.rs), each one hit on a real peer: the
//! request-head timeout (5 s), the connection caps (1280 application, 256 peer), the body
//! limits (64 KiB application, 1 MiB peer) and the handler timeout (10 s). Meanwhile and
//! afterwards the peer answers, and the cluster's leader and term do not move (except where
//! the test stops the followers itself).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use testkit::raw::{self, closed_by_server, status_line, Ending};
use testkit::{Ask, Cluster};

use crate::spec;

const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const HANDLER_TIMEOUT: Duration = Duration::from_secs(10);
const APP_CONNECTIONS: usize = 1280;
const PEER_CONNECTIONS: usize = 256;
const APP_BODY: usize = 64 * 1024;
const PEER_BODY: usize = 1 << 20;

/// Headers that pass the peer listener's admission (election, sender, protocol) of a peer
/// other than `from`.
fn peer_headers(from: &str) -> String {
    format!(
        "x-raft-elector-election: test\r\nx-raft-elector-from: {from}\r\nx-raft-elector-protocol: 1\r\n"
    )
}

/// A three-peer cluster with an agreed leader; returns it, the leader, its term and a
/// follower to aim at.
async fn cluster_and_target() -> (Cluster, usize, u64, usize) {
    let c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    (c, leader, term, (leader + 1) % 3)
}

/// The target names the same leader in the same term.
async fn still_names(c: &Cluster, target: usize, leader: usize, term: u64) {
    let a = c.ask(target).await.expect("the peer answers");
    assert_eq!(
        (a.name.as_str(), a.term),
        (c.peers[leader].name.as_str(), term),
        "the peer's answer moved"
    );
}

/// The target still names the leader in the same term, and all three agree on it.
async fn nothing_moved(c: &Cluster, target: usize, leader: usize, term: u64) {
    still_names(c, target, leader, term).await;
    assert_eq!(
        c.agreed_leader(&[0, 1, 2], Duration::from_secs(5)).await,
        (leader, term)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off_by_the_peer_after_the_head_timeout() {
    let (c, leader, term, target) = cluster_and_target().await;
    let (app, peer) = (c.peers[target].http, c.peers[target].peer_addr);

    // Slow clients (slowloris) on both ports: each trickles a head that never ends, one byte
    // every 200 ms, and never closes its connection itself.
    let slow: Vec<(SocketAddr, std::thread::JoinHandle<Ending>)> = (0..20)
        .map(|i| {
            let addr = if i % 2 == 0 { app } else { peer };
            let head: &'static [u8] = b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ";
            let every = Duration::from_millis(200);
            let limit = HEAD_TIMEOUT * 4;
            (
                addr,
                std::thread::spawn(move || raw::trickle(addr, head, every, limit)),
            )
        })
        .collect();
    // Normal requests meanwhile, until every slow connection has ended.
    let mut asked = 0;
    while slow.iter().any(|(_, t)| !t.is_finished()) {
        let answers = futures::future::join_all((0..20).map(|_| c.ask(target))).await;
        for a in answers {
            let a = a.expect("the peer kept answering during the slowloris");
            assert_eq!(
                (a.name.as_str(), a.term),
                (c.peers[leader].name.as_str(), term)
            );
            asked += 1;
        }
    }
    for (addr, t) in slow {
        match t.join().expect("slow client") {
            Ending::ClosedByServer { after, answer } => {
                eprintln!("slow head to {addr}: closed by the peer after {after:?}, answer {:?}", status_line(&answer));
                assert!(
                    after >= HEAD_TIMEOUT - Duration::from_millis(500)
                        && after <= HEAD_TIMEOUT + Duration::from_secs(5),
                    "the slow head to {addr} was cut off after {after:?}, not at the {HEAD_TIMEOUT:?} head timeout"
                );
            }
            Ending::StillOpen { after } => panic!(
                "the peer kept a slow head to {addr} open for {after:?}: the {HEAD_TIMEOUT:?} head timeout did not fire"
            ),
        }
    }
    assert!(asked > 100, "only {asked} normal requests answered");
    nothing_moved(&c, target, leader, term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once_while_those_under_it_are_served() {
    let (c, leader, term, target) = cluster_and_target().await;
    let ports = [
        (
            "application",
            c.peers[target].http,
            APP_CONNECTIONS,
            "/v1/leader",
            String::new(),
        ),
        (
            "peer",
            c.peers[target].peer_addr,
            PEER_CONNECTIONS,
            "/raft/v1/status",
            peer_headers(&c.peers[leader].name),
        ),
    ];
    for (port, addr, cap, path, headers) in ports {
        // A few slots may be taken by connections the test kit's client or the other peers
        // keep open to this port.
        let slack = 32;
        let extra = 64;
        let opened = Instant::now();
        let (mut conns, made): (Vec<TcpStream>, Vec<Instant>) =
            raw::connect_many(addr, cap + extra).into_iter().unzip();
        let connected = opened.elapsed();
        // The peer closes the connections over the cap as it accepts them: note when each is
        // first seen closed.
        let mut closed_at: Vec<Option<Instant>> = vec![None; conns.len()];
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            for (s, at) in conns.iter().zip(closed_at.iter_mut()) {
                if at.is_none() && closed_by_server(s) {
                    *at = Some(Instant::now());
                }
            }
            let n = closed_at.iter().flatten().count();
            if n >= extra || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let open = closed_at.iter().filter(|c| c.is_none()).count();
        let first_closed = closed_at
            .iter()
            .position(Option::is_some)
            .unwrap_or(conns.len());
        // How long the longest-lived of the closed connections lived.
        let lived = made
            .iter()
            .zip(&closed_at)
            .filter_map(|(m, c)| c.map(|c| c.saturating_duration_since(*m)))
            .max()
            .unwrap_or_default();
        eprintln!(
            "{port} port: {} connections made in {connected:?}; {open} open, {} closed by the \
             peer, each within {lived:?} of being made; the first closed is #{first_closed}",
            conns.len(),
            conns.len() - open
        );
        assert!(
            open <= cap,
            "{open} connections stay open on the {port} port, over its cap of {cap}"
        );
        assert!(
            open + slack >= cap && first_closed + slack >= cap,
            "only {open} connections were served on the {port} port, the first closed one was \
             #{first_closed}; its cap is {cap}"
        );
        // A connection the head timeout closed would have lived 5 s.
        assert!(
            lived < HEAD_TIMEOUT - Duration::from_secs(1),
            "a connection over the cap lived {lived:?}: not closed at once, maybe only by the \
             head timeout"
        );
        // The connections under the cap are served: the last ones before the first closed.
        for s in conns[first_closed.saturating_sub(8)..first_closed].iter_mut() {
            let answer = raw::get_on(s, path, &headers, Duration::from_secs(5));
            assert!(
                status_line(&answer).starts_with("HTTP/1.1 200"),
                "a served connection on the {port} port did not answer {path}: {:?}",
                status_line(&answer)
            );
        }
        still_names(&c, target, leader, term).await;
        drop(conns);
        // Once the clients close theirs, new connections are served again.
        let request = raw::get_request(path, &headers);
        let answer = raw::exchange(addr, request.as_bytes(), Duration::from_secs(5));
        assert!(
            status_line(&answer).starts_with("HTTP/1.1 200"),
            "{port} port after the flood: {:?}",
            status_line(&answer)
        );
    }
    nothing_moved(&c, target, leader, term).await;
}

/// One request with a body, and the status it must get.
struct BodyCase {
    port: &'static str,
    addr: SocketAddr,
    path: &'static str,
    headers: String,
    /// The announced `Content-Length`.
    length: usize,
    /// How much of the body is sent (a refused body is refused before it is read).
    sent: usize,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused_with_413_and_bodies_at_the_limit_are_not() {
    let (c, leader, term, target) = cluster_and_target().await;
    let (app, peer) = (c.peers[target].http, c.peers[target].peer_addr);
    let admitted = peer_headers(&c.peers[leader].name);
    let case = |port, addr, path, headers: &str, length, sent, status| BodyCase {
        port,
        addr,
        path,
        headers: headers.to_string(),
        length,
        sent,
        status,
    };
    let cases = [
        // One byte over the limit: refused.
        case(
            "application",
            app,
            "/v1/resign",
            "",
            APP_BODY + 1,
            4096,
            413,
        ),
        case(
            "peer",
            peer,
            "/raft/v1/vote",
            &admitted,
            PEER_BODY + 1,
            4096,
            413,
        ),
        // Exactly at the limit: the handlers get it; a follower cannot resign (409), garbage
        // is no vote (400).
        case(
            "application",
            app,
            "/v1/resign",
            "",
            APP_BODY,
            APP_BODY,
            409,
        ),
        case(
            "peer",
            peer,
            "/raft/v1/vote",
            &admitted,
            PEER_BODY,
            PEER_BODY,
            400,
        ),
    ];
    for b in cases {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
            b.path, b.length, b.headers
        )
        .into_bytes();
        request.resize(request.len() + b.sent, 0xa5);
        let answer = raw::exchange(b.addr, &request, Duration::from_secs(5));
        assert!(
            status_line(&answer).contains(&format!(" {} ", b.status)),
            "{} port, a body of {} bytes: {:?}",
            b.port,
            b.length,
            status_line(&answer)
        );
    }
    nothing_moved(&c, target, leader, term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_running_over_the_handler_timeout_is_answered_503() {
    // A resignation may wait for the whole shutdown timeout (30 s here) for a peer to take
    // over; with both followers stopped nobody can, so the handler outlives its 10 s.
    let mut s = spec(3);
    s.flags.extend(["--shutdown-timeout".into(), "30s".into()]);
    let mut c = Cluster::start(s);
    let (leader, _) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let followers = c.all_but(leader);
    for &f in &followers {
        c.procs.pause(f);
    }
    let client = testkit::http::client(Duration::from_secs(60));
    let url = format!("http://{}/v1/resign", c.peers[leader].http);
    let started = Instant::now();
    let resign = tokio::spawn(async move {
        let resp = client
            .post(url)
            .send()
            .await
            .expect("an answer to POST /v1/resign");
        let status = resp.status().as_u16();
        (
            status,
            resp.text().await.unwrap_or_default(),
            started.elapsed(),
        )
    });
    // Meanwhile the application listener serves other requests.
    while !resign.is_finished() && started.elapsed() < HANDLER_TIMEOUT - Duration::from_secs(1) {
        let (status, _) = c
            .get(leader, "/healthz")
            .await
            .expect("healthz while resigning");
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body, took) = resign.await.expect("resign");
    eprintln!("POST /v1/resign with the followers stopped: {status} after {took:?}: {body:?}");
    assert_eq!(status, 503, "{body}");
    assert!(
        took >= HANDLER_TIMEOUT - Duration::from_millis(500)
            && took < HANDLER_TIMEOUT + Duration::from_secs(8),
        "answered after {took:?}, not at the {HANDLER_TIMEOUT:?} handler timeout"
    );
    // The product's own 503 (nobody took over) would come after the full 30 s, with a body.
    assert!(
        !body.contains("resigned"),
        "the handler answered itself: {body}"
    );

    for &f in &followers {
        c.procs.resume(f);
    }
    // The peer that was asked to resign answers, and the cluster agrees on a leader again.
    assert!(
        c.ask(leader).await.is_some(),
        "the resigning peer stopped answering"
    );
    let (now, _) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(15)).await;
    // The resignation cut short by the handler timeout did not bar that peer for good: handed
    // the leadership back (the third peer stopped, so that it is the only one to hand to), it
    // leads and says so.
    if now != leader {
        let third = 3 - now - leader;
        c.procs.pause(third);
        let client = testkit::http::client(Duration::from_secs(40));
        let url = format!("http://{}/v1/resign", c.peers[now].http);
        let resp = client.post(url).send().await.expect("resign");
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(&format!("\"{}\"", c.peers[leader].name)),
            "{body}"
        );
        c.procs.resume(third);
    }
    let (again, _) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(15)).await;
    assert_eq!(
        again, leader,
        "the peer whose resignation the handler timeout cut short does not lead again"
    );
}
