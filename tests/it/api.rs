//! The application API beyond the election itself: probes, metrics, the `leader` subcommand,
//! refusal of foreign peers, and the StatefulSet shorthand with names that do not resolve yet.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::hosts::Hosts;
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
    // The leader lease, and a follower's window for naming a leader it no longer hears from,
    // at the default timings (180 ms). Past it (and a margin for the question's own way), an
    // answer that names a leader is a stale one.
    let window = raft_elector::config::Timing::default().follower_window();
    const MARGIN: Duration = Duration::from_millis(100);
    // Once the leader survives alone (its followers killed), once a follower (the leader and
    // the other follower stopped).
    for survivor_leads in [true, false] {
        let mut c = Cluster::start(spec(3));
        let (leader, _) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
        let survivor = if survivor_leads {
            leader
        } else {
            (leader + 1) % 3
        };
        for lost in c.all_but(survivor) {
            if survivor_leads {
                c.kill(lost);
            } else {
                c.procs.pause(lost);
            }
        }
        let cut = Instant::now();
        let role = if survivor_leads { "leader" } else { "follower" };
        // Ask the survivor as fast as it answers: after the window, never a name, never a claim.
        let mut answers = 0;
        let mut last_named = None;
        while cut.elapsed() < Duration::from_secs(2) {
            let asked = cut.elapsed();
            let a = c.ask(survivor).await.expect("the survivor answers");
            answers += 1;
            if a.is_leader || !a.name.is_empty() {
                assert!(
                    asked < window + MARGIN,
                    "the surviving {role} still named {:?} (is_leader {}) when asked {asked:?} \
                     after losing its quorum; the window is {window:?}",
                    a.name,
                    a.is_leader
                );
                last_named = Some(asked);
            }
        }
        eprintln!(
            "surviving {role}: {answers} answers in 2 s, the last naming a leader asked {last_named:?} after the quorum was lost"
        );
        assert!(answers > 20, "the survivor answered only {answers} times");
        // Every other way of asking agrees.
        assert_eq!(
            c.get(survivor, "/elector").await.expect("compat").1.trim(),
            r#"{"name":""}"#
        );
        let (_, root) = c.get(survivor, "/").await.expect("nais/elector's /");
        let root: serde_json::Value = serde_json::from_str(&root).expect("json");
        assert_eq!(root["name"], "", "{root}");
        assert_eq!(c.get(survivor, "/v1/leader").await.expect("v1").0, 503);
        assert_eq!(c.get(survivor, "/readyz").await.expect("readyz").0, 503);
        let (_, is_leader) = c.get(survivor, "/isLeader").await.expect("isLeader");
        assert!(is_leader.contains("false"), "{is_leader}");
        let out = Command::new(EXE)
            .args(["leader", "--http", &c.peers[survivor].http.to_string()])
            .output()
            .expect("run leader");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no leader known"));
    }

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
        // Its own name, and a name no peer can have. Any other name of this election may
        // speak (a peer that joins is not listed anywhere yet); whether its vote counts is the
        // membership's business.
        ("test", "peer-0", 403),
        ("test", "no such/peer", 403),
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
    // Three pods of a StatefulSet, web-0..2 at web-i.peers.test, one peer port for all, each
    // on an address of its own. Their names resolve only once the test publishes them (a
    // hosts file of their own), as DNS records appear after the pods start.
    let mut c = Cluster::new(spec(3));
    let hosts = Hosts::new(&c.dir());
    let port = free_port();
    let ip = |i: usize| IpAddr::from([127, 0, 0, 2 + i as u8]);
    for i in 0..3 {
        c.peers[i].name = format!("web-{i}");
        let mut cmd = Command::new(EXE);
        cmd.args(["--election", "test", "--replicas", "3"])
            .args([
                "--peer-domain",
                "peers.test",
                "--peer-port",
                &port.to_string(),
            ])
            .args(["--peer-listen", &format!("{}:{port}", ip(i))])
            .arg("--data-dir")
            .arg(c.data_dir(i))
            .args(["--http", &c.peers[i].http.to_string()])
            .env("HOSTNAME", &c.peers[i].name)
            .env("RAFT_ELECTOR_LOG", "info,raft_elector=debug");
        c.procs.spawn(i, hosts.wrap(&cmd));
    }
    // Each listens on its own address, tries its peers and cannot reach them: their
    // addresses listen, so it is their names that do not resolve. It serves meanwhile,
    // knowing no leader.
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..3 {
        loop {
            let listening = std::net::TcpStream::connect((ip(i), port)).is_ok();
            let log = c.log_text(i);
            let tried = (0..3)
                .filter(|&j| j != i)
                .all(|j| log.contains(&format!("cannot reach peer at web-{j}.peers.test:{port}")));
            if listening && log.contains("peer not reachable yet") && tried {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "web-{i} logged no failed lookup of its peers:\n{}",
                c.log_tail(i, 20)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(c.get(i, "/readyz").await.expect("readyz").0, 503);
        let a = c.ask(i).await.expect("answer");
        assert_eq!((a.name.as_str(), a.is_leader), ("", false));
    }
    // The records appear: the peers find each other and elect a leader that all three name.
    let published = Instant::now();
    hosts.publish(
        &(0..3)
            .map(|i| (ip(i), format!("web-{i}.peers.test")))
            .collect::<Vec<_>>(),
    );
    let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(20)).await;
    eprintln!(
        "names published; web-{leader} leads (term {term}), agreed {:?} later",
        published.elapsed()
    );
    for i in 0..3 {
        assert!(c.alive(i), "web-{i} exited");
    }
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
