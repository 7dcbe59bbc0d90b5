//! Running the `docker` CLI from tests: bounded commands, the image under test, unique names,
//! and clean-up of what an earlier, killed test run left behind.

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Set to `1` to skip the container tests on a machine without Docker (never in CI).
pub const SKIP_ENV: &str = "RAFT_ELECTOR_SKIP_DOCKER";

/// Every Docker object a test creates is named `<PREFIX><pid>-<random>...`.
pub const PREFIX: &str = "raft-elector-test-";

/// Longest any single `docker` command may take (a `docker stop` waits up to 10 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether this test should run. Skips, saying so, when [`SKIP_ENV`] is `1`; otherwise a
/// missing or unusable Docker fails the test loudly, so that CI cannot pass without running it.
pub fn docker_or_skip(test: &str) -> bool {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!(
            "SKIPPED {test}: {SKIP_ENV}=1 (container tests need a Docker Engine; CI runs them)"
        );
        return false;
    }
    let out = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => panic!(
            "Docker is not usable: `docker version` failed: {}\nThe container tests need a running \
             Docker Engine; to skip them on a developer machine without one, set {SKIP_ENV}=1.",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "Docker is not installed ({e}). The container tests need a Docker Engine; to skip them \
             on a developer machine without one, set {SKIP_ENV}=1."
        ),
    }
}

/// A name prefix no other run on this machine uses: the process id plus random bits.
pub fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's randomness; mix in the time for good measure.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!(
        "{PREFIX}{}-{:06x}",
        std::process::id(),
        h.finish() & 0xff_ffff
    )
}

/// Runs `docker args...` (bounded by a timeout); returns its output whatever the exit status.
pub async fn docker(args: &[&str]) -> Output {
    command_output("docker", args, &[]).await
}

/// Runs a command with extra environment variables, bounded by a timeout.
pub async fn command_output(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    match tokio::time::timeout(COMMAND_TIMEOUT, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run {program} {args:?}: {e}"),
        Err(_) => panic!("{program} {args:?} did not finish within {COMMAND_TIMEOUT:?}"),
    }
}

/// Runs `docker args...` and returns its trimmed stdout; panics (with stderr) if it fails.
pub async fn docker_ok(args: &[&str]) -> String {
    let out = docker(args).await;
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Blocking variant for `Drop`: runs and ignores the outcome.
pub fn docker_quiet(args: &[&str]) {
    let _ = std::process::Command::new("docker")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Names an existing image to test instead of building one from this checkout.
pub const IMAGE_ENV: &str = "RAFT_ELECTOR_TEST_IMAGE";

/// The id (`sha256:...`) of the image under test, built once per test process by
/// `docker/build.sh` (a no-op rebuild when nothing changed; scripts/test.sh builds it first),
/// or the image named by [`IMAGE_ENV`].
pub fn image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if let Ok(name) = std::env::var(IMAGE_ENV) {
                let out = std::process::Command::new("docker")
                    .args(["image", "inspect", "--format", "{{.Id}}", &name])
                    .output()
                    .expect("docker image inspect");
                assert!(out.status.success(), "{IMAGE_ENV}={name}: no such image");
                eprintln!("testing the image {name} ({IMAGE_ENV})");
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            let iid = tempfile::NamedTempFile::new().expect("temp file");
            let out = std::process::Command::new(repo().join("docker/build.sh"))
                .arg("raft-elector:test")
                .env("IIDFILE", iid.path())
                .output()
                .expect("run docker/build.sh");
            assert!(
                out.status.success(),
                "docker/build.sh failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let id = std::fs::read_to_string(iid.path()).expect("image id file");
            let id = id.trim().to_string();
            assert!(id.starts_with("sha256:"), "unexpected image id {id:?}");
            id
        })
        .clone()
}

/// Removes the containers, networks and volumes of earlier test runs whose process is gone
/// (a test killed by a timeout cannot run its `Drop`). Objects of live runs are left alone.
pub fn sweep_stale() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let list = |args: &[&str]| -> Vec<String> {
            std::process::Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let filter = format!("name={PREFIX}");
        let stale = |name: &str| owner_pid(name).is_some_and(|pid| !process_alive(pid));
        for name in list(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]) {
            if stale(&name) {
                docker_quiet(&["rm", "-f", "-v", &name]);
            }
        }
        for name in list(&[
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            "{{.Name}}",
        ]) {
            if stale(&name) {
                docker_quiet(&["network", "rm", &name]);
            }
        }
        for name in list(&["volume", "ls", "--filter", &filter, "--format", "{{.Name}}"]) {
            if stale(&name) {
                docker_quiet(&["volume", "rm", "-f", &name]);
            }
        }
        let reference = format!("reference={PREFIX}*");
        for name in list(&[
            "image",
            "ls",
            "--filter",
            &reference,
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ]) {
            if stale(&name) {
                docker_quiet(&["image", "rm", &name]);
            }
        }
    });
}

/// The pid encoded in a name made by [`run_id`].
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn process_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// `docker compose` (v2 plugin) if present, else the standalone `docker-compose` (v1).
pub fn compose_command() -> Vec<String> {
    let works = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker", &["compose", "version"]) {
        vec!["docker".into(), "compose".into()]
    } else if works("docker-compose", &["version"]) {
        vec!["docker-compose".into()]
    } else {
        panic!(
            "neither `docker compose` nor `docker-compose` works; install Docker Compose (or set \
             {SKIP_ENV}=1 to skip the container tests on a developer machine)"
        )
    }
}

/// A loopback port free right now (the OS picks it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}
