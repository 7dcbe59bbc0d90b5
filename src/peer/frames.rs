//! The peer stream's frames: what travels on the one long-lived connection between two peers
//! once its handshake ([`super::stream`]) succeeded, and how each frame is sealed.
//!
//! A frame is what one HTTP request or answer of the per-message protocol carried, without
//! the headers: a head ([`Head`], bincode) followed by the body as it is. The length prefix is
//! the codec's ([`tokio_util::codec::LengthDelimitedCodec`], bounded by [`MAX_FRAME`]).
//!
//! With a peer secret, each direction of a connection has a key of its own, derived from the
//! secret, both peers' names and both nonces of the handshake; every frame ends with the
//! HMAC-SHA256, under its direction's key, of its sequence number (counted by both sides,
//! never sent) and its bytes. So a frame cannot be altered, replayed, reordered, dropped
//! unnoticed, sent back to its sender or moved to another connection, and the per-frame cost
//! is one MAC: no headers, no timestamps, no replay cache.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::auth::PeerAuth;
use crate::wire::MAX_MESSAGE;

/// Bytes of the MAC that ends a sealed frame.
pub const MAC_LEN: usize = 32;
/// Largest frame (length prefix excluded): a message at the bound, its head and MAC.
pub const MAX_FRAME: usize = MAX_MESSAGE + 1024;
/// Longest path a call may name.
pub const MAX_PATH: usize = 128;
/// Bytes of each side's handshake nonce.
pub const NONCE_LEN: usize = 16;

/// What a frame is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Head {
    /// A request of the peer that opened the connection, as it would have been sent over
    /// HTTP to `path` (with its query); the body follows.
    Call {
        id: u64,
        path: String,
    },
    /// The answer to call `id`: with status 200 the body is the bincode answer, with any other
    /// the body is a one-line reason.
    Answer {
        id: u64,
        status: u16,
    },
    /// "Are you there?": sent by the opening peer while it waits for answers and hears
    /// nothing; answered at once by [`Head::Pong`]. An idle connection sends neither.
    Ping,
    Pong,
}

/// A frame that could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes is shorter than its MAC")]
    Short(usize),
    #[error("bad frame MAC: altered, replayed, reordered or from another connection")]
    BadMac,
    #[error("malformed frame head: {0}")]
    Malformed(String),
    #[error("a call's path of {0} bytes is longer than {MAX_PATH}")]
    LongPath(usize),
    #[error("{0} has a body")]
    UnexpectedBody(&'static str),
}

impl FrameError {
    /// The label under which a refusal is counted.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::BadMac => "frame-auth",
            _ => "frame",
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// One direction of a connection: its key (if any) and the number of the next frame.
#[derive(Clone)]
pub struct Direction {
    mac: Option<HmacSha256>,
    seq: u64,
}

impl Direction {
    fn new(key: Option<[u8; 32]>) -> Self {
        Direction {
            // HMAC accepts keys of any length, so this cannot fail.
            mac: key.map(|k| HmacSha256::new_from_slice(&k).expect("HMAC takes any key length")),
            seq: 0,
        }
    }

    fn tag(&self, bytes: &[u8]) -> Option<[u8; MAC_LEN]> {
        let mut mac = self.mac.clone()?;
        mac.update(&self.seq.to_le_bytes());
        mac.update(bytes);
        Some(mac.finalize().into_bytes().into())
    }
}

/// Both directions of one end of a connection.
#[derive(Clone)]
pub struct Session {
    send: Direction,
    recv: Direction,
}

/// Who is who in a connection's key derivation.
#[derive(Debug, Clone, Copy)]
pub struct Ends<'a> {
    pub election: &'a str,
    /// The peer that opened the connection (it sends the calls).
    pub client: &'a str,
    /// The peer that accepted it.
    pub server: &'a str,
    pub client_nonce: &'a [u8; NONCE_LEN],
    pub server_nonce: &'a [u8; NONCE_LEN],
}

impl Ends<'_> {
    fn keys(&self, auth: &PeerAuth) -> ([u8; 32], [u8; 32]) {
        let context = format!(
            "{}\n{}\n{}\n{}\n{}\n",
            self.election,
            self.client,
            self.server,
            hex::encode(self.client_nonce),
            hex::encode(self.server_nonce)
        );
        let up = auth.derive(&[b"client-to-server\n", context.as_bytes()].concat());
        let down = auth.derive(&[b"server-to-client\n", context.as_bytes()].concat());
        (up, down)
    }
}

impl Session {
    /// Frames as they are, without MACs (no peer secret).
    pub fn plain() -> Self {
        Session {
            send: Direction::new(None),
            recv: Direction::new(None),
        }
    }

    /// The opening peer's end; plain without a secret.
    pub fn client(auth: Option<&PeerAuth>, ends: &Ends<'_>) -> Self {
        match auth.map(|a| ends.keys(a)) {
            Some((up, down)) => Session {
                send: Direction::new(Some(up)),
                recv: Direction::new(Some(down)),
            },
            None => Session::plain(),
        }
    }

    /// The accepting peer's end; plain without a secret.
    pub fn server(auth: Option<&PeerAuth>, ends: &Ends<'_>) -> Self {
        match auth.map(|a| ends.keys(a)) {
            Some((up, down)) => Session {
                send: Direction::new(Some(down)),
                recv: Direction::new(Some(up)),
            },
            None => Session::plain(),
        }
    }

    /// The next frame to send: `head`, then `body`, then the MAC.
    pub fn seal(&mut self, head: &Head, body: &[u8]) -> Bytes {
        let head = crate::wire::encode(head);
        let mut out = BytesMut::with_capacity(head.len() + body.len() + MAC_LEN);
        out.put_slice(&head);
        out.put_slice(body);
        if let Some(tag) = self.send.tag(&out) {
            out.put_slice(&tag);
        }
        self.send.seq += 1;
        out.freeze()
    }

    /// Opens the next frame received: checks its MAC, decodes its head, returns the body
    /// beside it. Any error ends the connection (the sequence is lost).
    pub fn open(&mut self, frame: &[u8]) -> Result<(Head, Bytes), FrameError> {
        let content = if self.recv.mac.is_some() {
            let Some(split) = frame.len().checked_sub(MAC_LEN) else {
                return Err(FrameError::Short(frame.len()));
            };
            let (content, given) = frame.split_at(split);
            let expected = self.recv.tag(content).unwrap_or([0; MAC_LEN]);
            if !bool::from(expected.ct_eq(given)) {
                return Err(FrameError::BadMac);
            }
            content
        } else {
            frame
        };
        self.recv.seq += 1;
        decode_head(content)
    }
}

/// Splits a frame's content into its head and body, checking the head.
pub fn decode_head(content: &[u8]) -> Result<(Head, Bytes), FrameError> {
    let config = bincode::config::standard().with_limit::<MAX_FRAME>();
    let (head, used): (Head, usize) = bincode::serde::decode_from_slice(content, config)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    let body = &content[used..];
    match &head {
        Head::Call { path, .. } if path.len() > MAX_PATH => {
            return Err(FrameError::LongPath(path.len()))
        }
        Head::Ping if !body.is_empty() => return Err(FrameError::UnexpectedBody("a ping")),
        Head::Pong if !body.is_empty() => return Err(FrameError::UnexpectedBody("a pong")),
        _ => {}
    }
    Ok((head, Bytes::copy_from_slice(body)))
}

/// A fresh random nonce.
pub fn nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// Parses a nonce sent as hex.
pub fn parse_nonce(hex_nonce: &str) -> Option<[u8; NONCE_LEN]> {
    let mut out = [0u8; NONCE_LEN];
    hex::decode_to_slice(hex_nonce, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn auth(secret: &[u8]) -> PeerAuth {
        PeerAuth::new(secret, Duration::from_secs(10)).expect("secret long enough")
    }

    fn ends<'a>(c: &'a [u8; NONCE_LEN], s: &'a [u8; NONCE_LEN]) -> Ends<'a> {
        Ends {
            election: "jobs",
            client: "web-0",
            server: "web-1",
            client_nonce: c,
            server_nonce: s,
        }
    }

    fn call(id: u64) -> Head {
        Head::Call {
            id,
            path: "/raft/v1/vote".into(),
        }
    }

    #[test]
    fn sealed_frames_open_in_order_on_the_other_end_only() {
        let a = auth(b"0123456789abcdef-secret");
        let (cn, sn) = (nonce(), nonce());
        let mut client = Session::client(Some(&a), &ends(&cn, &sn));
        let mut server = Session::server(Some(&a), &ends(&cn, &sn));
        let first = client.seal(&call(1), b"one");
        let second = client.seal(&call(2), b"two");
        assert_eq!(
            server.open(&first),
            Ok((call(1), Bytes::from_static(b"one")))
        );
        assert_eq!(
            server.open(&second),
            Ok((call(2), Bytes::from_static(b"two")))
        );
        let answer = server.seal(&Head::Answer { id: 1, status: 200 }, b"");
        assert_eq!(
            client.open(&answer),
            Ok((Head::Answer { id: 1, status: 200 }, Bytes::new()))
        );

        // Replayed, reflected, altered, or from another connection: refused.
        let mut fresh = Session::server(Some(&a), &ends(&cn, &sn));
        assert_eq!(fresh.open(&second), Err(FrameError::BadMac), "out of order");
        let mut server2 = server.clone();
        assert_eq!(server2.open(&first), Err(FrameError::BadMac), "replayed");
        let mut client2 = client.clone();
        let reflected = client2.seal(&Head::Ping, b"");
        assert_eq!(client.clone().open(&reflected), Err(FrameError::BadMac));
        let mut altered = client.clone().seal(&call(3), b"three").to_vec();
        altered[3] ^= 1;
        assert_eq!(server.clone().open(&altered), Err(FrameError::BadMac));
        let other = nonce();
        let mut elsewhere = Session::server(Some(&a), &ends(&cn, &other));
        assert_eq!(elsewhere.open(&first), Err(FrameError::BadMac));
        let stranger = auth(b"another-secret-of-16+");
        let mut forged = Session::client(Some(&stranger), &ends(&cn, &sn));
        assert_eq!(
            Session::server(Some(&a), &ends(&cn, &sn)).open(&forged.seal(&call(1), b"")),
            Err(FrameError::BadMac)
        );
        assert_eq!(server.open(&[1, 2]), Err(FrameError::Short(2)));
    }

    #[test]
    fn plain_frames_carry_no_mac_and_bad_heads_are_refused() {
        let mut s = Session::plain();
        let frame = s.seal(&call(7), b"body");
        assert_eq!(
            Session::plain().open(&frame),
            Ok((call(7), Bytes::from_static(b"body")))
        );
        assert!(matches!(
            Session::plain().open(&[200, 200, 200]),
            Err(FrameError::Malformed(_))
        ));
        let long = Head::Call {
            id: 1,
            path: "/".repeat(MAX_PATH + 1),
        };
        assert_eq!(
            Session::plain().open(&s.seal(&long, b"")),
            Err(FrameError::LongPath(MAX_PATH + 1))
        );
        assert_eq!(
            Session::plain().open(&s.seal(&Head::Ping, b"x")),
            Err(FrameError::UnexpectedBody("a ping"))
        );
    }

    #[test]
    fn nonces_parse_from_their_hex_only() {
        let n = nonce();
        assert_eq!(parse_nonce(&hex::encode(n)), Some(n));
        assert_eq!(parse_nonce("00"), None);
        assert_eq!(parse_nonce(&"zz".repeat(NONCE_LEN)), None);
    }
}
