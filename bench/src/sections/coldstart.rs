//! Cold start: every peer started at once with an empty data directory.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use testkit::Ask;

use super::{cluster, ms};
use crate::cli::Args;
use crate::stats::Summary;

/// All peers started at once with empty data directories, until all name one leader.
pub(super) async fn cold_starts(exe: &Path, args: &Args) -> Result<Value, String> {
    let mut out = Map::new();
    for n in [3usize, 5] {
        let mut times = Summary::default();
        for trial in 0..args.trials {
            let mut c = cluster(exe, n, &[], false);
            let all: Vec<usize> = (0..n).collect();
            let t0 = Instant::now();
            c.spawn_all();
            match c.agreed(&all, Duration::from_secs(20)).await {
                Some(a) => times.push(ms(a.at - t0)),
                None => times.failed += 1,
            }
            eprintln!(
                "bench: cold start {n} peers trial {trial}: {:?} ms",
                times.samples.last()
            );
        }
        out.insert(n.to_string(), times.to_json());
    }
    Ok(Value::Object(out))
}
