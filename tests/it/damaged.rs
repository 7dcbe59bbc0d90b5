//! Damaged state: truncated, emptied, corrupted, unreadable, foreign or full data directories
//! stop the peer with a clear error naming the path, never a silent fresh start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{free_port, Ask, Cluster, Spec};

use crate::EXE;

/// A single-peer election "e" that has run once and was stopped (exit 0 within its shutdown
/// timeout), leaving a real data directory behind.
struct Used {
    /// Holds the directory.
    _cluster: Cluster,
    dir: PathBuf,
    /// The peer's name, and the peer list and application API it ran with.
    id: String,
    peers: String,
    http: String,
}

fn used_data_dir() -> Used {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut spec = Spec::new(EXE, 1);
        spec.election = "e".into();
        let mut c = Cluster::start(spec);
        c.agreed_leader(&[0], Duration::from_secs(10)).await;
        c.stop(0).await;
        Used {
            dir: c.data_dir(0).to_path_buf(),
            id: c.peers[0].name.clone(),
            peers: c.peer_list(),
            http: c.peers[0].http.to_string(),
            _cluster: c,
        }
    })
}

/// Starts peer `id` on `dir` and expects it to refuse: returns its last stderr line.
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
    let line = refuses(&u, &u.dir, &u.id, &u.peers, None);
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
    let line = refuses(&u, &u.dir, &u.id, &u.peers, None);
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
    let line = refuses(&u, &u.dir, &u.id, &u.peers, None);
    assert!(line.contains("damaged record \"vote\""), "{line}");
}

#[test]
fn data_directory_of_another_peer() {
    let u = used_data_dir();
    let peers = format!("{},b=127.0.0.1:{}", u.peers, free_port());
    let line = refuses(&u, &u.dir, "b", &peers, None);
    let owner = format!("belongs to peer \"{}\", not \"b\"", u.id);
    assert!(line.contains(&owner), "{line}");
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
    let line = refuses(&u, &u.dir, &u.id, &u.peers, Some(nobody));
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
    let line = refuses(&u, &dir, &u.id, &u.peers, None);
    assert!(line.contains("No space left on device"), "{line}");
}
