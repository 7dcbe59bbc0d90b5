//! Three containers elect one leader that all of them name, over every API the app may use.

use std::time::{Duration, Instant};

use testkit::docker::{docker_ok, require_docker, Cluster};
use testkit::Ask;

use crate::statefulset;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_containers_agree_on_one_leader() {
    require_docker("three_containers_agree_on_one_leader");
    let spec = statefulset(3); // the image built (or found up to date) before the clock starts
    let t0 = Instant::now();
    let c = Cluster::start(&spec).await;
    let started = t0.elapsed();
    let (leader, term) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
    eprintln!(
        "containers created in {started:?}; leader {} (term {term}) agreed {:?} after the first `docker run`",
        c.nodes[leader].name,
        t0.elapsed()
    );
    let name = &c.nodes[leader].name;

    for i in c.all() {
        // The old sidecar's API: any path names the leader; /isLeader answers for the asker.
        let (status, body) = c.get(i, "/").await.expect("GET /");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["name"], name.as_str(), "GET / on {}", c.nodes[i].name);
        let (_, body) = c.get(i, "/isLeader").await.expect("GET /isLeader");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            v["isLeader"],
            i == leader,
            "GET /isLeader on {}",
            c.nodes[i].name
        );
        let (status, _) = c.get(i, "/readyz").await.expect("GET /readyz");
        assert_eq!(status, 200);
        let (status, body) = c.get(i, "/metrics").await.expect("GET /metrics");
        assert_eq!(status, 200);
        assert!(body.contains("raft_elector_is_leader"), "metrics: {body}");
        // The `leader` subcommand inside the image (no shell there) agrees.
        let inside = c.ask_inside(i).await.expect("raft-elector leader --json");
        assert_eq!(
            (inside.name.as_str(), inside.is_leader),
            (name.as_str(), i == leader)
        );
    }

    // The examples in config/examples (Python, shell) find the same leader: their check says
    // "this pod leads" on the leader's pod only.
    for i in c.all() {
        let addr = c.probe.addr(i).expect("published port");
        let url = format!("http://{addr}");
        for example in [
            ["python3", "config/examples/leader_only.py", "--check"],
            ["sh", "config/examples/leader-only.sh", "--check"],
        ] {
            let status = std::process::Command::new(example[0])
                .args(&example[1..])
                .current_dir(testkit::docker::repo())
                .env("HOSTNAME", &c.nodes[i].name)
                .env("RAFT_ELECTOR_URL", &url)
                .status()
                .expect("run the example");
            assert_eq!(
                status.success(),
                i == leader,
                "{} --check as {}: {status}",
                example[1],
                c.nodes[i].name
            );
        }
    }

    // The peer process runs as the image's non-root user, as PID 1 of its container.
    for node in &c.nodes {
        let user = docker_ok(&["inspect", "--format", "{{.Config.User}}", &node.container]).await;
        assert_eq!(user, "65532:65532");
        let top = docker_ok(&["top", &node.container, "-o", "pid,uid,args"]).await;
        let row = top.lines().nth(1).unwrap_or_default();
        assert!(
            row.split_whitespace().nth(1) == Some("65532") && row.contains("/raft-elector"),
            "process table of {}: {top}",
            node.container
        );
    }
    let size: u64 = docker_ok(&["image", "inspect", "--format", "{{.Size}}", &c.image])
        .await
        .parse()
        .expect("size");
    eprintln!("image {} is {} kB", c.image, size / 1000);
    assert!(
        size < 30_000_000,
        "the image should stay a few MB, is {size} bytes"
    );
}
