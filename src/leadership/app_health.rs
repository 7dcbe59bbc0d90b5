//! This peer's application health as the rest of the peer reads it (`--app-health`; the
//! checks themselves are in [`super::health`]). A leaf module: the lease, the campaign loop,
//! the peer service and the API read it without depending on the hand-off.

use std::sync::atomic::{AtomicU8, Ordering};

const NOT_CHECKED: u8 = 0;
const HEALTHY: u8 = 1;
const UNHEALTHY: u8 = 2;

/// This peer's application health, shared by the campaign loop, the hand-off, the peer
/// service and the API.
#[derive(Debug)]
pub struct AppHealth(AtomicU8);

impl Default for AppHealth {
    fn default() -> Self {
        AppHealth(AtomicU8::new(NOT_CHECKED))
    }
}

impl AppHealth {
    /// `None` without `--app-health`; else whether the application is healthy now.
    pub fn reported(&self) -> Option<bool> {
        match self.0.load(Ordering::SeqCst) {
            NOT_CHECKED => None,
            v => Some(v == HEALTHY),
        }
    }

    /// Whether this peer may campaign or take leadership over: always without
    /// `--app-health`.
    pub fn may_lead(&self) -> bool {
        self.reported() != Some(false)
    }

    pub fn set(&self, healthy: bool) {
        self.0
            .store(if healthy { HEALTHY } else { UNHEALTHY }, Ordering::SeqCst);
    }
}
