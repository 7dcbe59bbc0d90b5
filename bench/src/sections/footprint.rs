//! Footprint: idle RSS and CPU, binary and image size, loopback round trip.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use testkit::docker;
use testkit::{Ask, Cluster};

use super::failover::SLOWER;
use super::{cluster_with, image_spec, ms, started, started_cluster};
use crate::cli::Args;
use crate::{stats, sys};

/// Idle RSS and CPU of 3 peers with default settings; binary and image size; loopback RTT.
pub(super) async fn footprint(exe: &Path, args: &Args) -> Result<Value, String> {
    let (c, cur) = started(exe, 3, &[], false).await?;
    let all = [0, 1, 2];
    // Let start-up work finish, then measure with nobody asking anything.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let peers = idle_usage(&all.map(|i| c.pid(i)), args.idle_secs).await;
    let after = c
        .agreed(&all, Duration::from_secs(5))
        .await
        .ok_or("no leader after the idle period")?;
    let peers: Vec<Value> = peers
        .into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            v["role"] = json!(if i == after.leader {
                "leader"
            } else {
                "follower"
            });
            v
        })
        .collect();
    let rtt = loopback_rtt(&c, cur.leader).await;
    drop(c);
    // What the idle cost depends on: the heartbeat rate (the failover section measures crash
    // failover at the same slower timings), peer authentication, the transport.
    let mut variants = Vec::new();
    for (label, flags, tls) in [
        (
            "heartbeat 50 ms, election timeout 167-333 ms",
            SLOWER[0].1,
            false,
        ),
        (
            "heartbeat 100 ms, election timeout 333-667 ms",
            SLOWER[1].1,
            false,
        ),
        (
            "defaults with a peer secret (HMAC on every peer request)",
            &["--peer-secret", "bench-secret-0123456789abcdef"][..],
            false,
        ),
        (
            "defaults, one HTTP request per message (--peer-transport http, as before streams)",
            &["--peer-transport", "http"][..],
            false,
        ),
        (
            "defaults with peer TLS (--peer-tls-*: mutual TLS 1.3, ECDSA P-256 certificates)",
            &[][..],
            true,
        ),
        (
            "defaults with peer TLS and a peer secret",
            &["--peer-secret", "bench-secret-0123456789abcdef"][..],
            true,
        ),
    ] {
        let cluster = cluster_with(exe, 3, flags, false, tls);
        let Ok((c, cur)) = started_cluster(cluster).await else {
            variants.push(json!({ "label": label, "error": "no leader" }));
            continue;
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut peers = idle_usage(&all.map(|i| c.pid(i)), args.idle_secs.div_ceil(2)).await;
        for (i, p) in peers.iter_mut().enumerate() {
            p["role"] = json!(if i == cur.leader {
                "leader"
            } else {
                "follower"
            });
        }
        let mut flags = flags.join(" ");
        if tls {
            flags = format!("--peer-tls-cert/-key/-ca {flags}")
                .trim_end()
                .to_string();
        }
        variants.push(json!({ "label": label, "flags": flags, "peers": peers }));
    }
    let binary = std::fs::metadata(exe).map(|m| m.len()).unwrap_or(0);
    let stripped = stripped_size(exe);
    let image = args.image.as_deref().and_then(image_size);
    let containers = match args.image.as_deref() {
        Some(image) => image_idle(image, args.idle_secs)
            .await
            .unwrap_or_else(|e| json!({ "error": e })),
        None => Value::Null,
    };
    Ok(json!({
        "peers": peers,
        "idle_secs": args.idle_secs,
        "variants": variants,
        "same_leader_throughout": after.leader == cur.leader && after.term == cur.term,
        "loopback_http_rtt_ms": stats::round3(rtt),
        "binary_bytes": binary,
        "binary_stripped_bytes": stripped,
        "image": args.image,
        "image_bytes": image,
        "image_peers": containers,
    }))
}

/// Idle RSS and CPU of 3 containers of the image (the static musl build pods run), default
/// settings, read from the host through each container's main process.
async fn image_idle(image: &str, secs: u64) -> Result<Value, String> {
    docker::cli::available()?;
    let c = docker::Cluster::start(&image_spec(image, "footprint", "info")).await;
    let all = c.all();
    let first = c
        .agreed(&all, Duration::from_secs(60))
        .await
        .ok_or("no leader among the containers")?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut pids = Vec::new();
    for i in all.iter().copied() {
        pids.push(c.inspect(i, "{{.State.Pid}}").await.trim().parse().ok());
    }
    let mut peers = idle_usage(&pids, secs).await;
    let after = c.agreed(&all, Duration::from_secs(5)).await;
    for (i, p) in peers.iter_mut().enumerate() {
        p["role"] = json!(if i == first.leader {
            "leader"
        } else {
            "follower"
        });
    }
    let same = after.is_some_and(|a| a.leader == first.leader && a.term == first.term);
    Ok(json!({ "peers": peers, "same_leader_throughout": same }))
}

/// RSS and CPU share of processes over an idle period: the share from the scheduler's
/// accounting in ns, and the user / system split from the tick counts.
pub(super) async fn idle_usage(pids: &[Option<u32>], secs: u64) -> Vec<Value> {
    let hz = sys::clock_ticks_per_sec();
    let t0: Vec<Option<sys::CpuTime>> = pids.iter().map(|p| p.and_then(sys::cpu_time)).collect();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = start.elapsed().as_secs_f64();
    pids.iter()
        .zip(t0)
        .map(|(p, t0)| {
            let t1 = p.and_then(sys::cpu_time);
            let share = |f: &dyn Fn(&sys::CpuTime) -> f64| match (&t0, &t1) {
                (Some(a), Some(b)) => stats::round3((f(b) - f(a)) / elapsed * 100.0),
                _ => Value::Null,
            };
            let mem = p.and_then(sys::rss_kib);
            json!({
                "rss_kib": mem.map(|m| m.0),
                "peak_rss_kib": mem.map(|m| m.1),
                "cpu_percent_of_core": share(&|c| c.run_ns as f64 / 1e9),
                "user_percent_of_core": share(&|c| c.user_ticks as f64 / hz),
                "system_percent_of_core": share(&|c| c.system_ticks as f64 / hz),
            })
        })
        .collect()
}

/// Median of 200 sequential `GET /healthz` round trips on a kept-alive connection.
async fn loopback_rtt(c: &Cluster, i: usize) -> f64 {
    let url = format!("http://{}/healthz", c.peers[i].http);
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        if let Ok(r) = c.client.get(&url).send().await {
            let _ = r.bytes().await;
            samples.push(ms(t.elapsed()));
        }
    }
    samples.sort_by(f64::total_cmp);
    stats::median(&samples)
}

fn stripped_size(exe: &Path) -> Option<u64> {
    let dir = tempfile::tempdir().ok()?;
    let copy = dir.path().join("raft-elector");
    std::fs::copy(exe, &copy).ok()?;
    let ok = std::process::Command::new("strip")
        .arg(&copy)
        .status()
        .ok()?
        .success();
    ok.then(|| std::fs::metadata(&copy).ok().map(|m| m.len()))
        .flatten()
}

fn image_size(image: &str) -> Option<u64> {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", image])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
