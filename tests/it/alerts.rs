//! The alert rules of config/prometheus: checked and unit-tested by `promtool`, then loaded by
//! a real Prometheus server (Debian's `prometheus` package; scripts/test.sh installs it) that
//! scrapes a live 3-peer cluster's probe listeners and fires "no leader" once two peers are
//! killed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{Ask, Cluster};

use crate::spec;

fn prometheus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus")
}

/// Runs `promtool` in config/prometheus; its output, or a failure that says what to install.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(prometheus_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install Debian's prometheus package (scripts/test.sh does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_rules_and_the_scrape_config_and_their_unit_tests_pass() {
    let rules = promtool(&["check", "rules", "alerts.yaml"]);
    assert!(rules.contains("SUCCESS: 7 rules found"), "{rules}");
    let tests = promtool(&["test", "rules", "alerts.test.yaml"]);
    assert!(tests.contains("SUCCESS"), "{tests}");
    promtool(&["check", "config", "prometheus.yaml"]);
}

/// A Prometheus server on loopback, killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes `targets` every second in job `raft-elector`, with the project's alert rules
    /// evaluated every second.
    fn start(targets: &[SocketAddr]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: raft-elector\n    static_configs:\n      - targets: [{}]\n",
            prometheus_dir().join("alerts.yaml").display(),
            list.join(", ")
        );
        let file = dir.path().join("prometheus.yaml");
        std::fs::write(&file, config).expect("write the config");
        let addr = testkit::ports::free_addr();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus: install Debian's prometheus package (scripts/test.sh does)");
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    async fn api(&self, path: &str) -> Option<serde_json::Value> {
        let url = format!("http://{}{path}", self.addr);
        let resp = testkit::http::client(Duration::from_secs(2))
            .get(url)
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// Waits until `check` holds on the answer of `path`; panics after `within`.
    async fn until(
        &self,
        path: &str,
        within: Duration,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> Duration {
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < within {
            if let Some(v) = self.api(path).await {
                if check(&v) {
                    return started.elapsed();
                }
                last = Some(v);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{what}: not within {within:?}; last answer of {path}: {last:?}");
    }
}

/// Every `raft_elector_*` metric the alert rules and the dashboard use is one a live peer
/// exports, or, for a labelled family with no sample yet (nothing refused so far), one that
/// src/metrics.rs registers under that name.
async fn every_metric_named_is_exported(c: &Cluster) {
    let (_, text) = c.get(0, "/metrics").await.expect("GET /metrics");
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let metrics_rs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics.rs"))
            .expect("read src/metrics.rs");
    for file in ["alerts.yaml", "dashboard.json"] {
        let body = std::fs::read_to_string(prometheus_dir().join(file)).expect("read");
        let mut named: Vec<&str> = body
            .match_indices("raft_elector_")
            .map(|(at, _)| {
                let rest = &body[at..];
                let end = rest
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        named.sort();
        named.dedup();
        assert!(named.len() >= 5, "{file}: {named:?}");
        for name in named {
            let family = name.strip_suffix("_total").unwrap_or(name);
            let registered = format!("\"{}\"", &family["raft_elector_".len()..]);
            assert!(
                families.contains(&family) || metrics_rs.contains(&registered),
                "{file} uses {name}, which the peer does not export; it exports {families:?}"
            );
        }
    }
}

/// The alerts named `name` in state `state` in an `/api/v1/alerts` answer.
fn alerts<'a>(v: &'a serde_json::Value, name: &str, state: &str) -> Vec<&'a serde_json::Value> {
    v["data"]["alerts"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|a| a["labels"]["alertname"] == name && a["state"] == state)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_fires_no_leader_once_two_of_three_peers_are_killed() {
    let mut c = Cluster::new(spec(3));
    let probes: Vec<SocketAddr> = (0..3).map(|_| testkit::ports::free_addr()).collect();
    for (i, probe) in probes.iter().enumerate() {
        c.peers[i].extra.push(format!("--probe-http={probe}"));
    }
    c.spawn_all();
    let (leader, _) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    every_metric_named_is_exported(&c).await;
    let prom = Prometheus::start(&probes);
    prom.until(
        "/api/v1/targets",
        Duration::from_secs(30),
        "all three probe listeners scraped and up",
        |v| {
            v["data"]["activeTargets"]
                .as_array()
                .is_some_and(|t| t.len() == 3 && t.iter().all(|t| t["health"] == "up"))
        },
    )
    .await;
    // The rule's join finds the election: one series, the leader's claim.
    prom.until(
        "/api/v1/query?query=sum%20by%20(election)%20(raft_elector_is_leader%20*%20on%20(instance)%20group_left%20(election)%20raft_elector_info)",
        Duration::from_secs(10),
        "the leader counted per election",
        |v| {
            v["data"]["result"][0]["metric"]["election"] == "test"
                && v["data"]["result"][0]["value"][1] == "1"
        },
    )
    .await;
    // Until every target has been scraped, a rule evaluation may see no claim (pending): with
    // a leader that clears within an evaluation or two, and never fires.
    prom.until(
        "/api/v1/alerts",
        Duration::from_secs(15),
        "no no-leader alert, pending or firing, while a leader exists",
        |v| {
            alerts(v, "RaftElectorNoLeader", "firing").is_empty()
                && alerts(v, "RaftElectorNoLeader", "pending").is_empty()
        },
    )
    .await;

    // Two of three killed, the leader among them: the survivor cannot elect.
    let survivor = (leader + 1) % 3;
    for i in c.all_but(survivor) {
        c.kill(i);
    }
    let took = prom
        .until(
            "/api/v1/alerts",
            Duration::from_secs(60),
            "RaftElectorNoLeader firing",
            |v| {
                alerts(v, "RaftElectorNoLeader", "firing")
                    .iter()
                    .any(|a| a["labels"]["election"] == "test")
            },
        )
        .await;
    eprintln!(
        "RaftElectorNoLeader fired {} ms after two of three peers were killed (its `for` is 10 s)",
        took.as_millis()
    );
    assert!(
        took >= Duration::from_secs(9),
        "fired before its 10 s `for`: {took:?}"
    );
}
