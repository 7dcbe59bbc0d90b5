//! One beat for the periodic loops of a peer, so that they wake together: each wake-up of an
//! idle peer costs a context switch, and loops whose periods are multiples of one another wake
//! at the same instants when they count from the same epoch.
//!
//! The beat is a grid of [`GRID`] (64 ms) steps from the moment the async runtime was built
//! ([`start`]). That is tokio's own grid: its timer wheel keeps a timer due in a later 64 ms
//! step in a coarser slot, and wakes the thread at the START of that step to move it to a
//! finer one, so a timer due anywhere else costs two wake-ups (the move, then the timer) where
//! a timer due on a grid point costs one. openraft's tick is put on the grid too
//! ([`GridRuntime`]): without it, a tick every 45 ms crossed a grid line most of the time and
//! woke an idle peer about 38 times a second instead of 22.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

mod runtime;
pub use runtime::{raft_elections, raft_leads_or_campaigns, GridRuntime, RaftSleep};

/// The step of the beat: tokio's coarser timer slots are this long, counted from the moment
/// its runtime was built.
pub const GRID: Duration = Duration::from_millis(64);

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Whether [`GridRuntime`] puts openraft's timers on the grid ([`put_raft_on_grid`]).
static RAFT_ON_GRID: AtomicBool = AtomicBool::new(false);

/// Fixes the beat's epoch to now. Called right before the async runtime is built, so that the
/// beat falls on tokio's grid (tokio counts whole milliseconds from its own start, which then
/// comes less than a millisecond after this epoch). Without it (tests), the epoch is the
/// first use, and loops still wake together, only not on tokio's grid.
pub fn start() {
    let _ = EPOCH.set(Instant::now());
}

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// `period` rounded up to a whole number of [`GRID`] steps.
fn on_grid(period: Duration) -> u128 {
    let grid = GRID.as_nanos();
    period.as_nanos().div_ceil(grid).max(1) * grid
}

fn at(ns: u128) -> Instant {
    epoch() + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// The next instant after now that is a whole number of `period`s after the epoch, `period`
/// rounded up to whole [`GRID`] steps (100 ms → 128 ms, 1 s → 1,024 ms).
pub fn next(period: Duration) -> Instant {
    let period = on_grid(period);
    let since = Instant::now().saturating_duration_since(epoch()).as_nanos();
    at((since / period + 1) * period)
}

/// The first grid point at or after `t`.
pub fn align_up(t: Instant) -> Instant {
    let grid = GRID.as_nanos();
    let since = t.saturating_duration_since(epoch()).as_nanos();
    at(since.div_ceil(grid) * grid)
}

/// The period of a timer that openraft re-arms every `interval` after it fired, once on the
/// grid: the first whole number of [`GRID`] steps over `interval` (45 ms → 64, 64 → 128).
pub fn grid_period(interval: Duration) -> Duration {
    let grid = GRID.as_nanos();
    let steps = interval.as_nanos() / grid + 1;
    Duration::from_nanos(u64::try_from(steps * grid).unwrap_or(u64::MAX))
}

/// Whether openraft's tick, heartbeats and timeouts go on the grid from now on. The node
/// decides once, before Raft starts: only when the rounded heartbeat period leaves the lease
/// room for a round trip (`leadership::start`).
pub fn put_raft_on_grid(on: bool) {
    RAFT_ON_GRID.store(on, Ordering::Relaxed);
}

pub(crate) fn raft_deadline(deadline: Instant) -> Instant {
    match RAFT_ON_GRID.load(Ordering::Relaxed) {
        true => align_up(deadline),
        false => deadline,
    }
}

/// Sleeps until [`next`]`(period)`.
pub async fn sleep(period: Duration) {
    tokio::time::sleep_until(next(period)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loops_of_multiple_periods_wake_at_the_same_instants() {
        let a = next(Duration::from_millis(64));
        let b = next(Duration::from_millis(128));
        assert!(a > Instant::now() - Duration::from_millis(1));
        assert!(a <= Instant::now() + GRID);
        // The 128 ms beat is one of the 64 ms beats.
        let gap = b.duration_since(a).as_millis();
        assert!(gap == 0 || gap == 64, "{gap}");
        tokio::time::sleep_until(a).await;
        assert!(
            next(Duration::from_millis(64)) > a,
            "the next beat, not this one"
        );
    }

    #[tokio::test]
    async fn periods_and_deadlines_are_put_on_the_grid() {
        let now = Instant::now();
        // 100 ms is rounded up to two grid steps: consecutive beats are 128 ms apart.
        let a = next(Duration::from_millis(100));
        let since = a.duration_since(epoch()).as_nanos();
        assert_eq!(since % (2 * GRID.as_nanos()), 0);
        // A deadline moves to the first grid point at or after it, never earlier.
        let d = now + Duration::from_millis(45);
        let aligned = align_up(d);
        assert!(aligned >= d && aligned < d + GRID, "{aligned:?} {d:?}");
        assert_eq!(
            aligned.duration_since(epoch()).as_nanos() % GRID.as_nanos(),
            0
        );
        assert_eq!(align_up(aligned), aligned);
    }

    #[test]
    fn a_tick_rearmed_after_it_fired_comes_every_whole_number_of_steps_above_its_interval() {
        assert_eq!(grid_period(Duration::from_millis(15)), GRID);
        assert_eq!(grid_period(Duration::from_millis(45)), GRID);
        assert_eq!(grid_period(Duration::from_millis(64)), 2 * GRID);
        assert_eq!(grid_period(Duration::from_millis(75)), 2 * GRID);
    }
}
