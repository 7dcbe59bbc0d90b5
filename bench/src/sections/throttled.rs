//! Tight CPU limits: three containers of the image deployed as a StatefulSet, each limited to
//! a few millicores (`docker update --cpus`, the CFS quota Kubernetes sets for a CPU limit),
//! asked who leads one sample after the other for a while. What counts: the share of samples in
//! which all three agreed on one leader, and whether any new term began.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use testkit::docker;
use testkit::{agreement, Ask};

use crate::cli::Args;

/// The limits measured, in cores (20 and 10 millicores).
const LIMITS: [&str; 2] = ["0.02", "0.01"];

pub(super) async fn throttled(args: &Args) -> Result<Value, String> {
    let image = args
        .image
        .clone()
        .ok_or("needs the image (scripts/bench.sh builds it unless BENCH_IMAGE=0)")?;
    docker::cli::available()?;
    let mut runs = Vec::new();
    for cpus in LIMITS {
        let spec = super::image_spec(&image, "throttled", "info,openraft=off");
        let c = docker::Cluster::start(&spec).await;
        let all = c.all();
        let first = c
            .agreed(&all, Duration::from_secs(60))
            .await
            .ok_or("no leader before throttling")?;
        for node in &c.nodes {
            docker::docker_ok(&["update", "--cpus", cpus, &node.container]).await;
        }
        // The first throttled periods, then the measurement.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let names = c.names();
        let t0 = Instant::now();
        let (mut samples, mut agreed) = (0u64, 0u64);
        let mut terms = std::collections::BTreeSet::new();
        while t0.elapsed() < Duration::from_secs(args.throttle_secs) {
            let answers = c.ask_all(&all).await;
            samples += 1;
            if let Some((_, term)) = agreement(&names, &all, &answers) {
                agreed += 1;
                terms.insert(term);
            }
            terms.extend(answers.iter().flatten().map(|a| a.term));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let share = agreed as f64 / samples.max(1) as f64;
        let new_terms = terms.iter().filter(|&&t| t > first.term).count();
        eprintln!(
            "bench: throttled --cpus {cpus}: {agreed} of {samples} samples agreed ({:.3} %), {new_terms} new terms",
            share * 100.0
        );
        runs.push(json!({
            "cpus": cpus,
            "seconds": args.throttle_secs,
            "samples": samples,
            "agreed": agreed,
            "agreed_percent": (share * 100_000.0).round() / 1000.0,
            "first_term": first.term,
            "new_terms": new_terms,
        }));
        drop(c);
    }
    Ok(json!({ "peers": 3, "runs": runs }))
}
