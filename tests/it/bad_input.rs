//! Bad input gives one clear line on stderr and a non-zero exit, before anything is touched.

use std::process::Command;

use crate::harness::{exe, free_port};

/// Runs the binary and returns (exit code, stderr).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(exe())
        .args(args)
        .env_remove("HOSTNAME")
        .env("RAFT_ELECTOR_LOG", "warn")
        .output()
        .expect("run raft-elector");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line_error(args: &[&str], expected: &str) {
    let (code, stderr) = run(args);
    assert_ne!(code, 0, "{args:?} succeeded");
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: expected one line, got:\n{stderr}"
    );
    assert!(
        lines[0].contains(expected),
        "{args:?}: {:?} does not say {expected:?}",
        lines[0]
    );
}

#[test]
fn unknown_flag() {
    assert_one_line_error(
        &["--election", "e", "--bogus"],
        "unexpected argument '--bogus'",
    );
}

#[test]
fn missing_election() {
    assert_one_line_error(
        &[
            "--id",
            "a",
            "--peers",
            "a=127.0.0.1:1",
            "--data-dir",
            "/tmp/x",
        ],
        "--election",
    );
}

#[test]
fn id_missing_from_peers() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_str().expect("utf-8");
    assert_one_line_error(
        &[
            "--election",
            "e",
            "--id",
            "c",
            "--peers",
            "a=127.0.0.1:1,b=127.0.0.1:2",
            "--data-dir",
            d,
        ],
        "this peer's id \"c\" is not in the peer list (a,b)",
    );
}

#[test]
fn no_id_and_no_hostname() {
    assert_one_line_error(
        &[
            "--election",
            "e",
            "--peers",
            "a=127.0.0.1:1",
            "--data-dir",
            "/tmp/x",
        ],
        "pass --id or set HOSTNAME",
    );
}

#[test]
fn malformed_peer_lists() {
    for (list, says) in [
        ("a=127.0.0.1", "missing ':PORT'"),
        ("a=127.0.0.1:99999", "port is not a number"),
        ("a127.0.0.1:1", "missing '='"),
        ("a=127.0.0.1:1,", "empty entry"),
        ("a=127.0.0.1:1,a=127.0.0.1:2", "listed twice"),
        ("a=bad_host:1", "not a DNS name"),
    ] {
        assert_one_line_error(
            &[
                "--election",
                "e",
                "--id",
                "a",
                "--peers",
                list,
                "--data-dir",
                "/tmp/x",
            ],
            says,
        );
    }
}

#[test]
fn bad_timings() {
    assert_one_line_error(
        &[
            "--election",
            "e",
            "--id",
            "a",
            "--peers",
            "a=127.0.0.1:1",
            "--data-dir",
            "/tmp/x",
            "--heartbeat",
            "500ms",
        ],
        "heartbeat < election-timeout-min",
    );
    assert_one_line_error(
        &[
            "--election",
            "e",
            "--id",
            "a",
            "--peers",
            "a=127.0.0.1:1",
            "--data-dir",
            "/tmp/x",
            "--heartbeat",
            "soon",
        ],
        "invalid value 'soon'",
    );
}

#[test]
fn unwritable_data_directory() {
    // A path under a regular file cannot be created, even by root.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let data = file.join("data");
    let peers = format!("a=127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    assert_one_line_error(
        &[
            "--election",
            "e",
            "--id",
            "a",
            "--peers",
            &peers,
            "--http",
            &http,
            "--data-dir",
            data.to_str().expect("utf-8"),
        ],
        "cannot create data directory",
    );
}

#[test]
fn data_directory_of_another_election() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let d = data.to_str().expect("utf-8");
    let peers = format!("a=127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    // Create the directory for election "first" with a peer that is stopped at once.
    raft_elector::store::open(&data, "first", "a").expect("create store");
    assert_one_line_error(
        &[
            "--election",
            "second",
            "--id",
            "a",
            "--peers",
            &peers,
            "--http",
            &http,
            "--data-dir",
            d,
        ],
        "belongs to election \"first\", not \"second\"",
    );
}

#[test]
fn port_in_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let http = taken.local_addr().expect("addr").to_string();
    let peers = format!("a=127.0.0.1:{}", free_port());
    assert_one_line_error(
        &[
            "--election",
            "e",
            "--id",
            "a",
            "--peers",
            &peers,
            "--http",
            &http,
            "--data-dir",
            d.to_str().expect("utf-8"),
        ],
        "cannot listen for the application API",
    );
}

#[test]
fn unreadable_or_short_peer_secret() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("nope");
    let base = [
        "--election",
        "e",
        "--id",
        "a",
        "--peers",
        "a=127.0.0.1:1",
        "--data-dir",
        "/tmp/x",
    ];
    let mut args = base.to_vec();
    args.extend(["--peer-secret-file", missing.to_str().expect("utf-8")]);
    assert_one_line_error(&args, "cannot read the peer secret file");
    let short = dir.path().join("short");
    std::fs::write(&short, "tiny\n").expect("write");
    let mut args = base.to_vec();
    args.extend(["--peer-secret-file", short.to_str().expect("utf-8")]);
    assert_one_line_error(&args, "the peer secret is 4 bytes");
}

#[test]
fn permission_denied_on_a_privileged_port() {
    // As nobody, binding port 80 is refused by the kernel.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let data = dir.path().join("data");
    let peers = format!("a=127.0.0.1:{}", free_port());
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", exe()])
        .args([
            "--election",
            "e",
            "--id",
            "a",
            "--peers",
            &peers,
            "--http",
            "127.0.0.1:80",
            "--data-dir",
        ])
        .arg(&data)
        .env("RAFT_ELECTOR_LOG", "error")
        .output()
        .expect("run as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("cannot listen for the application API on 127.0.0.1:80")
            && lines[0].contains("Permission denied"),
        "{stderr}"
    );
}
