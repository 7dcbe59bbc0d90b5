//! The arm64 binary (`aarch64-unknown-linux-musl`, what the arm64 image ships) run under
//! qemu-user on this machine: a 3-peer cluster on loopback, its peers speaking mutual TLS
//! (ring's aarch64 code: handshakes, signatures, ciphers), elects, fails over after kill -9
//! and hands off on SIGTERM (exit 0).
//!
//! The binary is built by the test with the settings of docker/build.sh (stripped, LTO, one
//! codegen unit, opt-level s): about 4 minutes or more the first time on 2 cores (6 minutes
//! measured on a loaded 2-core machine), nothing when up to date.
//! Under nextest (scripts/test.sh) it is built in the shared target directory, where
//! `docker/build.sh --arch arm64` builds it too, so one build serves both; under plain
//! `cargo test` (which holds the lock of that directory while tests run) in `target/arm64-test`.
//! `RAFT_ELECTOR_ARM64_EXE=<path>` tests a given aarch64 binary instead.
//!
//! qemu: `qemu-aarch64-static` (Debian's `qemu-user-static`, which scripts/test.sh installs) or
//! `qemu-aarch64` on the PATH, or `QEMU_AARCH64=<path>`. Without it the test fails. No
//! binfmt_misc is needed: each peer runs a wrapper script that `exec`s qemu with the binary,
//! so the peer's pid is qemu's, and kill -9 and SIGTERM reach it (qemu-user delivers SIGTERM to
//! the emulated program, whose handler hands leadership over).
//!
//! The product's default timings (heartbeat, election timeouts) are used: emulation costs
//! CPU, but an idle elector needs little.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::{Ask, Cluster};

use crate::spec;

/// ELF `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm64_binary_under_qemu_elects_fails_over_and_hands_off() {
    let qemu = qemu();
    let exe = arm64_exe();
    assert_eq!(
        elf_machine(&exe),
        Some(EM_AARCH64),
        "{} is not an AArch64 ELF binary",
        exe.display()
    );

    // The wrapper each peer runs: `exec`, so that the pid the test signals is qemu's.
    let wrapper_dir = tempfile::tempdir().expect("temporary directory");
    let wrapper = wrapper_dir.path().join("raft-elector-arm64");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
            qemu.display(),
            exe.display()
        ),
    )
    .expect("write the qemu wrapper");
    make_executable(&wrapper);

    let version = Command::new(&wrapper)
        .arg("--version")
        .output()
        .expect("run the arm64 binary under qemu");
    assert!(
        version.status.success(),
        "the arm64 binary under qemu: --version failed: {}",
        String::from_utf8_lossy(&version.stderr)
    );
    eprintln!(
        "under {}: {}",
        qemu.display(),
        String::from_utf8_lossy(&version.stdout).trim()
    );

    let mut s = spec(3);
    s.exe = wrapper.clone();
    // Emulated: more time for each answer.
    s.ask_timeout = Duration::from_secs(5);
    s.poll = Duration::from_millis(50);
    s.dir_prefix = "raft-elector-arm64-".into();
    s.tls = true;
    let mut c = Cluster::start(s);

    // 1. One leader, agreed by all three.
    let started = Instant::now();
    let (first, first_term) = c
        .settled_leader(
            &c.all(),
            Duration::from_millis(500),
            Duration::from_secs(60),
        )
        .await;
    eprintln!(
        "arm64: {} leads in term {first_term}, agreed {} ms after the start",
        c.peers[first].name,
        started.elapsed().as_millis()
    );

    // The processes are qemu running the arm64 binary (the wrapper's shell has exec'd it by
    // the time they answer).
    for i in c.all() {
        let pid = c.pid(i).expect("pid");
        let running = std::fs::read_link(format!("/proc/{pid}/exe")).expect("/proc/pid/exe");
        assert!(
            running
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("qemu-aarch64")),
            "peer {i} runs {}, not qemu",
            running.display()
        );
    }

    // 2. kill -9 of the leader: the two others elect a new one.
    let survivors = c.all_but(first);
    let killed = Instant::now();
    c.kill(first);
    let (second, second_term) = c
        .new_leader(&survivors, Duration::from_secs(60), first_term)
        .await;
    assert_ne!(second, first);
    eprintln!(
        "arm64: failover after kill -9: {} leads in term {second_term}, {} ms",
        c.peers[second].name,
        killed.elapsed().as_millis()
    );

    // The killed peer comes back with its data and follows: the hand-off needs a target
    // besides the third peer, and all three must agree again.
    c.spawn(first);
    let (again, again_term) = c
        .settled_leader(
            &c.all(),
            Duration::from_millis(500),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        (again, again_term),
        (second, second_term),
        "the restarted peer disturbed the leadership"
    );

    // 3. SIGTERM of the leader: it hands over to a follower in the next term and exits 0.
    let rest = c.all_but(second);
    let sent = Instant::now();
    c.signal(second, Signal::SIGTERM);
    let (third, third_term) = c
        .new_leader(&rest, Duration::from_secs(60), second_term)
        .await;
    eprintln!(
        "arm64: hand-off on SIGTERM: {} leads in term {third_term}, {} ms",
        c.peers[third].name,
        sent.elapsed().as_millis()
    );
    let took = c.expect_stopped(second, sent).await;
    eprintln!(
        "arm64: the old leader exited 0 {} ms after SIGTERM",
        took.as_millis()
    );
    assert_eq!(
        third_term,
        second_term + 1,
        "not the hand-off's election (one term up)"
    );
    let log = c.log_text(second);
    assert!(
        log.contains("leadership handed over"),
        "no hand-off in {}'s log:\n{}",
        c.peers[second].name,
        c.log_tail(second, 40)
    );
}

/// qemu-user for AArch64: `QEMU_AARCH64`, else `qemu-aarch64-static` or `qemu-aarch64` on the
/// PATH. Panics (the test fails, it is not skipped) when there is none.
fn qemu() -> PathBuf {
    if let Some(path) = std::env::var_os("QEMU_AARCH64") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "QEMU_AARCH64={} is not a file",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["qemu-aarch64-static", "qemu-aarch64"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "qemu-user for AArch64 not found: this test runs the arm64 binary under \
         qemu-aarch64-static. Install Debian's qemu-user-static \
         (apt-get install qemu-user-static; scripts/test.sh does) or set QEMU_AARCH64=<path>"
    );
}

/// The aarch64 release binary: `RAFT_ELECTOR_ARM64_EXE`, or built here (see the module doc).
fn arm64_exe() -> PathBuf {
    if let Some(path) = std::env::var_os("RAFT_ELECTOR_ARM64_EXE") {
        return PathBuf::from(path);
    }
    const TARGET: &str = "aarch64-unknown-linux-musl";
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shared = tmp.parent().unwrap_or(tmp).to_path_buf();
    let target_dir = if std::env::var_os("NEXTEST").is_some() {
        shared
    } else {
        shared.join("arm64-test")
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--offline",
            "--release",
            "--target",
            TARGET,
            "--bin",
            "raft-elector",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        // docker/build.sh's settings: the binary the arm64 image ships.
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "building the {TARGET} binary failed (rustup target add {TARGET}; scripts/test.sh \
         does):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "the {TARGET} binary was up to date or built in {} s",
        started.elapsed().as_secs()
    );
    target_dir.join(TARGET).join("release").join("raft-elector")
}

/// `e_machine` of an ELF file.
fn elf_machine(path: &Path) -> Option<u16> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" || bytes[5] != 1 {
        return None; // not ELF, or not little-endian
    }
    Some(u16::from_le_bytes([bytes[18], bytes[19]]))
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).expect("stat").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}
