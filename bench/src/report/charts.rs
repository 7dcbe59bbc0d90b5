//! The charts of the report: which figures each shows, drawn by plot/.

use plotters::style::RGBColor;
use serde_json::Value;

use super::format::{election_timeout, samples};
use super::plot;

const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const GREEN: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const GREY: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);
const RED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const PURPLE: RGBColor = RGBColor(0x94, 0x67, 0xbd);
const BROWN: RGBColor = RGBColor(0x8c, 0x56, 0x4b);
const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

/// Every failover, hand-off and cold-start sample, with the limits and the old tools' figures.
pub(super) fn failover(r: &Value) -> Result<String, String> {
    let s = &r["sections"];
    let rows = [
        ("raft-elector crash, 3 peers", &s["failover"]["3"], BLUE),
        ("raft-elector crash, 5 peers", &s["failover"]["5"], BLUE),
        ("raft-elector hand-off, 3 peers", &s["handoff"]["3"], GREEN),
        ("raft-elector hand-off, 5 peers", &s["handoff"]["5"], GREEN),
        (
            "raft-elector cold start, 3 peers",
            &s["coldstart"]["3"],
            GREY,
        ),
        (
            "raft-elector cold start, 5 peers",
            &s["coldstart"]["5"],
            GREY,
        ),
        ("etcd crash, matched timings", &s["etcd"]["matched"], RED),
        ("etcd crash, default timings", &s["etcd"]["default"], RED),
        ("etcdctl elect, holder crash", &s["etcd-elect"], RED),
    ];
    let rows: Vec<plot::Row> = rows
        .into_iter()
        .filter(|(_, v, _)| !samples(v).is_empty())
        .map(|(label, v, color)| plot::Row {
            label: label.into(),
            samples: samples(v),
            color,
        })
        .collect();
    let rtt = r["sections"]["footprint"]["loopback_http_rtt_ms"]
        .as_f64()
        .unwrap_or(0.1);
    let (lo, hi) = election_timeout(r);
    let marks = [
        plot::Mark {
            label: format!("limit: election timeout {lo:.0}-{hi:.0} ms + RTT"),
            from: lo + rtt,
            to: hi + rtt,
            color: PURPLE,
        },
        plot::Mark {
            label: "client-go Lease 15 s".into(),
            from: 15_000.0,
            to: 15_000.0,
            color: BROWN,
        },
        plot::Mark {
            label: "old leader-elector 30-60 s".into(),
            from: 30_000.0,
            to: 60_000.0,
            color: ORANGE,
        },
    ];
    let date = r["date"].as_str().unwrap_or("");
    plot::strip_chart(
        &format!("Leader failover on loopback ({date})"),
        &rows,
        &marks,
        2.0,
        100_000.0,
    )
}

/// Requests/s of raft-elector and the bare handler per wrk configuration.
pub(super) fn api(r: &Value) -> Result<String, String> {
    let runs = r["sections"]["api"]["runs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let groups: Vec<plot::BarPair> = runs
        .iter()
        .map(|run| plot::BarPair {
            label: format!(
                "GET {} t{} c{}{}",
                run["path"].as_str().unwrap_or("?"),
                run["threads"],
                run["connections"],
                if run["target"] == "follower" {
                    " (follower)"
                } else {
                    ""
                }
            ),
            a: run["bare_axum"]["rps"].as_f64().unwrap_or(0.0),
            b: run["raft_elector"]["rps"].as_f64().unwrap_or(0.0),
            note: format!("ratio {:.2}", run["ratio"].as_f64().unwrap_or(f64::NAN)),
        })
        .collect();
    plot::bar_pairs(
        "Application API under wrk: requests/s (same run, 2 cores shared with wrk)",
        &groups,
        ("bare axum, same JSON, 1 thread", "raft-elector"),
        "req/s",
    )
}

/// Data directory size of each peer over the forced elections.
pub(super) fn disk(r: &Value) -> Result<String, String> {
    let series = r["sections"]["disk"]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let colors = [BLUE, GREEN, RED];
    let lines: Vec<plot::Series> = (0..3)
        .map(|i| {
            let points = series
                .iter()
                .filter_map(|p| {
                    Some((
                        p["elections"].as_f64()?,
                        p["peers"][i]["allocated_bytes"].as_f64()? / 1024.0,
                    ))
                })
                .collect();
            plot::Series {
                name: format!("peer-{i}"),
                points,
                color: colors[i],
            }
        })
        .collect();
    plot::lines(
        "Data directory size while elections are forced",
        &lines,
        "elections",
        "KiB on disk",
    )
}
