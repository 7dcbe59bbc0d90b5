//! Damaged state: truncated, emptied, corrupted, unreadable, foreign or full data directories
//! stop the peer with a clear error naming the path, never a silent fresh start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::free_port;

use crate::EXE;

/// A single-peer election "a" that has run once, leaving a real data directory behind.
struct Used {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    peers: String,
    http: String,
}

fn used_data_dir() -> Used {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let peers = format!("a=127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(EXE)
        .args([
            "--election",
            "e",
            "--id",
            "a",
            "--peers",
            &peers,
            "--http",
            &http,
            "--data-dir",
        ])
        .arg(&dir)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(EXE)
            .args(["leader", "--http", &http])
            .output()
            .expect("leader");
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the single peer did not lead");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    assert!(child.wait().expect("wait").success());
    Used {
        _tmp: tmp,
        dir,
        peers,
        http,
    }
}

/// Starts peer "a" on `dir` and expects it to refuse: returns its last stderr line.
fn refuses(u: &Used, dir: &Path, id: &str, peers: &str, wrap: Option<&[&str]>) -> String {
    let mut cmd = match wrap {
        Some(w) => {
            let mut c = Command::new(w[0]);
            c.args(&w[1..]).arg(EXE);
            c
        }
        None => Command::new(EXE),
    };
    let mut child = cmd
        .args([
            "--election",
            "e",
            "--id",
            id,
            "--peers",
            peers,
            "--http",
            &u.http,
            "--data-dir",
        ])
        .arg(dir)
        .env("RAFT_ELECTOR_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the peer started on a damaged data directory instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read");
    assert!(!status.success(), "exit status {status}");
    let last = stderr.trim().lines().last().unwrap_or("").to_string();
    assert!(
        last.contains(&dir.display().to_string()),
        "the error does not name the path: {last:?}"
    );
    last
}

#[test]
fn truncated_database() {
    let u = used_data_dir();
    std::fs::OpenOptions::new()
        .write(true)
        .open(u.dir.join("db"))
        .expect("open")
        .set_len(0)
        .expect("truncate");
    let line = refuses(&u, &u.dir, "a", &u.peers, None);
    // sled either notices the truncation itself or opens empty, which the identity file
    // beside it reveals: both stop the peer and say what to do.
    assert!(line.contains("damaged") && line.contains("aside"), "{line}");
}

#[test]
fn database_that_lost_its_records() {
    let u = used_data_dir();
    for entry in std::fs::read_dir(&u.dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if name == "db" || name.starts_with("snap.") {
            std::fs::remove_file(&path).expect("remove");
        }
    }
    let line = refuses(&u, &u.dir, "a", &u.peers, None);
    assert!(line.contains("lost its records"), "{line}");
}

#[test]
fn corrupted_vote_record() {
    let u = used_data_dir();
    {
        let db = sled::open(&u.dir).expect("sled");
        db.open_tree("meta")
            .expect("tree")
            .insert("vote", &[1u8, 0xff, 0xff, 0xff, 0xff][..])
            .expect("insert");
        db.flush().expect("flush");
    }
    let line = refuses(&u, &u.dir, "a", &u.peers, None);
    assert!(line.contains("damaged record \"vote\""), "{line}");
}

#[test]
fn data_directory_of_another_peer() {
    let u = used_data_dir();
    let peers = format!("{},b=127.0.0.1:{}", u.peers, free_port());
    let line = refuses(&u, &u.dir, "b", &peers, None);
    assert!(line.contains("belongs to peer \"a\", not \"b\""), "{line}");
}

#[test]
fn unreadable_data_directory() {
    let u = used_data_dir();
    // Run as nobody: root would read anything.
    std::fs::set_permissions(&u.dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let nobody: &[&str] = &[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let line = refuses(&u, &u.dir, "a", &u.peers, Some(nobody));
    assert!(line.contains("Permission denied"), "{line}");
}

/// A tmpfs mount removed when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk() {
    let u = used_data_dir();
    let mnt = u.dir.parent().expect("parent").join("full");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "this test mounts a 1 MiB tmpfs to fill it and needs root (CAP_SYS_ADMIN)"
    );
    let _guard = Tmpfs(mnt.clone());
    // Fill the file system completely, then try to start a peer on it.
    let filler = std::fs::File::create(mnt.join("filler")).expect("filler");
    let mut w = std::io::BufWriter::new(filler);
    let block = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut w, &block).is_ok() {}
    drop(w);
    let dir = mnt.join("data");
    let line = refuses(&u, &dir, "a", &u.peers, None);
    assert!(line.contains("No space left on device"), "{line}");
}
