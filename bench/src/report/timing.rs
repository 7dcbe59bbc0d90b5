//! The report's timing sections: failover, hand-off and cold start; the physical limit;
//! partition heal.

use std::fmt::Write;

use serde_json::Value;

use super::format::{election_timeout, ms, summary_row};

/// Failover, hand-off and cold start of raft-elector and etcd, and how fast a handed-off
/// leader's process exited.
pub(super) fn failover_table(o: &mut String, r: &Value) {
    let s = &r["sections"];
    let _ = writeln!(
        o,
        "\n## Failover, hand-off, cold start (ms)\n\nFrom the signal (or the start) until every surviving peer's API names the same new leader, and that leader says it leads. With fewer than 100 trials the p99 is the maximum.\n\n| measurement | median | p99 | max | n | failed |\n|---|---|---|---|---|---|"
    );
    for n in ["3", "5"] {
        summary_row(
            o,
            &format!("raft-elector crash (kill -9), {n} peers"),
            &s["failover"][n],
        );
    }
    for key in ["3 at heartbeat 50 ms", "3 at heartbeat 100 ms"] {
        let v = &s["failover"][key];
        if !v.is_null() {
            summary_row(
                o,
                &format!(
                    "raft-elector crash, 3 peers, `{}`",
                    v["flags"].as_str().unwrap_or("?")
                ),
                v,
            );
        }
    }
    for n in ["3", "5"] {
        summary_row(
            o,
            &format!("raft-elector hand-off (SIGTERM), {n} peers"),
            &s["handoff"][n],
        );
    }
    for n in ["3", "5"] {
        summary_row(
            o,
            &format!("raft-elector cold start, {n} peers"),
            &s["coldstart"][n],
        );
    }
    summary_row(
        o,
        "etcd crash, default timings (100 ms / 1000 ms)",
        &s["etcd"]["default"],
    );
    summary_row(
        o,
        "etcd crash, matched timings (20 ms / 100 ms)",
        &s["etcd"]["matched"],
    );
    summary_row(
        o,
        "`etcdctl elect`, holder killed (60 s session TTL)",
        &s["etcd-elect"],
    );
    for n in ["3", "5"] {
        let h = &s["handoff"][n]["process_exit"];
        if !h.is_null() {
            let _ = writeln!(
                o,
                "\nHand-off, {n} peers: the old leader's process exited after a median {} ms (max {}), exit codes {}.",
                ms(&h["median_ms"]),
                ms(&h["max_ms"]),
                s["handoff"][n]["exit_codes"]
            );
        }
    }
}

/// The election timeout plus a round trip: what no failover can beat.
pub(super) fn physical_limit(o: &mut String, r: &Value) {
    let s = &r["sections"];
    let rtt = s["footprint"]["loopback_http_rtt_ms"].as_f64();
    let _ = writeln!(o, "\n## The physical limit\n");
    if let Some(rtt) = rtt {
        let med = s["failover"]["3"]["median_ms"].as_f64();
        let (lo, hi) = election_timeout(r);
        let _ = writeln!(
            o,
            "Configured election timeout {lo:.0}-{hi:.0} ms plus one loopback round trip ({rtt:.3} ms): {:.1}-{:.1} ms.{}",
            lo + rtt,
            hi + rtt,
            med.map(|m| format!(
                " The 3-peer crash failover median ({m:.0} ms) is {:.2}× the upper end.",
                m / (hi + rtt)
            ))
            .unwrap_or_default()
        );
    }
}

/// Whether a cut-off follower disturbs the leader once its links heal.
pub(super) fn partition_table(o: &mut String, r: &Value) {
    let s = &r["sections"];
    let _ = writeln!(o, "\n## Partition heal\n\nA follower is cut off from every other peer for the isolation time (per-link TCP proxies that hold the bytes), then the links heal.\n\n| peers | trials | leader changed after heal | majority lost its leader during the cut | isolated peer's term rise (max) | rejoin median / max (ms) | majority disruption max (ms) |\n|---|---|---|---|---|---|---|");
    for n in ["3", "5"] {
        let p = &s["partition"][n];
        if p.is_null() || p.get("error").is_some() {
            continue;
        }
        let rise = p["isolated_peer_term_rise"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).max().unwrap_or(0))
            .unwrap_or(0);
        let _ = writeln!(
            o,
            "| {n} | {} | {} | {} | {rise} | {} / {} | {} |",
            p["trials"],
            p["leader_changed_after_heal"],
            p["majority_lost_leader_during_cut"],
            ms(&p["rejoin"]["median_ms"]),
            ms(&p["rejoin"]["max_ms"]),
            ms(&p["majority_disruption"]["max_ms"]),
        );
    }
}

/// Notification of a new leader (issue 13): push next to polling.
pub(super) fn notify_table(o: &mut String, r: &Value) {
    let s = &r["sections"]["notify"];
    let _ = writeln!(
        o,
        "\n## Notification of a new leader (ms)\n\n3 peers, leader killed (kill -9); clients on a follower. From the moment the bench (asking every survivor every 5 ms) saw them agree on the new leader until the client had it: negative when the push arrived before that poll saw the agreement. Polling rows: the wait until an application polling every 1 s / 5 s (random phase) next asks, by construction, not measured.\n\n| client | median | p99 | max | n | failed |\n|---|---|---|---|---|---|"
    );
    summary_row(o, "SSE `GET /v1/leader/events`", &s["sse"]);
    summary_row(o, "blocking query `GET /v1/leader?term=N`", &s["long_poll"]);
    summary_row(o, "polling every 1 s (the seed's pattern)", &s["poll_1s"]);
    summary_row(o, "polling every 5 s", &s["poll_5s"]);
    summary_row(
        o,
        "SSE, from the kill -9 (failover and push)",
        &s["sse_since_kill"],
    );
}
