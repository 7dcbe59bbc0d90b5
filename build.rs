//! Records the commit the binary is built from, for `raft-elector --version` and the `info`
//! metric: `git rev-parse` at build time, `unknown` outside a git checkout (a source tarball).
//! Uncommitted changes are not marked: watching the index would rebuild the crate after every
//! `git status`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => c,
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=RAFT_ELECTOR_COMMIT={commit}");
    // Built again when HEAD moves (a commit, a checkout). Only files that exist: cargo takes a
    // missing one (packed-refs, before git packs any ref) as changed at every build, which
    // rebuilt the crate (with LTO, minutes) every time.
    let watch = |p: String| {
        if std::path::Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    };
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            watch(p);
        }
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &r]) {
            watch(p);
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
