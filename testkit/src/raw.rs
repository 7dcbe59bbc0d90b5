//! Raw TCP exchanges with a peer's listeners, for the tests of hostile clients: bytes sent as
//! they are (malformed, oversized, trickled), what came back, and whether the server closed a
//! connection the client kept open.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connects to `addr`; panics if it cannot (the listener must accept at the TCP level).
pub fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Opens `n` connections to `addr`, in batches small enough for the listener's accept queue:
/// after each batch, waits until the peer has accepted them all, so that no handshake is
/// dropped and retried a second later. Returns each connection with the moment it was made.
pub fn connect_many(addr: SocketAddr, n: usize) -> Vec<(TcpStream, Instant)> {
    const BATCH: usize = 32;
    let mut conns = Vec::with_capacity(n);
    while conns.len() < n {
        for _ in 0..BATCH.min(n - conns.len()) {
            let s = connect(addr);
            conns.push((s, Instant::now()));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while accept_queue(addr).is_some_and(|q| q > 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    conns
}

/// How many connections wait in the accept queue of the IPv4 listener at `addr`, from
/// /proc/net/tcp (its receive-queue column, for a listening socket); `None` if not found.
pub fn accept_queue(addr: SocketAddr) -> Option<usize> {
    let SocketAddr::V4(addr) = addr else {
        return None;
    };
    const LISTEN: &str = "0A";
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, queues) = (fields.get(1)?, fields.get(3)?, fields.get(4)?);
        let (ip, port) = local.split_once(':')?;
        // The kernel prints the address as a number in the machine's byte order.
        let ip = std::net::Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes());
        let port = u16::from_str_radix(port, 16).ok()?;
        let listening = *state == LISTEN && port == addr.port();
        let here = ip == *addr.ip() || ip.is_unspecified();
        if !(listening && here) {
            return None;
        }
        let (_, rx) = queues.split_once(':')?;
        usize::from_str_radix(rx, 16).ok()
    })
}

/// Sends `bytes` on a new connection and returns what came back before the server closed the
/// connection or stayed quiet for `quiet`. A write the server cut short is not an error: the
/// answer it sent first is what matters.
pub fn exchange(addr: SocketAddr, bytes: &[u8], quiet: Duration) -> String {
    let mut s = connect(addr);
    s.set_read_timeout(Some(quiet)).expect("read timeout");
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The first line of an HTTP answer (`""` when there was none).
pub fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

/// Whether the server has closed `s` (end of stream or reset), looking without waiting. Bytes
/// the server sent are left in place.
pub fn closed_by_server(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("non-blocking");
    let mut byte = [0u8; 1];
    let closed = match s.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    s.set_nonblocking(false).expect("blocking");
    closed
}

/// How a connection the client kept open ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The server closed it (end of stream or reset) this long after it was opened, having
    /// sent `answer` first (often nothing).
    ClosedByServer { after: Duration, answer: String },
    /// Still open when the client stopped waiting.
    StillOpen { after: Duration },
}

/// Opens a connection to `addr` and writes `head` one byte every `every` (cycling through it,
/// so the head never ends) until the server closes the connection or `limit` passes. The
/// client never closes it first.
pub fn trickle(addr: SocketAddr, head: &'static [u8], every: Duration, limit: Duration) -> Ending {
    let stream = connect(addr);
    let opened = Instant::now();
    let mut writer = stream.try_clone().expect("clone the socket");
    let stop = Arc::new(AtomicBool::new(false));
    let writing = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            for b in head.iter().cycle() {
                if stop.load(Ordering::SeqCst) || writer.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(every);
            }
        })
    };
    let ending = read_until_closed(&stream, opened, limit);
    stop.store(true, Ordering::SeqCst);
    let _ = writing.join();
    ending
}

/// Reads whatever the server sends on `s` until it closes the connection or `limit` (counted
/// from `opened`) passes.
pub fn read_until_closed(s: &TcpStream, opened: Instant, limit: Duration) -> Ending {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut reader = s;
    loop {
        let left = limit.saturating_sub(opened.elapsed());
        if left.is_zero() {
            return Ending::StillOpen {
                after: opened.elapsed(),
            };
        }
        reader.set_read_timeout(Some(left)).expect("read timeout");
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Ending::ClosedByServer {
        after: opened.elapsed(),
        answer: String::from_utf8_lossy(&answer).into_owned(),
    }
}

/// A `GET path` request with extra `headers` (each ending in `\r\n`) that asks the server
/// to close the connection after answering.
pub fn get_request(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n")
}

/// Sends [`get_request`] on an open connection and returns the answer.
pub fn get_on(s: &mut TcpStream, path: &str, headers: &str, quiet: Duration) -> String {
    s.set_read_timeout(Some(quiet)).expect("read timeout");
    let request = get_request(path, headers);
    if s.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_queue_of_a_listener_is_read_from_the_kernel() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        assert_eq!(accept_queue(addr), Some(0));
        let _waiting: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
        assert_eq!(accept_queue(addr), Some(3));
        let _ = listener.accept().expect("accept");
        assert_eq!(accept_queue(addr), Some(2));
        drop(listener);
        assert_eq!(accept_queue(addr), None);
    }
}
