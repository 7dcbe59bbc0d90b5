//! When each peer was last heard from, either way: an answer to one of this peer's requests,
//! or an admitted request of its own. `/v1/members` shows it; the leader removes voters that
//! stay silent past `--remove-unreachable-after`, when that is set.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Last contact per peer name.
#[derive(Debug, Default)]
pub struct Contacts {
    last: Mutex<HashMap<String, Instant>>,
}

impl Contacts {
    /// `peer` was heard from just now.
    pub fn heard(&self, peer: &str) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.get_mut(peer) {
            Some(at) => *at = now,
            None => {
                last.insert(peer.to_string(), now);
            }
        }
    }

    /// How long ago `peer` was last heard from, if ever.
    pub fn age(&self, peer: &str) -> Option<Duration> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(peer).map(|at| at.elapsed())
    }
}
