//! Turns results.json into docs/bench/: results.md (markdown.rs, with its sections in
//! timing.rs, membership.rs, claims.rs and resources.rs) and the SVG charts (charts.rs picks the data,
//! plot/ draws).

mod charts;
mod claims;
mod format;
mod goals;
mod markdown;
mod membership;
mod plot;
mod resources;
mod timing;

use std::path::Path;

use serde_json::Value;

/// Writes results.md and the charts of the results `r` into `dir`.
pub fn write_all(dir: &Path, r: &Value) -> Result<(), String> {
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("failover.svg", charts::failover(r)?)?;
    write("api.svg", charts::api(r)?)?;
    write("disk.svg", charts::disk(r)?)?;
    write("results.md", markdown::markdown(r))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::goals::goals;
    use super::{charts, markdown};

    #[test]
    fn goals_are_judged_on_the_figures() {
        let r = json!({
            "date": "2026-11-29T00:00:00Z",
            "sections": {
                "failover": {
                    "3": {"median_ms": 250.0, "p99_ms": 300.0, "max_ms": 300.0, "samples_ms": [250.0, 300.0]},
                    "5": {"median_ms": 280.0, "p99_ms": 301.0, "samples_ms": [280.0]}
                },
                "etcd": {"default": {"median_ms": 900.0, "samples_ms": [900.0], "idle": [
                    {"cpu_percent_of_core": 1.3}, {"cpu_percent_of_core": 1.19}
                ]}},
                "handoff": {"3": {"p99_ms": 12.0}},
                "api": {"runs": [{"ratio": 0.95}, {"ratio": 0.89}, {"ratio": 0.8}]},
                "footprint": {"peers": [
                    {"rss_kib": 10240, "cpu_percent_of_core": 0.25},
                    {"rss_kib": 10241, "cpu_percent_of_core": 0.3}
                ]},
                "claims": {
                    "seconds_per_run": 10,
                    "raft_elector": {"3": {"runs": [
                        {"clients": 1, "target": "leader", "p99_ms": 3.0, "claims_per_s": 400.0},
                        {"clients": 64, "target": "leader", "p99_ms": 90.0, "claims_per_s": 900.0},
                        {"clients": 64, "target": "follower", "claims_per_s": 2000.0}
                    ]}},
                    "postgres": {"runs": [
                        {"clients": 1, "target": "server", "p99_ms": 2.5, "claims_per_s": 500.0},
                        {"clients": 64, "target": "server", "p99_ms": 60.0, "claims_per_s": 1000.0}
                    ]}
                }
            }
        });
        let met: Vec<Option<bool>> = goals(&r).into_iter().map(|g| g.2).collect();
        assert_eq!(
            met,
            [
                // failover p99 3 and 5 peers, median vs etcd, hand-off, API
                Some(true),
                Some(false),
                Some(true),
                Some(true),
                Some(false),
                // resident (10.001 MiB), CPU (0.3 %), CPU vs ¼ of the quietest etcd member
                Some(false),
                Some(true),
                Some(false),
                // claims: p99 at 1 client, throughput at 64
                Some(true),
                Some(false)
            ]
        );
        let chart = charts::failover(&r).expect("chart");
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert!(chart.contains("raft-elector crash, 3 peers"));
        assert!(
            !chart.contains("hand-off, 3 peers"),
            "rows without samples are left out"
        );
        let md = markdown::markdown(&r);
        assert!(
            md.contains("| crash failover p99 ≤ 300 ms, defaults, 5 peers | 301 ms | **no** |"),
            "{md}"
        );
        assert!(
            md.contains("| idle CPU ≤ 1/4 of etcd's per member (busiest peer vs the quietest etcd member) | 0.300 % vs 1.190 % / 4 = 0.297 % | **no** |"),
            "{md}"
        );
        assert!(
            md.contains("| job claim p99 latency at 1 client ≤ 1.5 × PostgreSQL's (fsync on), 3 peers | 3.00 ms vs 1.5 × 2.50 = 3.75 ms | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| job claims/s at 64 clients ≥ PostgreSQL's (fsync on), 3 peers | 900 vs 1000 claims/s (0.90×) | **no** |"),
            "{md}"
        );
        assert!(
            md.contains("| raft-elector, 3 peers | leader | 64 | 900 |"),
            "{md}"
        );
    }
}
