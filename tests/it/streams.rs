//! Peer streams against real peers: a stream opened by hand answers calls; a hostile one
//! (garbage, a frame over the bound, a replayed frame, a frame the opener may not send,
//! another election, a peer that stops reading) is refused or cut off and counted, and the
//! election does not move.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use raft_elector::peer::auth::{self, PeerAuth, Signed};
use raft_elector::peer::frames::{self, Ends, Head, Session, MAX_FRAME};
use raft_elector::peer::protocol::{self, PeerStatus};
use raft_elector::peer::server::stream::codec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use testkit::{Ask, Cluster};

use crate::spec;

const SECRET: &str = "stream-test-secret-0123456789";

/// A stream opened by hand, as peer `from` would open it.
struct Opened {
    framed: Framed<TcpStream, LengthDelimitedCodec>,
    session: Session,
}

struct Opener<'a> {
    addr: SocketAddr,
    election: &'a str,
    from: &'a str,
    to: &'a str,
    /// A small receive buffer, for a peer that stops reading.
    recv_buffer: Option<u32>,
}

impl Opener<'_> {
    /// The handshake; the status of the answer when it is not 101.
    async fn open(&self) -> Result<Opened, u16> {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = self.recv_buffer {
            socket.set_recv_buffer_size(size).expect("receive buffer");
        }
        let mut tcp = socket.connect(self.addr).await.expect("connect");
        let client_nonce = frames::nonce();
        let path = format!(
            "{}?nonce={}",
            protocol::STREAM_PATH,
            hex::encode(client_nonce)
        );
        let time_ms = auth::now_ms();
        let peer_auth = PeerAuth::new(SECRET.as_bytes(), Duration::from_secs(30)).expect("secret");
        let signed = Signed {
            method: "GET",
            path: &path,
            election: self.election,
            from: self.from,
            to: self.to,
            time_ms,
        };
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: upgrade\r\nUpgrade: {}\r\n\
             {}: {}\r\n{}: {}\r\n{}: {}\r\n{}: {}\r\n{}: {time_ms}\r\n{}: {}\r\n\r\n",
            self.addr,
            protocol::STREAM_UPGRADE,
            protocol::ELECTION_HEADER,
            self.election,
            protocol::FROM_HEADER,
            self.from,
            protocol::PROTOCOL_HEADER,
            protocol::PROTOCOL_VERSION,
            auth::TO_HEADER,
            self.to,
            auth::TIME_HEADER,
            auth::MAC_HEADER,
            peer_auth.sign(&signed, b""),
        );
        tcp.write_all(head.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = tcp.read(&mut byte).await.expect("read the answer");
            assert_eq!(n, 1, "connection closed in the handshake: {answer:?}");
            answer.push(byte[0]);
        }
        let answer = String::from_utf8_lossy(&answer).to_string();
        let status: u16 = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        if status != 101 {
            return Err(status);
        }
        let server_nonce = answer
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{}: ", protocol::NONCE_HEADER)))
            .and_then(frames::parse_nonce)
            .expect("the accepting peer's nonce");
        let session = Session::client(
            Some(&peer_auth),
            &Ends {
                election: self.election,
                client: self.from,
                server: self.to,
                client_nonce: &client_nonce,
                server_nonce: &server_nonce,
            },
        );
        Ok(Opened {
            framed: Framed::new(tcp, codec()),
            session,
        })
    }
}

impl Opened {
    fn status_call(&mut self, id: u64) -> Bytes {
        let call = Head::Call {
            id,
            path: protocol::STATUS_PATH.into(),
        };
        self.session.seal(&call, &[])
    }

    /// The next answer's head and body, or `None` when the peer closed the connection.
    async fn answer(&mut self) -> Option<(Head, Bytes)> {
        let frame = tokio::time::timeout(Duration::from_secs(5), self.framed.next())
            .await
            .expect("an answer or the end within 5 s")?
            .ok()?;
        Some(self.session.open(&frame).expect("a good frame"))
    }

    /// Waits until the peer closes the connection.
    async fn closed(mut self) {
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = self.framed.next().await {}
        });
        ended
            .await
            .expect("the peer closes the connection within 5 s");
    }
}

async fn refused(c: &Cluster, i: usize, reason: &str) -> f64 {
    let name = format!("raft_elector_peer_requests_refused_total{{reason=\"{reason}\"}}");
    c.metric(i, &name).await.unwrap_or(0.0)
}

/// Waits until peer `i` counted `reason` `at_least` times.
async fn counted(c: &Cluster, i: usize, reason: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = refused(c, i, reason).await;
        if n >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peer-{i} counted {n} refusals {reason:?}, expected {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_stream_is_cut_off_and_counted_and_the_election_stays_put() {
    let mut c = Cluster::new(spec(3));
    let secret = c.dir().join("secret");
    std::fs::write(&secret, SECRET).expect("write the secret");
    for p in &mut c.peers {
        p.extra = vec![
            "--peer-secret-file".into(),
            secret.to_str().expect("utf-8").into(),
        ];
    }
    c.spawn_all();
    let all = [0, 1, 2];
    let (leader, term) = c.agreed_leader(&all, Duration::from_secs(10)).await;
    let target = (leader + 1) % 3;
    // The leader's heartbeats reach the target over a stream.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.metric(target, "raft_elector_peer_streams").await < Some(1.0) {
        assert!(Instant::now() < deadline, "no stream from the leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A name no running peer has (without --statefulset any valid name may speak): a stream
    // of a running peer would replace the test's, as a restarted peer's does.
    let (to, from) = (c.peers[target].name.clone(), "peer-9".to_string());
    let opener = Opener {
        addr: c.peers[target].peer_addr,
        election: "test",
        from: &from,
        to: &to,
        recv_buffer: None,
    };

    // A good stream: calls are answered.
    let mut s = opener.open().await.expect("the handshake");
    let call = s.status_call(1);
    s.framed.send(call.clone()).await.expect("send");
    match s.answer().await.expect("an answer") {
        (Head::Answer { id: 1, status: 200 }, body) => {
            let status: PeerStatus = raft_elector::wire::decode(&body).expect("a status");
            assert_eq!(status.peer, to);
        }
        other => panic!("unexpected {other:?}"),
    }
    // The same frame again is a replay: the connection is closed, and counted.
    s.framed.send(call).await.expect("send");
    s.closed().await;
    counted(&c, target, "frame-auth", 1.0).await;

    // Garbage after the handshake.
    let mut s = opener.open().await.expect("the handshake");
    s.framed
        .send(Bytes::from(vec![0xa5u8; 300]))
        .await
        .expect("send");
    s.closed().await;
    counted(&c, target, "frame-auth", 2.0).await;

    // A well-sealed frame the opener may not send (answers come from the accepting side).
    let mut s = opener.open().await.expect("the handshake");
    let answer = s.session.seal(&Head::Answer { id: 1, status: 200 }, &[]);
    s.framed.send(answer).await.expect("send");
    s.closed().await;
    counted(&c, target, "frame", 1.0).await;

    // A frame over the bound: refused from its length alone.
    let s = opener.open().await.expect("the handshake");
    let mut tcp = s.framed.into_inner();
    let len = u32::try_from(MAX_FRAME + 1).expect("fits");
    tcp.write_all(&len.to_be_bytes()).await.expect("write");
    tcp.write_all(&[0u8; 4096]).await.expect("write");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection stays open");
    counted(&c, target, "frame", 2.0).await;

    // Another election: refused at the handshake, before any frame.
    let other = Opener {
        election: "other",
        ..opener
    };
    assert_eq!(other.open().await.err(), Some(403));
    counted(&c, target, "election", 1.0).await;

    // A peer that sends calls and stops reading the answers: cut off once an answer cannot
    // be written for the stall bound.
    let slow = Opener {
        recv_buffer: Some(4096),
        ..opener
    };
    let mut s = slow.open().await.expect("the handshake");
    // Calls go on until the target cuts the connection. The target's send buffer for peers is
    // fixed (PEER_SEND_BUFFER), so its answers soon fill it; with the kernel's autotuning the
    // buffer grew to MiBs first, and twice a loaded CI machine did not stall it within 60 s.
    let flood = async {
        let mut id = 0;
        loop {
            let call = s.status_call(id);
            if s.framed.send(call).await.is_err() {
                break;
            }
            id += 1;
        }
    };
    let cut_off = async {
        while refused(&c, target, "stalled").await < 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            _ = cut_off => {}
            _ = flood => counted(&c, target, "stalled", 1.0).await,
        }
    })
    .await
    .expect("the target counted the stalled stream within 60 s");
    drop(s);

    // Through all of it: the same leader in the same term, and the target still follows it.
    assert_eq!(
        c.agreed_leader(&all, Duration::from_secs(5)).await,
        (leader, term)
    );
    let a = c.ask(target).await.expect("the target answers");
    assert_eq!(
        (a.name.as_str(), a.term),
        (c.peers[leader].name.as_str(), term)
    );
}
