//! The API contract (docs/openapi.yaml) against a live 3-peer cluster: schemathesis (in the
//! tests' venv) generates requests for every operation but the two endless event streams
//! (tested in tests/it/push.rs) and checks every answer against the spec: status codes,
//! content types, headers, bodies, no 5xx, bad input refused. Run on a follower, so that
//! `POST /v1/resign` answers 409 and changes nothing; the cluster's leader and term must be
//! unchanged by the run and every peer still running.

use std::path::Path;
use std::time::Duration;

use testkit::{Ask, Cluster};

use crate::push::venv_python;
use crate::spec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_conforms_to_the_openapi_spec_and_the_run_changes_no_leadership() {
    let python = venv_python();
    let st = python.with_file_name("st");
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c
        .settled_leader(
            &c.all(),
            Duration::from_millis(300),
            Duration::from_secs(10),
        )
        .await;
    let follower = (leader + 1) % 3;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(&st)
        .arg("run")
        .arg(root.join("docs/openapi.yaml"))
        .args(["--base-url", &format!("http://{}", c.peers[follower].http)])
        .args(["--checks", "all"])
        .args([
            "--exclude-path",
            "/sse",
            "--exclude-path",
            "/v1/leader/events",
        ])
        .args([
            "--hypothesis-max-examples",
            "50",
            "--request-timeout",
            "5000",
        ])
        .args(["--hypothesis-seed", "1"])
        .env("PYTHONPATH", root.join("tests/it/openapi"))
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run schemathesis (config/kubernetes/validate.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "schemathesis found answers that break docs/openapi.yaml:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("12 passed"),
        "not every operation ran:\n{text}"
    );
    for i in c.all() {
        assert!(c.alive(i), "peer-{i} died during the run");
    }
    let after = c.agreed_leader(&c.all(), Duration::from_secs(5)).await;
    assert_eq!(after, (leader, term), "the run changed the leadership");
}
