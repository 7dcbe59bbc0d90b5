//! `raft-elector recover`: a cluster that lost its majority for good gets a leader again from
//! its survivors, and the command refuses (changing nothing) when the majority is still there,
//! without its confirmation flag, on a running peer, or on a directory with nothing in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::{Ask, Cluster};

use crate::{spec, EXE};

const AGREE: Duration = Duration::from_secs(10);

/// The `--peers` list naming only the peers `among`.
fn list(c: &Cluster, among: &[usize]) -> String {
    among
        .iter()
        .map(|&i| format!("{}={}", c.peers[i].name, c.peers[i].listed_addr()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Peer `i`'s command line with `--peers` naming only `among` (the cluster's own command
/// names every peer).
fn command_with(c: &Cluster, i: usize, among: &[usize]) -> Command {
    let p = &c.peers[i];
    let mut cmd = Command::new(EXE);
    cmd.args(["--election", &c.spec.election, "--id", &p.name])
        .args(["--peers", &list(c, among)])
        .arg("--data-dir")
        .arg(c.data_dir(i))
        .args(["--http", &p.http.to_string()])
        .args(&c.spec.flags)
        .env_remove("HOSTNAME");
    if let Some(filter) = &c.spec.log_filter {
        cmd.env("RAFT_ELECTOR_LOG", filter);
    }
    cmd
}

/// What one run of `raft-elector recover` gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn show(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `raft-elector recover` on peer `i`'s data directory with `args` added.
async fn recover(c: &Cluster, i: usize, args: &[&str]) -> Run {
    recover_in(&c.spec.election, &c.peers[i].name, c.data_dir(i), args).await
}

async fn recover_in(election: &str, id: &str, dir: &Path, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(EXE)
        .args(["recover", "--election", election, "--id", id, "--data-dir"])
        .arg(dir)
        .args(args)
        .env_remove("HOSTNAME")
        .env_remove("RAFT_ELECTOR_PEERS")
        .output()
        .await
        .expect("run raft-elector recover");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir` with its bytes: what "nothing was changed" is checked against.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                files.insert(path, bytes);
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_survivor_of_three_recovers_and_elects_itself() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&c.all(), AGREE).await;
    let survivor = (leader + 1) % 3;
    for i in c.all_but(survivor) {
        c.kill(i);
    }
    c.stop(survivor).await;

    let me = list(&c, &[survivor]);
    let run = recover(&c, survivor, &["--peers", &me, "--force-new-membership"]).await;
    assert_eq!(run.code, Some(0), "{}", run.show());
    assert!(
        run.stdout.contains("FORCED A NEW MEMBERSHIP"),
        "{}",
        run.show()
    );
    assert!(run.stdout.contains("no answer"), "{}", run.show());

    c.procs
        .spawn(survivor, command_with(&c, survivor, &[survivor]));
    let (now, now_term) = c.agreed_leader(&[survivor], AGREE).await;
    assert_eq!(now, survivor);
    assert!(
        now_term > term,
        "the recovered leader's term {now_term} is not above {term}"
    );
    let forced = format!("new term: {now_term},");
    assert!(
        run.stdout.contains(&forced),
        "it leads the term recover wrote ({forced}):\n{}",
        run.show()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_refuses_while_the_majority_is_there_and_changes_nothing() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&c.all(), AGREE).await;
    let stopped = (leader + 1) % 3;
    let me = list(&c, &[stopped]);
    let args = ["--peers", me.as_str(), "--force-new-membership"];

    // All three running: the database is in use.
    let run = recover(&c, stopped, &args).await;
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(
        run.stderr.contains("in use") && run.stderr.contains("stop the raft-elector peer"),
        "{}",
        run.show()
    );

    // Two of three running: a majority answers. Each run prints what the directory holds
    // before it refuses; a second run must find the same (sled itself may rewrite its files
    // when it closes, so they are not compared byte for byte).
    c.stop(stopped).await;
    let stored = |run: &Run| -> Vec<String> {
        run.stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("stored"))
            .map(str::to_string)
            .collect()
    };
    let run = recover(&c, stopped, &args).await;
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(
        run.stderr.contains("majority is still there")
            && run.stderr.contains("nothing was changed"),
        "{}",
        run.show()
    );
    assert!(!run.stdout.contains("FORCED"), "{}", run.show());
    assert_eq!(stored(&run).len(), 2, "{}", run.show());
    let again = recover(&c, stopped, &args).await;
    assert_eq!(again.code, Some(1), "{}", again.show());
    assert_eq!(stored(&again), stored(&run), "{}", again.show());

    c.spawn(stopped);
    let (now, now_term) = c.agreed_leader(&c.all(), AGREE).await;
    assert_eq!(
        (now, now_term),
        (leader, term),
        "the cluster changed leader after a refused recovery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_confirmation_flag_recover_explains_and_touches_nothing() {
    let mut c = Cluster::start(spec(3));
    c.agreed_leader(&c.all(), AGREE).await;
    for i in c.all() {
        c.kill(i);
    }
    let me = list(&c, &[0]);
    let before = snapshot(c.data_dir(0));
    let run = recover(&c, 0, &["--peers", &me]).await;
    assert_eq!(run.code, Some(1), "{}", run.show());
    let lines: Vec<&str> = run.stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.show());
    for words in [
        "--force-new-membership",
        "lost for good",
        "second leader",
        "wipe",
    ] {
        assert!(lines[0].contains(words), "no {words:?} in {}", run.show());
    }
    assert_eq!(
        snapshot(c.data_dir(0)),
        before,
        "the data directory changed"
    );

    // The same command confirmed does it, from the untouched three-voter membership.
    let run = recover(&c, 0, &["--peers", &me, "--force-new-membership"]).await;
    assert_eq!(run.code, Some(0), "{}", run.show());
    let stored = run
        .stdout
        .lines()
        .find(|l| l.contains("stored membership"))
        .unwrap_or_default();
    for p in &c.peers {
        assert!(stored.contains(&p.name), "{}", run.show());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_empty_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let peers = format!("a=127.0.0.1:{}", testkit::free_port());
    let args = ["--peers", peers.as_str(), "--force-new-membership"];

    let missing = dir.path().join("missing");
    let run = recover_in("e", "a", &missing, &args).await;
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(
        run.stderr.contains("does not exist") && run.stderr.contains("nothing to recover"),
        "{}",
        run.show()
    );
    assert!(!missing.exists(), "recover created {}", missing.display());

    let run = recover_in("e", "a", dir.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(
        run.stderr.contains("holds no raft-elector data"),
        "{}",
        run.show()
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);

    // This peer must be among the members named.
    let run = recover_in("e", "b", dir.path(), &args).await;
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(
        run.stderr.contains("not in the peer list"),
        "{}",
        run.show()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_survivors_of_five_recover_together() {
    let mut c = Cluster::start(spec(5));
    let (leader, term) = c.agreed_leader(&c.all(), AGREE).await;
    // The leader has the longest log; a follower stays up (stuck without a majority) so that
    // recover asks it.
    let other = (leader + 1) % 5;
    let survivors = [leader, other];
    for i in c.all() {
        if !survivors.contains(&i) {
            c.kill(i);
        }
    }
    c.stop(leader).await;
    let new = list(&c, &survivors);
    let run = recover(&c, leader, &["--peers", &new, "--force-new-membership"]).await;
    assert_eq!(run.code, Some(0), "{}", run.show());
    assert!(run.stdout.contains(": answers, term"), "{}", run.show());

    c.stop(other).await;
    for i in survivors {
        c.procs.spawn(i, command_with(&c, i, &survivors));
    }
    let (now, now_term) = c.agreed_leader(&survivors, AGREE).await;
    assert!(survivors.contains(&now));
    assert!(now_term > term, "term {now_term} not above {term}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_peer_tls_recover_asks_with_the_files_and_never_mistakes_a_tls_peer_for_a_gone_one() {
    let mut spec = spec(3);
    spec.tls = true;
    let mut c = Cluster::start(spec);
    let (leader, _) = c.agreed_leader(&c.all(), AGREE).await;
    let survivor = (leader + 1) % 3;
    c.kill(survivor);
    let me = list(&c, &[survivor]);
    let base = ["--peers", me.as_str(), "--force-new-membership"];

    // Without the TLS files the other two cannot be asked, but they do accept connections:
    // they run, so nothing is changed.
    let run = recover(&c, survivor, &base).await;
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(
        run.stderr.contains("majority is still there")
            && run.stdout.contains("answers, unreadable"),
        "{}",
        run.show()
    );
    assert!(!run.stdout.contains("FORCED"), "{}", run.show());

    // With them, it asks over TLS and finds the majority there.
    let tls = c.tls_paths(survivor).flags();
    let with_tls: Vec<&str> = base
        .iter()
        .copied()
        .chain(tls.iter().map(String::as_str))
        .collect();
    let run = recover(&c, survivor, &with_tls).await;
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(
        run.stderr.contains("majority is still there"),
        "{}",
        run.show()
    );
    assert!(!run.stdout.contains("unreadable"), "{}", run.show());

    // Once the other two are gone, it recovers, and the survivor leads over TLS alone.
    for i in c.all_but(survivor) {
        c.kill(i);
    }
    let run = recover(&c, survivor, &with_tls).await;
    assert_eq!(run.code, Some(0), "{}", run.show());
    assert!(
        run.stdout.contains("FORCED A NEW MEMBERSHIP"),
        "{}",
        run.show()
    );
    let mut cmd = command_with(&c, survivor, &[survivor]);
    cmd.args(&tls);
    c.procs.spawn(survivor, cmd);
    let (now, _) = c.agreed_leader(&[survivor], AGREE).await;
    assert_eq!(now, survivor);
}
