//! etcd on loopback, measured the same way as raft-elector: a 3-member cluster whose leader
//! is killed with SIGKILL, and `etcdctl elect` for the failover an application gets. The
//! processes, their directory and logs are the test kit's ([`testkit::procs`]).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::procs::{die_with_parent, Procs};
use testkit::{free_addr, http};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Where one member listens, and who it is.
pub struct Member {
    pub name: String,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    /// Member id as etcd reports it (learned once the cluster runs).
    pub id: u64,
}

/// What one member says: its id, the leader it knows (0: none) and its Raft term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub id: u64,
    pub leader: u64,
    pub term: u64,
}

pub struct Cluster {
    pub members: Vec<Member>,
    /// The members' processes, data directories and logs; killed and removed on drop.
    pub procs: Procs,
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    token: String,
    http: reqwest::Client,
    pub poll: Duration,
}

impl Cluster {
    pub fn new(n: usize, heartbeat_ms: u64, election_ms: u64) -> Cluster {
        let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let mut procs = Procs::new("etcd-bench-", names.clone());
        procs.die_with_parent = true;
        let members = names
            .into_iter()
            .map(|name| Member {
                name,
                client: free_addr(),
                peer: free_addr(),
                id: 0,
            })
            .collect();
        Cluster {
            token: procs
                .dir()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "bench".into()),
            procs,
            members,
            heartbeat_ms,
            election_ms,
            http: http::client(Duration::from_millis(300)),
            poll: Duration::from_millis(5),
        }
    }

    /// Starts (or restarts, with its data) member `i`, everything on loopback.
    pub fn spawn(&mut self, i: usize) {
        let initial: String = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let m = &self.members[i];
        let mut cmd = Command::new("etcd");
        cmd.arg(format!("--name={}", m.name))
            .arg(format!(
                "--data-dir={}",
                self.procs.slots[i].data_dir.display()
            ))
            .arg(format!("--listen-client-urls=http://{}", m.client))
            .arg(format!("--advertise-client-urls=http://{}", m.client))
            .arg(format!("--listen-peer-urls=http://{}", m.peer))
            .arg(format!("--initial-advertise-peer-urls=http://{}", m.peer))
            .arg(format!("--initial-cluster={initial}"))
            .arg("--initial-cluster-state=new")
            .arg(format!("--initial-cluster-token={}", self.token))
            .arg(format!("--heartbeat-interval={}", self.heartbeat_ms))
            .arg(format!("--election-timeout={}", self.election_ms))
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        self.procs.spawn(i, cmd);
    }

    pub fn spawn_all(&mut self) {
        for i in 0..self.members.len() {
            self.spawn(i);
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self, i: usize) {
        self.procs.kill(i);
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs.pid(i)
    }

    /// `POST /v3/maintenance/status` through etcd's HTTP gateway.
    pub async fn status(&self, i: usize) -> Option<Status> {
        let url = format!("http://{}/v3/maintenance/status", self.members[i].client);
        let v: Value = self
            .http
            .post(url)
            .body("{}")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let num = |v: &Value| -> Option<u64> {
            match v {
                Value::String(s) => s.parse().ok(),
                Value::Number(n) => n.as_u64(),
                _ => None,
            }
        };
        Some(Status {
            id: num(&v["header"]["member_id"])?,
            leader: v.get("leader").and_then(num).unwrap_or(0),
            term: v.get("raftTerm").and_then(num).unwrap_or(0),
        })
    }

    /// Polls `among` until all name the same leader, a member of `among`, in a term above
    /// `min_term`. Returns the leader's index, the term and when it was seen.
    pub async fn agreed(
        &mut self,
        among: &[usize],
        min_term: u64,
        timeout: Duration,
    ) -> Option<(usize, u64, Instant)> {
        let deadline = Instant::now() + timeout;
        loop {
            let answers = futures::future::join_all(among.iter().map(|&i| self.status(i))).await;
            let at = Instant::now();
            if answers.iter().all(Option::is_some) {
                let answers: Vec<Status> = answers.into_iter().flatten().collect();
                for (&i, s) in among.iter().zip(&answers) {
                    self.members[i].id = s.id;
                }
                let first = answers[0];
                let same = answers
                    .iter()
                    .all(|s| s.leader == first.leader && s.leader != 0);
                let term = answers.iter().map(|s| s.term).max().unwrap_or(0);
                if same && term > min_term {
                    if let Some(&leader) =
                        among.iter().find(|&&i| self.members[i].id == first.leader)
                    {
                        return Some((leader, term, at));
                    }
                }
            }
            if at >= deadline {
                return None;
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        self.procs.log_tail(i, lines)
    }
}

/// One `etcdctl elect` failover: a holder campaigns and wins, a second campaigner waits, the
/// holder is killed with SIGKILL after `hold`; returns the milliseconds until the second one
/// is elected (its session's lease on the dead holder has to expire first).
pub async fn elect_failover(
    endpoint: &str,
    election: &str,
    hold: Duration,
    timeout: Duration,
) -> Result<f64, String> {
    let spawn = |proposal: &str| {
        let mut cmd = tokio::process::Command::new("etcdctl");
        cmd.arg(format!("--endpoints={endpoint}"))
            .args(["elect", election, proposal])
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        die_with_parent(cmd.as_std_mut());
        cmd.spawn()
    };
    let mut holder = spawn("holder").map_err(|e| format!("etcdctl: {e}"))?;
    let mut holder_out = BufReader::new(holder.stdout.take().expect("piped")).lines();
    // Elected: it prints the key, then the proposal.
    tokio::time::timeout(Duration::from_secs(10), holder_out.next_line())
        .await
        .map_err(|_| "the holder was not elected within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let mut waiter = spawn("waiter").map_err(|e| format!("etcdctl: {e}"))?;
    let mut waiter_out = BufReader::new(waiter.stdout.take().expect("piped")).lines();
    // The waiter must be waiting, not elected.
    if let Ok(line) = tokio::time::timeout(hold, waiter_out.next_line()).await {
        return Err(format!(
            "the waiter was elected while the holder lived: {line:?}"
        ));
    }
    let t0 = Instant::now();
    holder.start_kill().map_err(|e| e.to_string())?;
    let _ = holder.wait().await;
    let line = tokio::time::timeout(timeout, waiter_out.next_line())
        .await
        .map_err(|_| format!("no failover within {timeout:?}"))?;
    let elapsed = t0.elapsed();
    let _ = waiter.start_kill();
    let _ = waiter.wait().await;
    match line {
        Ok(Some(_)) => Ok(elapsed.as_secs_f64() * 1000.0),
        other => Err(format!("the waiter ended without being elected: {other:?}")),
    }
}
