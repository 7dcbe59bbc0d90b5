//! The fault proxies against an echo server on loopback.

use super::*;

const HEADER: &str = "x-sender";

/// An echo server behind the proxy of peer 1; returns the net and the proxy's address.
async fn echo_behind_proxy() -> (Net, SocketAddr) {
    let (net, proxy, _) = echo_behind_proxy_heard().await;
    (net, proxy)
}

/// Like [`echo_behind_proxy`], and also what the echo server received, chunk by chunk.
async fn echo_behind_proxy_heard() -> (Net, SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = echo.local_addr().expect("addr");
    let (heard, hearing) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = echo.accept().await {
            let heard = heard.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    let _ = heard.send(buf[..n].to_vec());
                    if conn.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let listen = crate::ports::free_addr();
    let net = Net::start(Proxies {
        names: vec!["a".into(), "b".into()],
        sender_header: HEADER.into(),
        by_process: false,
        listen: vec![crate::ports::free_addr(), listen],
        target: vec![crate::ports::free_addr(), target],
    })
    .expect("proxies");
    (net, listen, hearing)
}

/// Connects to the proxy as peer "a" and reads the echoed request head back.
async fn connect_as_a(proxy: SocketAddr) -> TcpStream {
    let mut conn = TcpStream::connect(proxy).await.expect("connect");
    let head = format!("GET / HTTP/1.1\r\n{HEADER}: a\r\n\r\n");
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut echoed = vec![0u8; head.len()];
    conn.read_exact(&mut echoed).await.expect("echo");
    assert_eq!(echoed, head.as_bytes());
    conn
}

/// Long enough for a byte to cross loopback and a proxy.
const SOON: Duration = Duration::from_secs(2);
/// How long a held byte must stay away.
const QUIET: Duration = Duration::from_millis(200);

/// The next `len` bytes echoed back on `conn`, if they come within `within`.
async fn echoed(conn: &mut TcpStream, len: usize, within: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    tokio::time::timeout(within, conn.read_exact(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(buf)
}

#[tokio::test]
async fn a_dropped_link_holds_bytes_until_it_opens() {
    let (net, proxy) = echo_behind_proxy().await;
    let mut conn = connect_as_a(proxy).await;

    net.cut(&[0], &[1], Mode::Drop);
    conn.write_all(b"ping").await.expect("write");
    let held = echoed(&mut conn, 4, QUIET).await;
    assert_eq!(held, None, "bytes crossed a cut link");

    net.heal();
    let released = echoed(&mut conn, 4, SOON).await;
    assert_eq!(
        released.as_deref(),
        Some(&b"ping"[..]),
        "released when the link opened"
    );
}

#[tokio::test]
async fn a_lost_direction_is_held_while_the_other_flows() {
    let (net, proxy, mut heard) = echo_behind_proxy_heard().await;
    let mut conn = connect_as_a(proxy).await;
    while heard.try_recv().is_ok() {}

    // b's answers to a are lost: a's bytes still reach b, b's echo does not come back.
    net.lose(1, 0, true);
    conn.write_all(b"ping").await.expect("write");
    let got = tokio::time::timeout(SOON, heard.recv()).await;
    assert_eq!(got, Ok(Some(b"ping".to_vec())), "a's bytes reached b");
    let held = echoed(&mut conn, 4, QUIET).await;
    assert_eq!(held, None, "b's answer crossed a lost direction");
    net.lose(1, 0, false);
    let released = echoed(&mut conn, 4, SOON).await;
    assert_eq!(
        released.as_deref(),
        Some(&b"ping"[..]),
        "released when the loss ended"
    );

    // a's requests to b are lost: nothing reaches b until heal.
    net.lose(0, 1, true);
    conn.write_all(b"pong").await.expect("write");
    let reached = tokio::time::timeout(QUIET, heard.recv()).await;
    assert!(reached.is_err(), "a's bytes crossed a lost direction");
    net.heal();
    let released = echoed(&mut conn, 4, SOON).await;
    assert_eq!(released.as_deref(), Some(&b"pong"[..]), "released by heal");
}

#[tokio::test]
async fn only_the_direction_cut_is_cut() {
    let (net, proxy) = echo_behind_proxy().await;
    // b→a is cut; a→b (this connection's direction) stays open.
    net.set(
        1,
        0,
        LinkState {
            mode: Mode::Reject,
            delay: Duration::ZERO,
        },
    );
    let mut conn = connect_as_a(proxy).await;
    conn.write_all(b"pong").await.expect("write");
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.expect("echo");
    assert_eq!(&buf, b"pong");
}

#[tokio::test]
async fn a_rejected_link_resets_connections_and_unknown_senders_are_dropped() {
    let (net, proxy) = echo_behind_proxy().await;
    let mut conn = connect_as_a(proxy).await;
    net.cut(&[0], &[1], Mode::Reject);
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf))
        .await
        .expect("closed at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    net.heal();
    let mut stranger = TcpStream::connect(proxy).await.expect("connect");
    stranger
        .write_all(format!("GET / HTTP/1.1\r\n{HEADER}: z\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let read = tokio::time::timeout(Duration::from_secs(2), stranger.read(&mut buf))
        .await
        .expect("closed at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_slow_peer_gets_its_delay_each_way() {
    let (net, proxy) = echo_behind_proxy().await;
    let mut conn = connect_as_a(proxy).await;
    net.slow(1, Duration::from_millis(100));
    let t0 = Instant::now();
    conn.write_all(b"slow").await.expect("write");
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.expect("echo");
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t0.elapsed()
    );
}
