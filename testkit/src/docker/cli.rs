//! Running the `docker` CLI from tests: bounded commands, the image under test, names unique to
//! a run, and clean-up of what an earlier, killed run left behind.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use crate::rng::fresh_seed;

/// `RAFT_ELECTOR_SKIP_DOCKER=1 scripts/test.sh` leaves the container tests out of the run on a
/// machine without Docker (never in CI: .ci/run refuses it). The tests do not read it.
pub const SKIP_ENV: &str = "RAFT_ELECTOR_SKIP_DOCKER";

/// Names an existing image to test instead of building one from this checkout.
pub const IMAGE_ENV: &str = "RAFT_ELECTOR_TEST_IMAGE";

/// Every Docker object a run creates is named `<PREFIX><pid>-<random>...`.
pub const PREFIX: &str = "raft-elector-test-";

/// Longest any single command may take (a `docker stop` waits up to 10 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository root (this crate lives in its `testkit/`).
pub fn repo() -> PathBuf {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    kit.parent().unwrap_or(kit).to_path_buf()
}

/// Runs `program args...` with extra environment variables, bounded by a timeout; `None` if it
/// could not run or did not finish in time.
pub async fn try_command(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Option<Output> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).envs(envs.iter().copied()).kill_on_drop(true);
    tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .ok()?
        .ok()
}

/// Like [`try_command`]; panics if the command could not run or did not finish in time.
pub async fn command(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    try_command(program, args, envs).await.unwrap_or_else(|| {
        panic!("{program} {args:?} could not run or did not finish within {COMMAND_TIMEOUT:?}")
    })
}

/// Runs `docker args...`; returns its output whatever the exit status.
pub async fn docker(args: &[&str]) -> Output {
    command("docker", args, &[]).await
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

/// Runs `docker args...` and ignores the outcome (clean-up, best effort).
pub async fn docker_quiet(args: &[&str]) {
    let _ = try_command("docker", args, &[]).await;
}

/// Blocking variant of [`docker_quiet`], for `Drop`.
pub fn docker_quiet_blocking(args: &[&str]) {
    let _ = std::process::Command::new("docker")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// stdout and stderr of a command, one after the other.
pub fn both_streams(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Whether Docker answers; `Err` says why not.
pub fn available() -> Result<(), String> {
    match std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`docker version` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("Docker is not installed ({e})")),
    }
}

/// Panics, saying why, unless Docker answers: a container test never passes without running.
/// A developer without Docker skips the container tests with `RAFT_ELECTOR_SKIP_DOCKER=1
/// scripts/test.sh`, which leaves them out of the run so that nextest reports them as skipped;
/// the tests themselves never look at that variable.
pub fn require_docker(test: &str) {
    if let Err(why) = available() {
        panic!(
            "{test}: Docker is not usable: {why}\nThe container tests need a running Docker \
             Engine; to skip them on a developer machine without one, run \
             `{SKIP_ENV}=1 scripts/test.sh` (nextest then reports them as skipped)."
        );
    }
}

/// A name prefix no other run on this machine uses: the process id plus random bits.
pub fn run_id() -> String {
    format!(
        "{PREFIX}{}-{:06x}",
        std::process::id(),
        fresh_seed() & 0xff_ffff
    )
}

/// The id (`sha256:...`) of the image under test, built once per process by `docker/build.sh`
/// (a no-op rebuild when nothing changed; scripts/test.sh builds it first), or the image
/// named by [`IMAGE_ENV`].
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

/// Removes the containers, networks, volumes and image tags of earlier runs whose process is
/// gone (a test killed by a timeout cannot clean up). Objects of live runs are left alone.
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
        let name = format!("name={PREFIX}");
        let reference = format!("reference={PREFIX}*");
        // Per kind of object: its `ls` command, the filter and the name format that list ours,
        // and the command that removes one.
        let kinds: [([&str; 2], &str, &str, &[&str]); 4] = [
            (["ps", "-a"], &name, "{{.Names}}", &["rm", "-f", "-v"]),
            (["network", "ls"], &name, "{{.Name}}", &["network", "rm"]),
            (
                ["volume", "ls"],
                &name,
                "{{.Name}}",
                &["volume", "rm", "-f"],
            ),
            (
                ["image", "ls"],
                &reference,
                "{{.Repository}}:{{.Tag}}",
                &["image", "rm"],
            ),
        ];
        for (ls, filter, format, rm) in kinds {
            let ls = [&ls[..], &["--filter", filter, "--format", format]].concat();
            for object in list(&ls).iter().filter(|n| owner_gone(n)) {
                let mut args = rm.to_vec();
                args.push(object);
                docker_quiet_blocking(&args);
            }
        }
    });
}

/// Whether the process whose id a name made by [`run_id`] carries has ended.
fn owner_gone(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(pid) = digits.parse::<i32>() else {
        return false;
    };
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => false,
        Err(_) => true,
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
            "neither `docker compose` nor `docker-compose` works; install Docker Compose (or run \
             `{SKIP_ENV}=1 scripts/test.sh` to skip the container tests on a developer machine)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_live_owner() {
        let id = run_id();
        assert!(id.starts_with(PREFIX), "{id}");
        assert!(
            !owner_gone(&format!("{id}-peer-0")),
            "this process is alive"
        );
        assert!(!owner_gone("someone-else-1"));
        // Far above any pid the kernel hands out.
        assert!(owner_gone(&format!("{PREFIX}2000000000-abcdef")));
    }
}
