//! The report's job claims section: raft-elector's claims against PostgreSQL's, per client
//! count, and the size of the data directories after them.

use std::fmt::Write;

use serde_json::Value;

use super::format::mib;

/// The run of `runs` (a JSON array) with `clients` clients sent to `target` ("leader",
/// "follower"; "server" for PostgreSQL), or null.
pub(super) fn claims_run<'a>(runs: &'a Value, clients: u64, target: &str) -> &'a Value {
    runs.as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["clients"].as_u64() == Some(clients) && r["target"] == target)
        })
        .unwrap_or(&Value::Null)
}

/// Milliseconds with two decimals below 10 ms, one below 100, none above ("–" if absent).
pub(super) fn latency(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
        None => "–".into(),
    }
}

/// Answers other than grants, e.g. "503 ×2, no answer ×1" ("none" when there were none).
fn others(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_object()
        .map(|m| m.iter().map(|(k, n)| format!("{k} ×{n}")).collect())
        .unwrap_or_default();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn run_row(o: &mut String, system: &str, target: &str, run: &Value) {
    let _ = writeln!(
        o,
        "| {system} | {target} | {} | {:.0} | {} | {} | {} | {} | {} |",
        run["clients"],
        run["claims_per_s"].as_f64().unwrap_or(f64::NAN),
        latency(&run["median_ms"]),
        latency(&run["p99_ms"]),
        latency(&run["max_ms"]),
        run["granted"],
        others(&run["other_answers"]),
    );
}

/// The claims table and the sizes after it.
pub(super) fn claims_table(o: &mut String, r: &Value) {
    let c = &r["sections"]["claims"];
    if c.is_null() {
        return;
    }
    let _ = writeln!(o, "\n## Job claims against PostgreSQL\n");
    if let Some(e) = c["error"].as_str() {
        let _ = writeln!(o, "Not measured: {e}");
        return;
    }
    let pg = &c["postgres"];
    let _ = writeln!(
        o,
        "`fdatasync` of a 512-byte append on the file system of the data directories: median {} ms, p99 {} ms.\n",
        latency(&c["fdatasync"]["median_ms"]),
        latency(&c["fdatasync"]["p99_ms"]),
    );
    let _ = writeln!(
        o,
        "Each client claims fresh slots one after the other for {} s, over a connection of its own; claims/s counts grants only (201, or a row returned), over the whole run; latencies are the grants'. raft-elector: default settings, `POST /v1/jobs/{{job}}/claims` on the leader (or on a follower, which forwards it). PostgreSQL ({}): `INSERT ... ON CONFLICT DO NOTHING RETURNING token`, prepared, autocommit, fsync {}, synchronous_commit {}, full_page_writes {}, wal_sync_method {}.\n\n| system | sent to | clients | claims/s | p50 (ms) | p99 (ms) | max (ms) | granted | other answers |\n|---|---|---|---|---|---|---|---|---|",
        c["seconds_per_run"],
        pg["settings"]["server_version"].as_str().unwrap_or("?"),
        pg["settings"]["fsync"].as_str().unwrap_or("?"),
        pg["settings"]["synchronous_commit"].as_str().unwrap_or("?"),
        pg["settings"]["full_page_writes"].as_str().unwrap_or("?"),
        pg["settings"]["wal_sync_method"].as_str().unwrap_or("?"),
    );
    for n in ["3", "5"] {
        let e = &c["raft_elector"][n];
        let system = format!("raft-elector, {n} peers");
        if let Some(err) = e["error"].as_str() {
            let _ = writeln!(o, "| {system} | not measured: {err} | | | | | | | |");
            continue;
        }
        for run in e["runs"].as_array().cloned().unwrap_or_default() {
            let target = run["target"].as_str().unwrap_or("?").to_string();
            run_row(o, &system, &target, &run);
        }
    }
    if let Some(err) = pg["error"].as_str() {
        let _ = writeln!(o, "| PostgreSQL | not measured: {err} | | | | | | | |");
    }
    for run in pg["runs"].as_array().cloned().unwrap_or_default() {
        run_row(o, "PostgreSQL, fsync on", "server", &run);
    }
    sizes(o, c);
}

/// A log index as the metrics give it (a float), as an integer.
fn index(v: &Value) -> String {
    v.as_f64().map_or("?".into(), |i| format!("{i:.0}"))
}

/// The data directories after the runs.
fn sizes(o: &mut String, c: &Value) {
    let _ = writeln!(o);
    for n in ["3", "5"] {
        let s = &c["raft_elector"][n]["size"];
        let Some(peers) = s["peers"].as_array() else {
            continue;
        };
        let list: Vec<String> = peers
            .iter()
            .map(|p| {
                format!(
                    "{} ({} allocated; last log index {}, purged up to {})",
                    mib(&p["apparent_bytes"]),
                    mib(&p["allocated_bytes"]),
                    index(&p["last_log_index"]),
                    index(&p["purged_index"])
                )
            })
            .collect();
        let bulk = &c["raft_elector"][n]["bulk"];
        if !bulk.is_null() {
            let _ = writeln!(
                o,
                "- raft-elector, {n} peers, the run to {} grants (64 clients on the leader, {} s): {} claims/s, p99 {} ms, other answers {}",
                s["granted"],
                bulk["seconds"],
                bulk["claims_per_s"],
                bulk["p99_ms"],
                bulk["other_answers"]
            );
        }
        let rss: Vec<String> = s["rss_kib"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|k| {
                        k.as_f64()
                            .map_or("?".into(), |k| format!("{:.1} MiB", k / 1024.0))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "- raft-elector, {n} peers, after {} grants: the ledger keeps {} slots in {} jobs (at most `--job-history` per job); data directory per peer: {}; resident memory per peer: {}",
            s["granted"],
            s["slots_kept"],
            s["jobs"],
            list.join("; "),
            if rss.is_empty() { "not measured".to_string() } else { rss.join(", ") }
        );
    }
    let s = &c["postgres"]["size"];
    if !s.is_null() {
        let _ = writeln!(
            o,
            "- PostgreSQL after {} rows: table and index {}, data directory {} of which WAL {}",
            s["rows"],
            mib(&s["table_bytes"]),
            mib(&s["apparent_bytes"]),
            mib(&s["wal_apparent_bytes"]),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_run_is_found_by_its_client_count_and_target() {
        let runs = json!([
            {"clients": 8, "target": "leader", "claims_per_s": 1.0},
            {"clients": 8, "target": "follower", "claims_per_s": 2.0},
        ]);
        assert_eq!(claims_run(&runs, 8, "follower")["claims_per_s"], 2.0);
        assert!(claims_run(&runs, 64, "leader").is_null());
        assert!(claims_run(&Value::Null, 8, "leader").is_null());
    }

    #[test]
    fn short_latencies_keep_two_decimals() {
        assert_eq!(latency(&json!(0.456)), "0.46");
        assert_eq!(latency(&json!(12.34)), "12.3");
        assert_eq!(latency(&json!(1234.6)), "1235");
        assert_eq!(latency(&Value::Null), "–");
    }

    #[test]
    fn answers_other_than_grants_are_listed_by_kind() {
        assert_eq!(
            others(&json!({"503": 2, "no answer": 1})),
            "503 ×2, no answer ×1"
        );
        assert_eq!(others(&json!({})), "none");
    }
}
