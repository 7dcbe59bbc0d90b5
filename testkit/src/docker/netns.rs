//! Network faults made by the kernel inside the containers' network namespaces (`nsenter` from
//! the host, so the containers need no capability): iptables rules that drop or reset the
//! packets between peers, and a netem qdisc that delays every packet of one peer.
//!
//! Every command that makes or repairs a fault must succeed: one that fails or cannot run is
//! an `Err` naming the command and its stderr, so that the nemesis fails the run instead of
//! recording a fault that was never there.

use std::time::Duration;

use super::cli::try_command;
use super::cluster::Cluster;
use crate::proxy::Mode;
use crate::target::FaultResult;

impl Cluster {
    /// The host pid of peer `i`'s process, while it runs.
    async fn host_pid(&self, i: usize) -> FaultResult<String> {
        let pid = self.inspect(i, "{{.State.Pid}}").await;
        if pid == "0" || pid.is_empty() {
            return Err(format!("{} is not running", self.nodes[i].container));
        }
        Ok(pid)
    }

    /// Runs `program args...` in peer `i`'s network namespace; its stdout, or an `Err` with
    /// the command and its stderr when it could not run or exited non-zero.
    async fn in_netns(&self, i: usize, program: &str, args: &[&str]) -> FaultResult<String> {
        let pid = self.host_pid(i).await?;
        let mut all = vec!["-t", pid.as_str(), "-n", program];
        all.extend_from_slice(args);
        let shown = format!("nsenter {} (in {})", all.join(" "), self.nodes[i].name);
        let out = try_command("nsenter", &all, &[])
            .await
            .ok_or_else(|| format!("{shown}: could not run or did not finish"))?;
        if !out.status.success() {
            return Err(format!(
                "{shown} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The interface of peer `i` on the `peers` network.
    async fn peers_interface(&self, i: usize) -> FaultResult<String> {
        let text = self
            .in_netns(i, "ip", &["-o", "-4", "addr", "show"])
            .await?;
        let ip = format!("{}/", self.nodes[i].peer_ip);
        text.lines()
            .find(|l| l.contains(&ip))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(|s| s.trim_end_matches(':').to_string())
            .ok_or_else(|| format!("no interface with {ip} in {}", self.nodes[i].name))
    }

    /// Whether `tc ... netem` works in peer `i`'s (running) network namespace on this kernel.
    pub async fn netem_works(&self, i: usize) -> bool {
        let Ok(dev) = self.peers_interface(i).await else {
            return false;
        };
        let add = ["qdisc", "add", "dev", &dev, "root", "netem", "delay", "1ms"];
        let ok = self.in_netns(i, "tc", &add).await.is_ok();
        if ok {
            let _ = self
                .in_netns(i, "tc", &["qdisc", "del", "dev", &dev, "root"])
                .await;
        }
        ok
    }

    /// Cuts every link between the peers `a` and the peers `b`, both ways: iptables DROP
    /// (silent loss) or REJECT with a TCP reset. Returns how it was done.
    pub async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> FaultResult<String> {
        let rule: &[&str] = match mode {
            Mode::Drop | Mode::Open => &["-j", "DROP"],
            Mode::Reject => &["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        };
        let pairs: Vec<(usize, usize)> = a
            .iter()
            .flat_map(|&x| b.iter().map(move |&y| (x, y)))
            .filter(|(x, y)| x != y)
            .collect();
        for (x, y) in pairs {
            for (me, other) in [(x, y), (y, x)] {
                let src = self.nodes[other].peer_ip.to_string();
                let mut args = vec!["-I", "INPUT", "-s", src.as_str()];
                args.extend_from_slice(rule);
                // Marked first: a half-made cut is still repaired by `heal`.
                self.touched[me] = true;
                self.in_netns(me, "iptables", &args).await?;
            }
        }
        Ok(match mode {
            Mode::Reject => "iptables REJECT".into(),
            _ => "iptables DROP".into(),
        })
    }

    /// Delays every packet leaving peer `i` on the `peers` network by `delay` (netem).
    pub async fn slow(&mut self, i: usize, delay: Duration) -> FaultResult<()> {
        let dev = self.peers_interface(i).await?;
        let ms = format!("{}ms", delay.as_millis());
        let args = [
            "qdisc", "replace", "dev", &dev, "root", "netem", "delay", &ms,
        ];
        self.slowed[i] = true;
        self.in_netns(i, "tc", &args).await.map(drop)
    }

    /// Repairs every network fault: reconnects disconnected peers, removes the iptables rules
    /// and netem qdiscs.
    pub async fn heal(&mut self) -> FaultResult<()> {
        for i in 0..self.len() {
            if self.disconnected[i] {
                self.connect(i).await;
            }
            if self.touched[i] {
                self.in_netns(i, "iptables", &["-F", "INPUT"]).await?;
                self.touched[i] = false;
            }
            if self.slowed[i] {
                let dev = self.peers_interface(i).await?;
                self.in_netns(i, "tc", &["qdisc", "del", "dev", &dev, "root"])
                    .await?;
                self.slowed[i] = false;
            }
        }
        Ok(())
    }
}
