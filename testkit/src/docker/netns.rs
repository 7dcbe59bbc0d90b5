//! Network faults made by the kernel inside the containers' network namespaces (`nsenter` from
//! the host, so the containers need no capability): iptables rules that drop or reset the
//! packets between peers, and a netem qdisc that delays every packet of one peer.

use std::time::Duration;

use super::cli::try_command;
use super::cluster::Cluster;
use crate::proxy::Mode;

impl Cluster {
    /// The host pid of peer `i`'s process, while it runs.
    async fn host_pid(&self, i: usize) -> Option<String> {
        let pid = self.inspect(i, "{{.State.Pid}}").await;
        (pid != "0" && !pid.is_empty()).then_some(pid)
    }

    /// Runs `program args...` in peer `i`'s network namespace; whether it succeeded.
    async fn in_netns(&self, i: usize, program: &str, args: &[&str]) -> bool {
        let Some(pid) = self.host_pid(i).await else {
            return false;
        };
        let mut all = vec!["-t", pid.as_str(), "-n", program];
        all.extend_from_slice(args);
        try_command("nsenter", &all, &[])
            .await
            .is_some_and(|o| o.status.success())
    }

    /// The interface of peer `i` on the `peers` network.
    async fn peers_interface(&self, i: usize) -> Option<String> {
        let pid = self.host_pid(i).await?;
        let args = ["-t", &pid, "-n", "ip", "-o", "-4", "addr", "show"];
        let out = try_command("nsenter", &args, &[]).await?;
        let ip = format!("{}/", self.nodes[i].peer_ip);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains(&ip))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(|s| s.trim_end_matches(':').to_string())
    }

    /// Whether `tc ... netem` works in peer `i`'s (running) network namespace on this kernel.
    pub async fn netem_works(&self, i: usize) -> bool {
        let Some(dev) = self.peers_interface(i).await else {
            return false;
        };
        let add = ["qdisc", "add", "dev", &dev, "root", "netem", "delay", "1ms"];
        let ok = self.in_netns(i, "tc", &add).await;
        if ok {
            self.in_netns(i, "tc", &["qdisc", "del", "dev", &dev, "root"])
                .await;
        }
        ok
    }

    /// Cuts every link between the peers `a` and the peers `b`, both ways: iptables DROP
    /// (silent loss) or REJECT with a TCP reset. Returns how it was done.
    pub async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> String {
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
                if self.in_netns(me, "iptables", &args).await {
                    self.touched[me] = true;
                } else {
                    eprintln!("could not add an iptables rule in {}", self.nodes[me].name);
                }
            }
        }
        match mode {
            Mode::Reject => "iptables REJECT".into(),
            _ => "iptables DROP".into(),
        }
    }

    /// Delays every packet leaving peer `i` on the `peers` network by `delay` (netem).
    pub async fn slow(&mut self, i: usize, delay: Duration) {
        let Some(dev) = self.peers_interface(i).await else {
            return;
        };
        let ms = format!("{}ms", delay.as_millis());
        let args = [
            "qdisc", "replace", "dev", &dev, "root", "netem", "delay", &ms,
        ];
        if self.in_netns(i, "tc", &args).await {
            self.touched[i] = true;
        }
    }

    /// Repairs every network fault: reconnects disconnected peers, removes the iptables rules
    /// and netem qdiscs.
    pub async fn heal(&mut self) {
        for i in 0..self.len() {
            if self.disconnected[i] {
                self.connect(i).await;
            }
            if self.touched[i] {
                self.in_netns(i, "iptables", &["-F", "INPUT"]).await;
                if let Some(dev) = self.peers_interface(i).await {
                    // Fails harmlessly when there is no netem qdisc.
                    self.in_netns(i, "tc", &["qdisc", "del", "dev", &dev, "root"])
                        .await;
                }
                self.touched[i] = false;
            }
        }
    }
}
