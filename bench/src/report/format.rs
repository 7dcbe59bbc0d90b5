//! Formatting shared by the report's tables: numbers as the tables show them, and the
//! summary row of a timing measurement.

use std::fmt::Write;

use serde_json::Value;

/// A JSON number.
pub(super) fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Milliseconds as the tables show them (seconds from 10 s up, "–" when absent).
pub(super) fn ms(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x >= 10_000.0 => format!("{:.1} s", x / 1000.0),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "–".into(),
    }
}

/// The raw samples of a timing summary.
pub(super) fn samples(v: &Value) -> Vec<f64> {
    v["samples_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// One row of a median / p99 / max / n / failed table ("not measured" when absent).
pub(super) fn summary_row(out: &mut String, what: &str, v: &Value) {
    if v.is_null() || v.get("error").is_some() {
        let _ = writeln!(out, "| {what} | not measured | | | | |");
        return;
    }
    let _ = writeln!(
        out,
        "| {what} | {} | {} | {} | {} | {} |",
        ms(&v["median_ms"]),
        ms(&v["p99_ms"]),
        ms(&v["max_ms"]),
        v["n"],
        v["failed"]
    );
}

/// Bytes as MiB with one decimal ("–" when absent).
pub(super) fn mib(v: &Value) -> String {
    v.as_f64()
        .map_or("–".to_string(), |b| format!("{:.1} MiB", b / 1048576.0))
}

/// The election timeout bounds the run's product had by default (ms), from the settings
/// (`raft-elector --help`); 100-200 ms, the defaults before session 31, for older results.
pub(super) fn election_timeout(r: &Value) -> (f64, f64) {
    let st = &r["settings"];
    (
        st["election_timeout_min_ms"].as_f64().unwrap_or(100.0),
        st["election_timeout_max_ms"].as_f64().unwrap_or(200.0),
    )
}
