//! The report's resource sections: application API throughput, footprint, disk.

use std::fmt::Write;

use serde_json::Value;

use super::format::mib;

/// wrk against raft-elector and the bare handler, per configuration.
pub(super) fn api_table(o: &mut String, r: &Value) {
    let s = &r["sections"];
    let _ = writeln!(o, "\n## Application API (wrk, {} s × {} per target, averaged)\n\nThe bare handler builds the same JSON per request but asks nothing; it runs like raft-elector's application API on one thread with a current-thread runtime. The last column is the same bare handler on a 2-worker runtime, for reference (one 5 s run).\n\n| request | threads | connections | peer | raft-elector req/s | bare axum req/s | ratio | raft-elector p50 / p99 (ms) | bare p50 / p99 (ms) | non-2xx | bare, 2 workers req/s |\n|---|---|---|---|---|---|---|---|---|---|---|", s["api"]["wrk_secs"], s["api"]["wrk_reps"]);
    for run in s["api"]["runs"].as_array().cloned().unwrap_or_default() {
        let e = &run["raft_elector"];
        let b = &run["bare_axum"];
        let _ = writeln!(
            o,
            "| GET {} | {} | {} | {} | {:.0} | {:.0} | {} | {} / {} | {} / {} | {} | {:.0} |",
            run["path"].as_str().unwrap_or("?"),
            run["threads"],
            run["connections"],
            run["target"].as_str().unwrap_or("?"),
            e["rps"].as_f64().unwrap_or(f64::NAN),
            b["rps"].as_f64().unwrap_or(f64::NAN),
            run["ratio"],
            e["p50_ms"],
            e["p99_ms"],
            b["p50_ms"],
            b["p99_ms"],
            e["non_2xx"],
            run["bare_axum_2_workers"]["rps"]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
    }
}

/// Idle RSS and CPU per peer (etcd's for comparison), idle CPU by setting, and sizes.
pub(super) fn footprint(o: &mut String, r: &Value) {
    idle_table(o, r);
    idle_cpu_by_setting(o, r);
    sizes(o, r);
    throttled(o, r);
}

/// Agreement of three containers under tight CPU limits.
fn throttled(o: &mut String, r: &Value) {
    let t = &r["sections"]["throttled"];
    let Some(runs) = t["runs"].as_array() else {
        return;
    };
    let _ = writeln!(o, "
### Under a tight CPU limit

Three containers of the image as a StatefulSet, each limited with `docker update --cpus` (the CFS quota of a Kubernetes CPU limit), asked who leads one sample after the other (about every 100 ms):

| limit | seconds | samples | all three agreed | new terms |
|---|---|---|---|---|");
    for run in runs {
        let millicores = run["cpus"]
            .as_str()
            .and_then(|c| c.parse::<f64>().ok())
            .map_or(f64::NAN, |c| c * 1000.0);
        let _ = writeln!(
            o,
            "| {millicores:.0} millicores | {} | {} | {} ({} %) | {} |",
            run["seconds"], run["samples"], run["agreed"], run["agreed_percent"], run["new_terms"]
        );
    }
}

/// RSS and CPU of each idle peer, and of etcd's members for comparison.
fn idle_table(o: &mut String, r: &Value) {
    let s = &r["sections"];
    let fp = &s["footprint"];
    let _ = writeln!(o, "\n## Footprint\n\n3 peers, default settings, idle for {} s (nobody asking):\n\n| peer | role | RSS (MiB) | peak RSS (MiB) | CPU (% of a core) | user / system (10 ms ticks, coarse) |\n|---|---|---|---|---|---|", fp["idle_secs"]);
    for (i, p) in fp["peers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        usage_row(o, &format!("peer-{i}"), p);
    }
    if let Some(peers) = s["footprint"]["image_peers"]["peers"].as_array() {
        for (i, p) in peers.iter().enumerate() {
            usage_row(o, &format!("container {i} of the image"), p);
        }
    }
    if let Some(idle) = s["etcd"]["default"]["idle"].as_array() {
        for (i, p) in idle.iter().enumerate() {
            let _ = writeln!(
                o,
                "| etcd m{i} (for comparison) | | {:.1} | {:.1} | {} | {} |",
                p["rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
                p["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
                p["cpu_percent_of_core"],
                user_system(p)
            );
        }
    }
}

/// One row of the idle table: a process's role, resident and peak memory, CPU.
fn usage_row(o: &mut String, label: &str, p: &Value) {
    let _ = writeln!(
        o,
        "| {label} | {} | {:.1} | {:.1} | {} | {} |",
        p["role"].as_str().unwrap_or("?"),
        p["rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        p["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        p["cpu_percent_of_core"],
        user_system(p)
    );
}

/// The user / system split of an idle reading (10 ms clock ticks, so coarser than the total,
/// which comes from the scheduler's accounting); "–" for runs that did not record it.
fn user_system(p: &Value) -> String {
    match (
        p["user_percent_of_core"].as_f64(),
        p["system_percent_of_core"].as_f64(),
    ) {
        (Some(u), Some(s)) => format!("{u} / {s}"),
        _ => "–".into(),
    }
}

/// Idle CPU of leader and followers under each setting.
fn idle_cpu_by_setting(o: &mut String, r: &Value) {
    let fp = &r["sections"]["footprint"];
    if let Some(vs) = fp["variants"].as_array() {
        let _ = writeln!(o, "\nIdle CPU (% of a core) by setting, 3 peers, {} s each:\n\n| setting | leader | followers |\n|---|---|---|", fp["idle_secs"].as_u64().unwrap_or(0).div_ceil(2));
        let row = |label: &str, peers: &[Value]| {
            let pick = |leader: bool| {
                peers
                    .iter()
                    .filter(|p| (p["role"] == "leader") == leader)
                    .map(|p| format!("{}", p["cpu_percent_of_core"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("| {label} | {} | {} |", pick(true), pick(false))
        };
        let _ = writeln!(
            o,
            "{}",
            row(
                &format!("defaults (heartbeat {} ms)", r["settings"]["heartbeat_ms"]),
                fp["peers"].as_array().map(Vec::as_slice).unwrap_or(&[])
            )
        );
        for v in vs {
            let _ = writeln!(
                o,
                "{}",
                row(
                    v["label"].as_str().unwrap_or("?"),
                    v["peers"].as_array().map(Vec::as_slice).unwrap_or(&[])
                )
            );
        }
    }
}

/// Binary and image size, and the API leader's memory after the load.
fn sizes(o: &mut String, r: &Value) {
    let s = &r["sections"];
    let fp = &s["footprint"];
    let _ = writeln!(
        o,
        "\n- binary: {} as built, {} stripped\n- container image{}: {}\n- the API leader after the wrk runs: {} resident (peak {})",
        mib(&fp["binary_bytes"]),
        mib(&fp["binary_stripped_bytes"]),
        fp["image"].as_str().map(|i| format!(" `{i}`")).unwrap_or_default(),
        mib(&fp["image_bytes"]),
        mib(&(s["api"]["leader_rss_kib_after_load"].as_f64().map(|k| k * 1024.0).into())),
        mib(&(s["api"]["leader_peak_rss_kib_after_load"].as_f64().map(|k| k * 1024.0).into())),
    );
}

/// Disk use of each data directory as elections are forced.
pub(super) fn disk_table(o: &mut String, r: &Value) {
    let s = &r["sections"];
    let d = &s["disk"];
    if let Some(series) = d["series"].as_array() {
        let _ = writeln!(
            o,
            "\n## Disk after many elections\n\n{} elections (terms) forced with `POST /v1/resign`, {} of them won (one blank log entry each; the others were split or refused candidacies), {} elections/s, {} resign requests of which {} did not hand over; peers started with `{}`, snapshot and purge every 100 entries. KiB allocated on disk per data directory:\n\n| elections | peer-0 KiB | peer-1 KiB | peer-2 KiB | last log index | purged index |\n|---|---|---|---|---|---|",
            d["elections"], d["leaders_elected"], d["elections_per_second"], d["resign_requests"], d["resign_requests_failed"], d["flags"].as_str().unwrap_or("")
        );
        for p in series {
            let kib = |i: usize| p["peers"][i]["allocated_bytes"].as_u64().unwrap_or(0) / 1024;
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                p["elections"],
                kib(0),
                kib(1),
                kib(2),
                p["peers"][0]["last_log_index"],
                p["peers"][0]["purged_index"]
            );
        }
    }
}
