//! A cluster of real `raft-elector` processes on loopback behind per-link fault proxies.
//!
//! Peer i listens for peer traffic on its own port (`--peer-listen`) and every peer's
//! `--peers` list names the proxies, so that all peer traffic crosses [`Net`]. The
//! application API is asked directly. Processes are killed and reaped, and the temporary
//! directory removed, when the cluster is dropped, also when a test fails; a failing run
//! keeps its directory (logs and data) and says where it is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::free_port;
use crate::history::FaultKind;
use crate::proxy::{Mode, Net};
use crate::target::Target;

/// One peer process.
pub struct Proc {
    pub name: String,
    /// Application API.
    pub http: SocketAddr,
    /// Where the peer listens for peer traffic.
    pub listen: SocketAddr,
    /// The proxy in front of it.
    pub proxy: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub paused: bool,
}

pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    exe: PathBuf,
    pub procs: Vec<Proc>,
    pub net: Net,
    /// Keep the directory when dropped (the run failed).
    pub keep: bool,
}

impl Cluster {
    /// Prepares `n` peers of `exe` and their proxies; starts nothing yet.
    pub async fn new(n: usize, exe: &Path) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("raft-elector-nemesis-")
            .tempdir()
            .expect("temp dir");
        let procs: Vec<Proc> = (0..n)
            .map(|i| {
                let name = format!("peer-{i}");
                let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
                Proc {
                    http: local(free_port()),
                    listen: local(free_port()),
                    proxy: local(free_port()),
                    data_dir: dir.path().join(&name),
                    log: dir.path().join(format!("{name}.log")),
                    name,
                    child: None,
                    paused: false,
                }
            })
            .collect();
        let proxies: Vec<SocketAddr> = procs.iter().map(|p| p.proxy).collect();
        let listens: Vec<SocketAddr> = procs.iter().map(|p| p.listen).collect();
        let names = procs.iter().map(|p| p.name.clone()).collect();
        let net = Net::start(names, &proxies, &listens)
            .await
            .expect("start proxies");
        Cluster {
            dir: Some(dir),
            exe: exe.to_path_buf(),
            procs,
            net,
            keep: false,
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default()
    }

    fn peer_list(&self) -> String {
        self.procs
            .iter()
            .map(|p| format!("{}={}", p.name, p.proxy))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts (or restarts, with its data) peer `i`.
    pub fn spawn(&mut self, i: usize) {
        assert!(self.procs[i].child.is_none(), "peer {i} is running");
        let peers = self.peer_list();
        let p = &self.procs[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)
            .expect("open log");
        let child = Command::new(&self.exe)
            .args(["--election", "nemesis", "--id", &p.name, "--peers", &peers])
            .arg("--peer-listen")
            .arg(p.listen.to_string())
            .arg("--http")
            .arg(p.http.to_string())
            .arg("--data-dir")
            .arg(&p.data_dir)
            .env("RAFT_ELECTOR_LOG", "info,openraft=off")
            .env_remove("HOSTNAME")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn raft-elector");
        self.procs[i].child = Some(child);
        self.procs[i].paused = false;
    }

    fn signal(&self, i: usize, sig: Signal) {
        if let Some(child) = &self.procs[i].child {
            let _ = kill(Pid::from_raw(child.id() as i32), sig);
        }
    }

    /// kill -9 and reap.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.procs[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.procs[i].paused = false;
    }

    pub fn pause(&mut self, i: usize) {
        self.signal(i, Signal::SIGSTOP);
        self.procs[i].paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.signal(i, Signal::SIGCONT);
        self.procs[i].paused = false;
    }

    /// SIGTERM, then wait for the exit (kill -9 after `timeout`). Returns whether it exited
    /// by itself.
    pub async fn terminate(&mut self, i: usize, timeout: Duration) -> bool {
        self.resume(i);
        self.signal(i, Signal::SIGTERM);
        let Some(mut child) = self.procs[i].child.take() else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// SIGTERM to every peer at once, then wait for all to exit (kill -9 after `timeout`).
    pub async fn terminate_all(&mut self, timeout: Duration) {
        for i in 0..self.procs.len() {
            self.resume(i);
            self.signal(i, Signal::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        for i in 0..self.procs.len() {
            let Some(mut child) = self.procs[i].child.take() else {
                continue;
            };
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// The last `lines` lines of every peer's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for p in &self.procs {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out += &format!(
                "----- last lines of {} ({}) -----\n{}\n",
                p.name,
                p.log.display(),
                all[all.len().saturating_sub(lines)..].join("\n")
            );
        }
        out
    }

    /// Kills every process (also paused ones).
    pub fn stop_all(&mut self) {
        for i in 0..self.procs.len() {
            self.signal(i, Signal::SIGCONT);
            self.kill(i);
        }
    }
}

impl Target for Cluster {
    fn len(&self) -> usize {
        self.procs.len()
    }

    fn names(&self) -> Vec<String> {
        self.procs.iter().map(|p| p.name.clone()).collect()
    }

    fn http(&self) -> Vec<SocketAddr> {
        self.procs.iter().map(|p| p.http).collect()
    }

    fn supports(&self, _kind: FaultKind) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!(
            "processes on loopback behind fault proxies ({})",
            self.exe.display()
        )
    }

    async fn start(&mut self, i: usize) {
        self.spawn(i);
    }

    async fn kill(&mut self, i: usize) {
        Cluster::kill(self, i);
    }

    async fn pause(&mut self, i: usize) {
        Cluster::pause(self, i);
    }

    async fn resume(&mut self, i: usize) {
        Cluster::resume(self, i);
    }

    async fn terminate(&mut self, i: usize, timeout: Duration) -> bool {
        Cluster::terminate(self, i, timeout).await
    }

    async fn terminate_all(&mut self, timeout: Duration) {
        Cluster::terminate_all(self, timeout).await;
    }

    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> String {
        self.net.cut(a, b, mode);
        format!("proxies, {mode:?}")
    }

    async fn slow(&mut self, i: usize, delay: Duration) {
        self.net.slow(i, delay);
    }

    async fn heal(&mut self) {
        self.net.heal();
    }

    async fn log_tails(&mut self, lines: usize) -> String {
        Cluster::log_tails(self, lines)
    }

    async fn keep(&mut self) -> Option<PathBuf> {
        self.keep = true;
        Some(self.dir())
    }

    async fn shutdown(&mut self) {
        self.stop_all();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
        if self.keep || std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let path = dir.keep();
                eprintln!("nemesis: logs and data kept in {}", path.display());
            }
        }
    }
}
