//! Summaries of samples: median, p99, max.

use serde_json::{json, Value};

/// Nearest-rank percentile of sorted samples (`q` in 0..=1). With fewer than 100 samples the
/// p99 is the maximum.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median (mean of the two middle samples for an even count).
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Summary of a set of durations in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub samples: Vec<f64>,
    /// Trials that did not reach their end condition before their deadline.
    pub failed: usize,
}

impl Summary {
    pub fn push(&mut self, ms: f64) {
        self.samples.push(ms);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s
    }

    pub fn median(&self) -> f64 {
        median(&self.sorted())
    }

    pub fn p99(&self) -> f64 {
        percentile(&self.sorted(), 0.99)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "n": self.samples.len(),
            "failed": self.failed,
            "median_ms": round(self.median()),
            "p99_ms": round(self.p99()),
            "max_ms": round(self.max()),
            "min_ms": round(self.min()),
            "samples_ms": self.samples.iter().map(|&v| round(v)).collect::<Vec<_>>(),
        })
    }
}

/// Rounds to 0.1 (JSON null for NaN).
pub fn round(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 10.0).round() / 10.0)
    } else {
        Value::Null
    }
}

/// Rounds to 0.001 (JSON null for NaN).
pub fn round3(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.99), 20.0);
        assert_eq!(percentile(&s, 0.5), 10.0);
        assert_eq!(median(&s), 10.5);
        let s: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.99), 198.0);
    }
}
