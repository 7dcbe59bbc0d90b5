//! Application API load: `wrk` against raft-elector and against a bare axum handler that
//! returns the same JSON without asking anything.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// What `wrk --latency` printed.
#[derive(Debug, Clone, Default)]
pub struct WrkResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

impl WrkResult {
    pub fn to_json(&self) -> Value {
        json!({
            "rps": self.rps.round(),
            "p50_ms": crate::stats::round3(self.p50_ms),
            "p90_ms": crate::stats::round3(self.p90_ms),
            "p99_ms": crate::stats::round3(self.p99_ms),
            "requests": self.requests,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
        })
    }
}

fn parse_duration_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => return None,
    })
}

/// Parses wrk's report.
pub fn parse_wrk(out: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    for line in out.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => r.rps = v.parse().ok()?,
            (Some("50%"), Some(v)) => r.p50_ms = parse_duration_ms(v)?,
            (Some("90%"), Some(v)) => r.p90_ms = parse_duration_ms(v)?,
            (Some("99%"), Some(v)) => r.p99_ms = parse_duration_ms(v)?,
            (Some("Non-2xx"), _) => {
                r.non_2xx = t.rsplit(' ').next()?.parse().ok()?;
            }
            (Some("Socket"), Some("errors:")) => {
                r.socket_errors = t
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum();
            }
            (Some(n), Some("requests")) if t.contains(" requests in ") => {
                r.requests = n.parse().ok()?;
            }
            _ => {}
        }
    }
    (r.rps > 0.0).then_some(r)
}

/// Runs wrk once.
pub async fn wrk(url: &str, threads: u32, conns: u32, secs: u32) -> Result<WrkResult, String> {
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{secs}s"),
            "--timeout",
            "2s",
            "--latency",
            url,
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(u64::from(secs) + 30), out)
        .await
        .map_err(|_| "wrk did not finish".to_string())?
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| format!("cannot parse wrk's output: {text}"))
}

/// The bare handler: the same JSON bodies built per request as raft-elector's, but no leader
/// check. With `workers == 0` it has raft-elector's shape (its application API runs on one
/// thread with a current-thread runtime); otherwise a multi-thread runtime with that many
/// workers, for reference. Runs until killed.
pub fn serve_bare(addr: SocketAddr, workers: usize) -> std::io::Result<()> {
    let rt = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        let app = Router::new()
            .route(
                "/v1/leader",
                get(|| async {
                    Json(json!({
                        "name": "peer-0", "term": 7, "is_leader": true, "id": "peer-0",
                        "election": "bench", "role": "leader", "valid_ms": 150, "voters": 3
                    }))
                }),
            )
            .fallback(|| async { Json(json!({ "name": "peer-0" })) });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, app).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk() {
        let out = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.20ms  300.00us   5.00ms   90.00%\n    Req/Sec    50.00k     1.00k   52.00k    80.00%\n  Latency Distribution\n     50%  1.10ms\n     75%    1.30ms\n     90%  1.50ms\n     99%  812.00us\n  50000 requests in 1.00s, 6.00MB read\n  Non-2xx or 3xx responses: 3\n  Socket errors: connect 0, read 2, write 0, timeout 1\nRequests/sec:  49999.50\nTransfer/sec:      6.00MB\n";
        let r = parse_wrk(out).expect("parsed");
        assert_eq!(r.rps, 49999.5);
        assert_eq!(r.p50_ms, 1.1);
        assert_eq!(r.p99_ms, 0.812);
        assert_eq!(r.requests, 50000);
        assert_eq!(r.non_2xx, 3);
        assert_eq!(r.socket_errors, 3);
    }
}
