//! The application API beyond the election itself: probes, metrics, the `leader` subcommand,
//! refusal of foreign peers, and the StatefulSet shorthand with names that do not resolve yet.

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::{free_port, metric, Ask, Cluster};

use crate::{spec, EXE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_the_leader_subcommand() {
    let c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    for i in 0..3 {
        assert_eq!(c.get(i, "/healthz").await.expect("healthz").0, 200);
        assert_eq!(c.get(i, "/readyz").await.expect("readyz").0, 200);
        let (status, text) = c.get(i, "/metrics").await.expect("metrics");
        assert_eq!(status, 200);
        assert_eq!(
            metric(&text, "raft_elector_is_leader"),
            Some(if i == leader { 1.0 } else { 0.0 }),
            "{text}"
        );
        assert!(metric(&text, "raft_elector_term").is_some_and(|t| t >= term as f64));
        assert!(metric(&text, "raft_elector_leader_changes_total").is_some_and(|n| n >= 1.0));
        for name in [
            "raft_elector_elections_started_total",
            "raft_elector_leader_known",
        ] {
            assert!(metric(&text, name).is_some(), "{name} missing:\n{text}");
        }
    }
    let out = Command::new(EXE)
        .args(["leader", "--http", &c.peers[0].http.to_string()])
        .output()
        .expect("run leader");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        c.peers[leader].name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_quorum_no_leader_is_named() {
    let mut c = Cluster::new(spec(3));
    c.spawn(0);
    // Wait for the lone peer to serve, then check it stays leaderless for a while.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.get(0, "/healthz").await.is_none() {
        assert!(Instant::now() < deadline, "peer did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let until = Instant::now() + Duration::from_millis(700);
    while Instant::now() < until {
        let a = c.ask(0).await.expect("answer");
        assert_eq!((a.name.as_str(), a.is_leader), ("", false));
        assert_eq!(
            c.get(0, "/").await.expect("compat").1.trim(),
            r#"{"name":""}"#
        );
        assert_eq!(c.get(0, "/v1/leader").await.expect("v1").0, 503);
        assert_eq!(c.get(0, "/readyz").await.expect("readyz").0, 503);
    }
    let out = Command::new(EXE)
        .args(["leader", "--http", &c.peers[0].http.to_string()])
        .output()
        .expect("run leader");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no leader known"));

    // Nothing listening: exit 2 with a clear line.
    let out = Command::new(EXE)
        .args(["leader", "--http", &format!("127.0.0.1:{}", free_port())])
        .output()
        .expect("run leader");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach raft-elector"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_of_another_election_are_refused() {
    let c = Cluster::start(spec(3));
    c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let url = format!("http://{}/raft/v1/vote", c.peers[0].peer_addr);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (election, from, expect) in [
        ("other", "peer-1", 403),
        ("test", "stranger", 403),
        ("test", "peer-1", 400),
    ] {
        let resp = client
            .post(&url)
            .header("x-raft-elector-election", election)
            .header("x-raft-elector-from", from)
            .header("x-raft-elector-protocol", "1")
            .body(vec![0xffu8; 16])
            .send()
            .await
            .expect("response");
        assert_eq!(
            resp.status().as_u16(),
            expect,
            "election {election}, from {from}"
        );
    }
    let (_, text) = c.get(0, "/metrics").await.expect("metrics");
    assert_eq!(
        metric(
            &text,
            "raft_elector_peer_requests_refused_total{reason=\"election\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // The cluster is unharmed.
    c.agreed_leader(&[0, 1, 2], Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_peers_that_do_not_resolve_yet_are_retried() {
    let dir = tempfile::tempdir().expect("tmp");
    let http = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(EXE)
        .args([
            "--election",
            "jobs",
            "--replicas",
            "3",
            "--peer-domain",
            "peers.invalid",
            "--http",
            &http,
        ])
        .args(["--peer-listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .env("HOSTNAME", "web-1")
        .env("RAFT_ELECTOR_LOG", "info")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = None;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://{http}/readyz")).send().await {
            ready = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Still alive after several bootstrap rounds against names that cannot resolve.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let alive = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ready, Some(503), "serves, but knows no leader");
    assert!(alive, "unresolvable peers must not be fatal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_peer_id_and_term() {
    let mut spec = spec(1);
    spec.flags = vec!["--log-format".into(), "json".into()];
    let mut c = Cluster::start(spec);
    c.agreed_leader(&[0], Duration::from_secs(10)).await;
    c.stop(0).await;
    let log = c.log_text(0);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let elected = lines
        .iter()
        .find(|l| l["message"] == "leader elected")
        .unwrap_or_else(|| panic!("no election logged:\n{log}"));
    assert_eq!(elected["span"]["id"], "peer-0");
    assert!(
        elected["span"]["term"].as_u64().is_some_and(|t| t >= 1),
        "{elected}"
    );
    assert!(lines.iter().all(|l| l["span"]["id"] == "peer-0"
        || l["target"]
            .as_str()
            .is_some_and(|t| !t.starts_with("raft_elector"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_listener_serves_health_readiness_and_metrics_only() {
    let probe = format!("127.0.0.1:{}", free_port());
    let mut spec = spec(1);
    spec.flags = vec!["--probe-http".into(), probe.clone()];
    let mut c = Cluster::new(spec);
    // An empty secret variable means "no secret", not an error.
    c.spawn_with(0, |cmd| {
        cmd.env("RAFT_ELECTOR_PEER_SECRET", "");
    });
    c.agreed_leader(&[0], Duration::from_secs(10)).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/", 404),
        ("/v1/leader", 404),
    ] {
        let resp = client
            .get(format!("http://{probe}{path}"))
            .send()
            .await
            .expect("probe answer");
        assert_eq!(resp.status().as_u16(), status, "{path}");
    }
}
