//! A small seeded random generator (SplitMix64), so that a run's schedule depends on the printed
//! seed alone and replays the same way on any machine and any crate version.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from the clock, for what need not replay (names, secrets, jitter).
    pub fn fresh() -> Rng {
        Rng::new(fresh_seed())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A duration between `lo_ms` and `hi_ms` milliseconds, both included.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        let span = hi_ms.saturating_sub(lo_ms) as usize + 1;
        Duration::from_millis(lo_ms + self.below(span) as u64)
    }

    /// A duration in `[0, max)`, in steps of a ten-thousandth of `max`.
    pub fn up_to(&mut self, max: Duration) -> Duration {
        max.mul_f64(self.below(10_000) as f64 / 10_000.0)
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// A seed from the clock and the process id, for runs that were not given one.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Rng::new(nanos ^ u64::from(std::process::id()) << 32).next_u64()
}

/// The seed in environment variable `var` (to replay a run), else a fresh one. A value that is
/// not a number stops the run rather than being replaced silently.
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var} must be a number, not {s:?}")),
        Err(_) => fresh_seed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first three numbers of seed `seed`.
    fn first_three(seed: u64) -> [u64; 3] {
        let mut r = Rng::new(seed);
        [r.next_u64(), r.next_u64(), r.next_u64()]
    }

    #[test]
    fn seed_0_gives_the_published_splitmix64_outputs() {
        // SplitMix64 (Steele, Lea, Flood 2014; Vigna's splitmix64.c) seeded with 0, computed
        // apart from this code from the definition: x += 0x9E3779B97F4A7C15, then the two
        // xor-shift-multiply rounds and a final xor-shift.
        let zero = [
            0xE220_A839_7B1D_CDAF,
            0x6E78_9E6A_A1B9_65F4,
            0x06C4_5D18_8009_454F,
        ];
        assert_eq!(first_three(0), zero);
        let forty_two = [
            0xBDD7_3226_2FEB_6E95,
            0x28EF_E333_B266_F103,
            0x4752_6757_130F_9F52,
        ];
        assert_eq!(first_three(42), forty_two);
    }

    #[test]
    fn the_same_seed_replays_the_same_schedule_and_another_seed_does_not() {
        let draws = |seed| {
            let mut r = Rng::new(seed);
            (0..1000).map(|_| r.next_u64()).collect::<Vec<u64>>()
        };
        assert_eq!(draws(42), draws(42));
        assert_ne!(draws(42), draws(43));
        // Numbers in a range are the high bits of the product (no modulo), so they replay too.
        let mut r = Rng::new(42);
        let small: Vec<usize> = (0..8).map(|_| r.below(10)).collect();
        assert_eq!(small, [7, 1, 2, 3, 0, 8, 2, 8]);
        let mut items = [0, 1, 2, 3, 4, 5];
        Rng::new(7).shuffle(&mut items);
        assert_eq!(items, [5, 4, 1, 3, 0, 2]);
    }

    #[test]
    fn draws_stay_in_their_ranges_reach_both_ends_and_are_about_uniform() {
        let mut r = Rng::new(1);
        // 60,000 draws of 0..6: 10,000 expected each, a standard deviation of about 91.
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[r.below(6)] += 1;
        }
        for (value, &n) in counts.iter().enumerate() {
            assert!(
                (9_500..=10_500).contains(&n),
                "{value} drawn {n} times: {counts:?}"
            );
        }
        let mut seen = [false; 6];
        let mut heads = 0;
        for _ in 0..20_000 {
            let d = r.millis(5, 10);
            assert!(d >= Duration::from_millis(5) && d <= Duration::from_millis(10));
            seen[d.as_millis() as usize - 5] = true;
            assert!(r.up_to(Duration::from_millis(30)) < Duration::from_millis(30));
            heads += usize::from(r.chance(1, 4));
        }
        assert_eq!(seen, [true; 6], "millis(5, 10) includes both ends");
        assert!(
            (4_700..=5_300).contains(&heads),
            "chance(1, 4): {heads} of 20,000"
        );
        // A shuffle is a permutation.
        let mut items: Vec<usize> = (0..100).collect();
        r.shuffle(&mut items);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
