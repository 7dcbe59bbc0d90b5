//! /proc readings, disk use, the load average, the date and the machine description.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Resident memory (VmRSS) and its peak (VmHWM) in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time used so far by a process.
#[derive(Debug, Clone, Copy)]
pub struct CpuTime {
    /// Time on a CPU of all its live threads, in ns (`/proc/PID/task/*/schedstat`, the
    /// scheduler's own accounting): exact where the tick counts below move in 10 ms steps.
    pub run_ns: u64,
    /// User and system time in clock ticks (`/proc/PID/stat`), for the split between them.
    pub user_ticks: u64,
    pub system_ticks: u64,
}

/// CPU time used so far by `pid`, or `None` when it is gone.
pub fn cpu_time(pid: u32) -> Option<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let user_ticks: u64 = fields.get(11)?.parse().ok()?;
    let system_ticks: u64 = fields.get(12)?.parse().ok()?;
    let mut run_ns = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        // A thread that ended between the listing and the read counts as nothing.
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            run_ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(CpuTime {
        run_ns,
        user_ticks,
        system_ticks,
    })
}

pub fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Bytes a directory tree occupies on disk (allocated blocks) and its apparent size.
pub fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut allocated = 0;
    let mut apparent = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                allocated += m.blocks() * 512;
                apparent += m.len();
            }
        }
    }
    (allocated, apparent)
}

/// How long `fdatasync` takes on the file system of the temporary directory (where the
/// data directories of the peers and of PostgreSQL go): `n` appends of 512 bytes, each
/// followed by `fdatasync`; median and p99 in ms.
pub fn fdatasync_probe(n: usize) -> Value {
    use std::io::Write;
    let run = || -> std::io::Result<Vec<f64>> {
        let dir = tempfile::Builder::new()
            .prefix("raft-elector-bench-fsync-")
            .tempdir()?;
        let mut f = std::fs::File::create(dir.path().join("probe"))?;
        let mut ms = Vec::with_capacity(n);
        for _ in 0..n {
            f.write_all(&[b'x'; 512])?;
            let t = std::time::Instant::now();
            f.sync_data()?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(ms)
    };
    match run() {
        Ok(mut ms) => {
            ms.sort_by(f64::total_cmp);
            json!({
                "n": n,
                "median_ms": crate::stats::round3(crate::stats::median(&ms)),
                "p99_ms": crate::stats::round3(crate::stats::percentile(&ms, 0.99)),
            })
        }
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    [
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
    ]
}

pub fn load_json() -> Value {
    let l = loadavg();
    json!({ "1m": l[0], "5m": l[1], "15m": l[2] })
}

/// UTC date and time of now, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let out = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&out)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// What the figures were measured on.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "os": std::fs::read_to_string("/etc/os-release").unwrap_or_default().lines()
            .find(|l| l.starts_with("PRETTY_NAME=")).map(|l| l.trim_start_matches("PRETTY_NAME=").trim_matches('"').to_string()).unwrap_or_default(),
        "rustc": first_line("rustc", &["--version"]),
        "etcd": first_line("etcd", &["--version"]),
        "wrk": first_line("wrk", &["--version"]).split(" Copyright").next().unwrap_or("").to_string(),
        // scripts/bench.sh records the commit the binary was built from (it is built from the
        // working tree, which may differ from the commit, and HEAD may move during the run).
        "commit": std::env::var("BENCH_BUILD_COMMIT").unwrap_or_else(|_| first_line("git", &["rev-parse", "--short", "HEAD"])),
        "uncommitted_changes": std::env::var("BENCH_BUILD_DIRTY").map(|d| d == "1").unwrap_or_else(|_| !first_line("git", &["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"]).is_empty()),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_format() {
        let d = super::utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20"), "{d}");
    }
}
