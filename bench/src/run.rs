//! One run: wait for a quiet machine, measure the chosen sections, save results.json after
//! each, then render the report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::cli::Args;
use crate::defaults::default_timings;
use crate::sections::{self, SECTIONS};
use crate::{report, sys};

fn exe_path(args: &Args) -> Result<PathBuf, String> {
    let exe = match &args.exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .map(|d| d.join("raft-elector"))
            .ok_or("cannot locate raft-elector")?,
    };
    if !exe.is_file() {
        return Err(format!(
            "{} not found: build it first (cargo build --release) or pass --exe",
            exe.display()
        ));
    }
    Ok(exe)
}

async fn wait_quiet(args: &Args) -> Value {
    let started = Instant::now();
    let deadline = started + args.wait_quiet;
    let mut samples = Vec::new();
    loop {
        let l = sys::loadavg()[0];
        samples.push(l);
        if l <= args.max_load || Instant::now() >= deadline {
            break;
        }
        eprintln!(
            "bench: load average {l:.2} > {:.2}; waiting (up to {:?} more)",
            args.max_load,
            deadline.saturating_duration_since(Instant::now())
        );
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    json!({
        "max_load": args.max_load,
        "waited_s": started.elapsed().as_secs(),
        "quiet": samples.last().is_some_and(|&l| l <= args.max_load),
        "load_samples": samples,
    })
}

pub(crate) async fn run(args: Args) -> Result<(), String> {
    if args.report_only {
        let path = args.out.join("results.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let results: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        return report::write_all(&args.out, &results);
    }
    let exe = exe_path(&args)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let results_path = args.out.join("results.json");
    let mut results: Map<String, Value> = if args.only.is_empty() {
        Map::new()
    } else {
        std::fs::read_to_string(&results_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    };
    let quiet = wait_quiet(&args).await;
    let started = Instant::now();
    results.insert("date".into(), json!(sys::utc_now()));
    results.insert("machine".into(), sys::machine());
    results.insert("quiet_wait".into(), quiet);
    results.insert("load_at_start".into(), sys::load_json());
    let defaults = default_timings(&exe);
    results.insert(
        "settings".into(),
        json!({
            "heartbeat_ms": defaults[0], "election_timeout_min_ms": defaults[1],
            "election_timeout_max_ms": defaults[2], "defaults_from": "raft-elector --help",
            "trials": args.trials, "elect_trials": args.elect_trials, "quick": args.quick,
            "poll_interval_ms": 5,
        }),
    );
    let mut sections: Map<String, Value> = results
        .get("sections")
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();

    for name in SECTIONS {
        if !args.wanted(name) {
            continue;
        }
        eprintln!("bench: == {name} ==");
        let load_before = sys::load_json();
        let t = Instant::now();
        let value = sections::measure(name, &exe, &args).await;
        let mut value = value.unwrap_or_else(|e| {
            eprintln!("bench: {name} failed: {e}");
            json!({ "error": e })
        });
        if let Some(obj) = value.as_object_mut() {
            obj.insert("load_before".into(), load_before);
            obj.insert("load_after".into(), sys::load_json());
            obj.insert("seconds".into(), json!(t.elapsed().as_secs()));
            obj.insert("date".into(), json!(sys::utc_now()));
            // A run with --only keeps the other sections: each says what it measured.
            let commit = results
                .get("machine")
                .map_or(Value::Null, |m| m["commit"].clone());
            obj.insert("commit".into(), commit);
        }
        sections.insert(name.to_string(), value);
        // Save after every section: a long run that fails late keeps what it measured.
        results.insert("sections".into(), Value::Object(sections.clone()));
        write_json(&results_path, &results)?;
    }
    results.insert("load_at_end".into(), sys::load_json());
    results.insert("run_seconds".into(), json!(started.elapsed().as_secs()));
    results.insert("sections".into(), Value::Object(sections));
    write_json(&results_path, &results)?;
    let results = Value::Object(results);
    report::write_all(&args.out, &results)?;
    eprintln!(
        "bench: wrote {} and results.md + charts in {}",
        results_path.display(),
        args.out.display()
    );
    Ok(())
}

fn write_json(path: &Path, v: &Map<String, Value>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())? + "\n";
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
