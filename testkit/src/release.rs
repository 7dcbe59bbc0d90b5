//! The previous release's `raft-elector` binary, for upgrade tests: its sources taken from
//! this repository's history (`git archive` of [`PREVIOUS_RELEASE`]) and built offline into a
//! target directory of its own, so that it never replaces the binary under test. Built once;
//! later runs reuse it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The commit of the previous release: the last one before membership changes (issue 12)
/// changed the peer protocol (joins, leaves, probes) and the answer (`voters`).
pub const PREVIOUS_RELEASE: &str = "c61d9a43b5462a5bd709225aaa807235f683e388";

/// The last release before the job ledger (issue 14) added log entries and a snapshot
/// format: the first claim waits until every member runs a release that applies them.
pub const BEFORE_LEDGER: &str = "41df9f080cf2a5a5b5744310cb6f94e4eff2194d";

/// The last release before claims were batched into one log entry (`Command::Claims`) with
/// tokens above the entry's index: batches begin once every member runs a release after it.
pub const BEFORE_BATCHES: &str = "c623d88c1d00571e5ff214374b060d3dc68d2136";

/// The last release before peer streams (issue 15): every peer request is an HTTP request of
/// its own, and the stream's handshake is answered 404.
pub const BEFORE_STREAMS: &str = "f07553ecfe01d703156c3363fe2e8d30ffc33e35";

/// Builds (or finds) the previous release's binary. `repo` is this repository's checkout
/// (its history must hold [`PREVIOUS_RELEASE`]: a full clone, not a shallow one), `work` a
/// directory the build may keep (the tests' `CARGO_TARGET_TMPDIR`).
pub fn previous_release_exe(repo: &Path, work: &Path) -> PathBuf {
    release_exe(repo, work, PREVIOUS_RELEASE)
}

/// Builds (or finds) the binary of release `commit`, as [`previous_release_exe`] does.
pub fn release_exe(repo: &Path, work: &Path, commit: &str) -> PathBuf {
    let short = &commit[..12];
    let base = work.join(format!("release-{short}"));
    let exe = base.join("target").join("debug").join("raft-elector");
    let stamp = base.join(format!("built-{short}"));
    if stamp.exists() && exe.exists() {
        return exe;
    }
    let src = base.join(format!("src-{short}"));
    if src.exists() {
        std::fs::remove_dir_all(&src).expect("remove an earlier, unfinished source tree");
    }
    std::fs::create_dir_all(&src).expect("create the source directory");
    let has = || {
        Command::new("git")
            .current_dir(repo)
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has() {
        // A shallow clone: the commit may still be fetched from where it was cloned from.
        let _ = Command::new("git")
            .current_dir(repo)
            .args(["fetch", "--quiet", "origin", commit])
            .status();
    }
    assert!(
        has(),
        "the previous release ({commit}) is not in the history of {}: upgrade tests \
         need a full clone (`git fetch --unshallow`)",
        repo.display()
    );
    let archive = Command::new("git")
        .current_dir(repo)
        .args(["archive", "--format=tar", commit])
        .output()
        .expect("run git archive");
    assert!(
        archive.status.success(),
        "git archive {commit} failed: {}",
        String::from_utf8_lossy(&archive.stderr)
    );
    let mut untar = Command::new("tar")
        .current_dir(&src)
        .args(["-x", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run tar");
    {
        use std::io::Write;
        let mut stdin = untar.stdin.take().expect("tar's stdin");
        stdin.write_all(&archive.stdout).expect("feed tar");
    }
    assert!(
        untar.wait().expect("wait for tar").success(),
        "tar -x failed"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&src)
        .args(["build", "--offline", "--locked", "--bin", "raft-elector"])
        .env("CARGO_TARGET_DIR", base.join("target"))
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "building the previous release ({commit}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&stamp, commit).expect("write the build stamp");
    exe
}
