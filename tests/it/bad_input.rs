//! Bad input gives one clear line on stderr and a non-zero exit, before anything is touched.

use std::path::Path;
use std::process::Command;

use testkit::free_port;

use crate::EXE;

/// Splits a command line written as one string (no argument here contains spaces).
fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// A complete single-peer command line for peer `a` of `election`, its application API on
/// `http` (a fresh port when None).
fn peer_a(election: &str, data: &Path, http: Option<&str>) -> String {
    let http = http.map_or_else(|| format!("127.0.0.1:{}", free_port()), str::to_string);
    let peer = free_port();
    format!(
        "--election {election} --id a --peers a=127.0.0.1:{peer} --http {http} --data-dir {}",
        data.display()
    )
}

/// Runs the binary (optionally wrapped, e.g. by setpriv) and returns (exit code, stderr).
fn run(wrapper: &[&str], args: &[String]) -> (Option<i32>, String) {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(EXE);
            c
        }
        None => Command::new(EXE),
    };
    let out = cmd
        .args(args)
        .env_remove("HOSTNAME")
        .env("RAFT_ELECTOR_LOG", "error")
        .output()
        .expect("run raft-elector");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line_error_as(wrapper: &[&str], args: &[String], expected: &str) {
    let (code, stderr) = run(wrapper, args);
    assert!(
        code.is_some_and(|c| c != 0),
        "{args:?} exited with {code:?}"
    );
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

fn assert_one_line_error(line: &str, expected: &str) {
    assert_one_line_error_as(&[], &args(line), expected);
}

const BASE: &str = "--election e --id a --peers a=127.0.0.1:1 --data-dir /tmp/x";

#[test]
fn unknown_flag() {
    assert_one_line_error("--election e --bogus", "unexpected argument '--bogus'");
}

#[test]
fn missing_election() {
    assert_one_line_error(
        "--id a --peers a=127.0.0.1:1 --data-dir /tmp/x",
        "--election",
    );
}

#[test]
fn id_missing_from_peers() {
    assert_one_line_error(
        "--election e --id c --peers a=127.0.0.1:1,b=127.0.0.1:2 --data-dir /tmp/x",
        "this peer's id \"c\" is not in the peer list (a,b)",
    );
}

#[test]
fn no_id_and_no_hostname() {
    assert_one_line_error(
        "--election e --peers a=127.0.0.1:1 --data-dir /tmp/x",
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
            &format!("--election e --id a --peers {list} --data-dir /tmp/x"),
            says,
        );
    }
}

#[test]
fn bad_timings() {
    assert_one_line_error(
        &format!("{BASE} --heartbeat 500ms"),
        "heartbeat < election-timeout-min",
    );
    assert_one_line_error(&format!("{BASE} --heartbeat soon"), "invalid value 'soon'");
}

#[test]
fn unwritable_data_directory() {
    // A path under a regular file cannot be created, even by root.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    assert_one_line_error(
        &peer_a("e", &file.join("data"), None),
        "cannot create data directory",
    );
}

#[test]
fn data_directory_of_another_election() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    raft_elector::store::open(&data, "first", "a").expect("create store");
    assert_one_line_error(
        &peer_a("second", &data, None),
        "belongs to election \"first\", not \"second\"",
    );
}

#[test]
fn port_in_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let http = taken.local_addr().expect("addr");
    let line = peer_a("e", &dir.path().join("data"), Some(&http.to_string()));
    assert_one_line_error(&line, "cannot listen for the application API");
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
    let line = peer_a("e", &dir.path().join("data"), Some("127.0.0.1:80"));
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    assert_one_line_error_as(
        &nobody,
        &args(&line),
        "cannot listen for the application API on 127.0.0.1:80",
    );
    let (_, stderr) = run(&nobody, &args(&line));
    assert!(stderr.contains("Permission denied"), "{stderr}");
}

#[test]
fn unreadable_or_short_peer_secret() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("nope");
    assert_one_line_error(
        &format!("{BASE} --peer-secret-file {}", missing.display()),
        "cannot read the peer secret file",
    );
    let short = dir.path().join("short");
    std::fs::write(&short, "tiny\n").expect("write");
    assert_one_line_error(
        &format!("{BASE} --peer-secret-file {}", short.display()),
        "the peer secret is 4 bytes",
    );
}

#[test]
fn version_names_the_release_and_the_commit_it_was_built_from() {
    let out = std::process::Command::new(crate::EXE)
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git: the tests run in a git checkout");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert_eq!(head.len(), 12, "git rev-parse said {head:?}");
    assert_eq!(
        text,
        format!("raft-elector {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_schedules_and_job_flags() {
    let base: Vec<String> = args(BASE);
    for (extra, says) in [
        (
            vec!["--job", "mail=every minute"],
            "no cron expression with seconds",
        ),
        (vec!["--job", "mail"], "expected NAME=CRON"),
        (
            vec![
                "--job",
                "mail=0 * * * * *",
                "--job-url",
                "report=http://127.0.0.1:8080/r",
            ],
            "names job \"report\", which no --job defines",
        ),
        (
            vec!["--job", "mail=0 * * * * *"],
            "job \"mail\" has no --job-url",
        ),
        (
            vec!["--job", "mail=0 * * * * *", "--job-url", "mail=ftp://x/y"],
            "use an http:// or https:// URL",
        ),
        (
            vec!["--job-history", "0"],
            "--job-history must be between 1 and 1000",
        ),
        (vec!["--job-catch-up", "some"], "invalid value 'some'"),
        (
            vec!["--job-deadline", "0s"],
            "--job-deadline must be at least 1s",
        ),
    ] {
        let mut line = base.clone();
        line.extend(extra.iter().map(|s| s.to_string()));
        assert_one_line_error_as(&[], &line, says);
    }
}
