//! Peer authentication: every peer request carries an HMAC-SHA256 made with a secret shared
//! by the peers of one election (a Kubernetes Secret mounted as a file, or an environment
//! variable).
//!
//! The MAC covers the protocol version, method, path, election, sender, intended receiver, a
//! timestamp and the body. The receiver checks it before decoding anything, refuses requests
//! outside a time window, and remembers the MACs it accepted within that window, so a captured
//! request can neither be replayed (to this peer or to another) nor altered.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the sender's clock (unix milliseconds).
pub const TIME_HEADER: &str = "x-raft-elector-time";
/// Header naming the intended receiver.
pub const TO_HEADER: &str = "x-raft-elector-to";
/// Header carrying the hex MAC.
pub const MAC_HEADER: &str = "x-raft-elector-auth";

/// Shortest secret accepted.
pub const MIN_SECRET: usize = 16;

/// Why a secret or a request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the peer secret is {0} bytes; use at least {MIN_SECRET} (e.g. `head -c 32 /dev/urandom | base64`)")]
    ShortSecret(usize),
    #[error("missing or malformed authentication headers")]
    Missing,
    #[error("request is addressed to {0:?}")]
    WrongReceiver(String),
    #[error("request time is {0} ms away from this peer's clock (window {1} ms); are the clocks synchronised?")]
    Skewed(i64, u64),
    #[error("bad MAC: the sender does not know this election's peer secret")]
    BadMac,
    #[error("replayed request")]
    Replayed,
}

/// What a MAC is computed over, besides the body.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub election: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub time_ms: u64,
}

/// The key and the replay cache of one peer.
pub struct PeerAuth {
    key: Vec<u8>,
    window: Duration,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    order: VecDeque<(u64, [u8; 32])>,
    macs: HashSet<[u8; 32]>,
}

/// Milliseconds since the unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl PeerAuth {
    /// A peer authenticator with `secret`, accepting requests whose timestamp is within
    /// `window` of this peer's clock.
    pub fn new(secret: &[u8], window: Duration) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET {
            return Err(AuthError::ShortSecret(secret.len()));
        }
        Ok(PeerAuth {
            key: secret.to_vec(),
            window,
            seen: Mutex::new(Seen::default()),
        })
    }

    fn mac(&self, s: &Signed<'_>, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        let head = format!(
            "raft-elector/{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            super::protocol::PROTOCOL_VERSION,
            s.method,
            s.path,
            s.election,
            s.from,
            s.to,
            s.time_ms
        );
        mac.update(head.as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// A key for one purpose, derived from the secret: HMAC-SHA256 of `context` under a
    /// label of its own (the peer stream's per-connection keys, [`super::frames`]).
    pub fn derive(&self, context: &[u8]) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"raft-elector/derive\n");
        mac.update(context);
        mac.finalize().into_bytes().into()
    }

    /// The hex MAC to send with a request.
    pub fn sign(&self, s: &Signed<'_>, body: &[u8]) -> String {
        hex::encode(self.mac(s, body))
    }

    /// Checks a request's MAC, time and freshness. `me` is this peer's name.
    pub fn verify(
        &self,
        s: &Signed<'_>,
        mac_hex: &str,
        body: &[u8],
        me: &str,
        now_ms: u64,
    ) -> Result<(), AuthError> {
        let mut given = [0u8; 32];
        hex::decode_to_slice(mac_hex, &mut given).map_err(|_| AuthError::Missing)?;
        let expected = self.mac(s, body);
        if !bool::from(expected.ct_eq(&given)) {
            return Err(AuthError::BadMac);
        }
        if s.to != me {
            return Err(AuthError::WrongReceiver(s.to.to_string()));
        }
        let window = self.window.as_millis() as u64;
        let skew = s.time_ms as i64 - now_ms as i64;
        if skew.unsigned_abs() > window {
            return Err(AuthError::Skewed(skew, window));
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while seen
            .order
            .front()
            .is_some_and(|(expiry, _)| *expiry < now_ms)
        {
            if let Some((_, old)) = seen.order.pop_front() {
                seen.macs.remove(&old);
            }
        }
        if !seen.macs.insert(given) {
            return Err(AuthError::Replayed);
        }
        // Remembered until its timestamp leaves the window on either side.
        seen.order
            .push_back((s.time_ms.max(now_ms) + window, given));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(time_ms: u64) -> Signed<'static> {
        Signed {
            method: "POST",
            path: "/raft/v1/vote",
            election: "jobs",
            from: "web-0",
            to: "web-1",
            time_ms,
        }
    }

    #[test]
    fn accepts_once_and_refuses_replays_and_forgeries() {
        let auth = PeerAuth::new(b"0123456789abcdef-secret", Duration::from_secs(10)).unwrap();
        let now = 1_000_000;
        let mac = auth.sign(&signed(now), b"body");
        assert_eq!(
            auth.verify(&signed(now), &mac, b"body", "web-1", now),
            Ok(())
        );
        assert_eq!(
            auth.verify(&signed(now), &mac, b"body", "web-1", now + 5),
            Err(AuthError::Replayed)
        );
        assert_eq!(
            auth.verify(&signed(now), &mac, b"bodx", "web-1", now),
            Err(AuthError::BadMac)
        );
        assert_eq!(
            auth.verify(&signed(now), &mac, b"body", "web-2", now),
            Err(AuthError::WrongReceiver("web-1".into()))
        );
        let late = auth.sign(&signed(now), b"other");
        assert!(matches!(
            auth.verify(&signed(now), &late, b"other", "web-1", now + 20_000),
            Err(AuthError::Skewed(..))
        ));
        let other = PeerAuth::new(b"another-secret-of-16+", Duration::from_secs(10)).unwrap();
        assert_eq!(
            other.verify(
                &signed(now),
                &auth.sign(&signed(now), b""),
                b"",
                "web-1",
                now
            ),
            Err(AuthError::BadMac)
        );
        assert_eq!(
            auth.verify(&signed(now), "zz", b"", "web-1", now),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn refuses_short_secrets() {
        assert!(matches!(
            PeerAuth::new(b"short", Duration::from_secs(1)),
            Err(AuthError::ShortSecret(5))
        ));
    }

    #[test]
    fn forgets_macs_after_the_window() {
        let auth = PeerAuth::new(b"0123456789abcdef", Duration::from_millis(100)).unwrap();
        for i in 0..1000u64 {
            let s = signed(i * 50);
            let mac = auth.sign(&s, b"");
            assert_eq!(auth.verify(&s, &mac, b"", "web-1", i * 50), Ok(()));
        }
        assert!(
            auth.seen.lock().unwrap().order.len() < 10,
            "the replay cache stays small"
        );
    }
}
