//! One beat for the periodic loops of a peer, so that they wake together: each wake-up of an
//! idle peer costs a context switch, and loops whose periods are multiples of one another wake
//! at the same instants when they count from the same epoch.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The next instant after now that is a whole number of `period`s after the process's epoch.
pub fn next(period: Duration) -> Instant {
    let epoch = *EPOCH.get_or_init(Instant::now);
    let period_ns = period.as_nanos().max(1);
    let since = Instant::now().saturating_duration_since(epoch).as_nanos();
    let beats = since / period_ns + 1;
    let at = beats.saturating_mul(period_ns);
    epoch + Duration::from_nanos(u64::try_from(at).unwrap_or(u64::MAX))
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
        let a = next(Duration::from_millis(50));
        let b = next(Duration::from_millis(100));
        assert!(a > Instant::now() - Duration::from_millis(1));
        assert!(a <= Instant::now() + Duration::from_millis(50));
        // The 100 ms beat is one of the 50 ms beats.
        let gap = b.duration_since(a).as_millis();
        assert!(gap == 0 || gap == 50, "{gap}");
        tokio::time::sleep_until(a).await;
        assert!(
            next(Duration::from_millis(50)) > a,
            "the next beat, not this one"
        );
    }
}
