//! The report's membership section: joins and leaves of spares, 5 → 1 at once, and clusters
//! of 3 to 25 members (idle CPU and crash failover).

use std::fmt::Write;

use serde_json::Value;

use super::format::{ms, summary_row};

/// Joins and leaves, then the sizes.
pub(super) fn membership(o: &mut String, r: &Value) {
    let m = &r["sections"]["membership"];
    if m.is_null() {
        return;
    }
    let _ = writeln!(o, "\n## Membership (ms)\n");
    if let Some(e) = m["error"].as_str() {
        let _ = writeln!(o, "Not measured: {e}");
        return;
    }
    let _ = writeln!(
        o,
        "Spares join a first cluster of 3 (each started with `--peers` naming the three and itself, its data directory emptied before each start) and leave it on SIGTERM; {} trials. Join: from the start until every peer's `GET /v1/members` lists the spares as voters. Leave: from the SIGTERM until the three list them gone. 5 → 1: SIGTERM to 4 of 5 peers at once, the leader among them, until the survivor lists itself as the only voter and says it leads (a new cluster each trial).\n\n| measurement | median | p99 | max | n | failed |\n|---|---|---|---|---|---|",
        m["trials"]
    );
    let rows = [
        ("join 3 → 4 (one spare)", &m["one_spare"]["join"]),
        ("leave 4 → 3", &m["one_spare"]["leave"]),
        ("the spare's process exited", &m["one_spare"]["exit"]),
        ("join 3 → 5 (two spares at once)", &m["two_spares"]["join"]),
        ("leave 5 → 3 (both at once)", &m["two_spares"]["leave"]),
        ("both spares' processes exited", &m["two_spares"]["exit"]),
        (
            "5 → 1 (4 of 5 at once, the leader among them)",
            &m["five_to_one"]["alone"],
        ),
        ("the 4 processes exited", &m["five_to_one"]["exit"]),
    ];
    for (what, v) in rows {
        summary_row(o, what, v);
    }
    let _ = writeln!(o);
    for (what, key) in [
        ("one spare", "one_spare"),
        ("two spares", "two_spares"),
        ("5 → 1", "five_to_one"),
    ] {
        let _ = writeln!(o, "- {what}: exit codes {}", m[key]["exit_codes"]);
        if let Some(e) = m[key]["error"].as_str() {
            let _ = writeln!(o, "  (stopped early: {})", e.lines().next().unwrap_or(""));
        }
    }
    sizes(o, &m["sizes"]);
}

/// Idle CPU and crash failover by cluster size.
fn sizes(o: &mut String, s: &Value) {
    let Some(sizes) = s.as_object() else { return };
    let idle = sizes.values().find_map(|v| v["idle_secs"].as_u64());
    let _ = writeln!(
        o,
        "\nClusters of 3, 5, 9 and 25 members: a first cluster of 3, the others started at once (beyond `--max-voters`, 5 by default, they are learners). Joined: from starting them until every member lists the final membership and all agree on a leader. Then idle for {} s with nobody asking (CPU in % of a core), then kill -9 of the leader until every other member agrees on a new leader (the killed peer restarts between trials).\n\n| members | voters / learners | joined (ms) | leader CPU | followers' mean CPU | voters' / learners' mean | leader RSS (MiB) | crash failover median / max (ms) | n | failed |\n|---|---|---|---|---|---|---|---|---|---|",
        idle.map_or("?".into(), |s| s.to_string())
    );
    let mut rows: Vec<(&String, &Value)> = sizes.iter().collect();
    rows.sort_by_key(|(_, v)| v["members"].as_u64().unwrap_or(0));
    let pct = |v: &Value| v.as_f64().map_or("–".into(), |x| format!("{x:.2}"));
    for (n, v) in rows {
        if v["leader_cpu_percent_of_core"].is_null() {
            let e = v["error"].as_str().unwrap_or("not measured");
            let _ = writeln!(o, "| {n} | {e} | | | | | | | | |");
            continue;
        }
        let f = &v["failover"];
        let _ = writeln!(
            o,
            "| {n} | {} / {} | {} | {} | {} | {} / {} | {:.1} | {} / {} | {} | {} |",
            v["voters"],
            v["learners"],
            ms(&v["joined_ms"]),
            pct(&v["leader_cpu_percent_of_core"]),
            pct(&v["followers_cpu_mean"]),
            pct(&v["voter_followers_cpu_mean"]),
            pct(&v["learners_cpu_mean"]),
            v["leader_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
            ms(&f["median_ms"]),
            ms(&f["max_ms"]),
            f["n"],
            f["failed"],
        );
        if let Some(e) = v["error"].as_str() {
            let _ = writeln!(o, "| | (stopped early: {e}) | | | | | | | | |");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn joins_leaves_and_sizes_are_tabled() {
        let t = |ms: f64| json!({"n": 3, "failed": 0, "median_ms": ms, "p99_ms": ms, "max_ms": ms});
        let r = json!({"sections": {"membership": {
            "trials": 3,
            "one_spare": {"join": t(412.0), "leave": t(35.0), "exit": t(40.0), "exit_codes": [0, 0, 0]},
            "two_spares": {"join": t(600.0), "leave": t(80.0), "exit": t(90.0), "exit_codes": [0]},
            "five_to_one": {"alone": {"n": 1, "failed": 2, "median_ms": 1500.0, "p99_ms": 1500.0,
                "max_ms": 1500.0}, "exit": t(1600.0), "exit_codes": [0, 0, 0, 0],
                "error": "trial 1: 5 peers did not settle\nlog"},
            "sizes": {
                "25": {"members": 25, "voters": 5, "learners": 20, "joined_ms": 2500.0,
                    "leader_cpu_percent_of_core": 9.5, "followers_cpu_mean": 0.8,
                    "voter_followers_cpu_mean": 0.9, "learners_cpu_mean": 0.75,
                    "leader_rss_kib": 12288, "idle_secs": 10,
                    "failover": {"median_ms": 230.0, "max_ms": 300.0, "n": 3, "failed": 0}},
                "9": {"members": 9, "error": "9 members: no leader agreed on by all"}
            }
        }}});
        let mut o = String::new();
        super::membership(&mut o, &r);
        assert!(
            o.contains("| join 3 → 4 (one spare) | 412 | 412 | 412 | 3 | 0 |"),
            "{o}"
        );
        assert!(
            o.contains(
                "| 5 → 1 (4 of 5 at once, the leader among them) | 1500 | 1500 | 1500 | 1 | 2 |"
            ),
            "{o}"
        );
        assert!(
            o.contains("(stopped early: trial 1: 5 peers did not settle)"),
            "{o}"
        );
        assert!(
            o.contains(
                "| 25 | 5 / 20 | 2500 | 9.50 | 0.80 | 0.90 / 0.75 | 12.0 | 230 / 300 | 3 | 0 |"
            ),
            "{o}"
        );
        assert!(
            o.contains("| 9 | 9 members: no leader agreed on by all |"),
            "{o}"
        );
        // 9 sorts before 25.
        assert!(o.find("| 9 |") < o.find("| 25 |"), "{o}");
    }
}
