//! The command line of the benchmark: its options, the smoke-run limits of `--quick`, and
//! which sections a run measures.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::sections::SECTIONS;

#[derive(Parser, Debug, Clone)]
#[command(about = "raft-elector benchmark (see docs/BENCHMARKS.md)")]
pub(crate) struct Args {
    /// The raft-elector binary (default: raft-elector next to this benchmark's binary).
    #[arg(long)]
    pub(crate) exe: Option<PathBuf>,
    /// Where results.json, results.md and the charts go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bench"))]
    pub(crate) out: PathBuf,
    /// Trials per failover / hand-off / cold start / partition measurement (membership: at
    /// most 8 joins and leaves, at most 3 scale-downs to one and crashes per cluster size).
    #[arg(long, default_value_t = 30)]
    pub(crate) trials: usize,
    /// Concurrent `etcdctl elect` failovers (each waits for a 60 s session TTL).
    #[arg(long, default_value_t = 20)]
    pub(crate) elect_trials: usize,
    /// Elections for the disk measurement.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) elections: u64,
    /// Upper bound on the disk measurement.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub(crate) elections_deadline: Duration,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 5)]
    pub(crate) wrk_secs: u32,
    /// wrk runs per configuration and target (alternating targets).
    #[arg(long, default_value_t = 3)]
    pub(crate) wrk_reps: u32,
    /// Seconds each client loop of the claims section runs (per cluster size, client count
    /// and target; 2 with --quick).
    #[arg(long, default_value_t = 10)]
    pub(crate) claim_secs: u64,
    /// After the timed claims runs on 3 peers, claim with 64 clients until this many slots
    /// were granted in all, then measure the data directories (0: skip; 2,000 with --quick).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) claim_total: u64,
    /// Seconds of agreement sampling per CPU limit in the throttled section.
    #[arg(long, default_value_t = 600)]
    pub(crate) throttle_secs: u64,
    /// Seconds of idle CPU measurement (at most 10 per cluster size in membership).
    #[arg(long, default_value_t = 30)]
    pub(crate) idle_secs: u64,
    /// Docker image whose size to report.
    #[arg(long)]
    pub(crate) image: Option<String>,
    /// Small trial counts for a smoke run (3 trials, 300 elections, 1 s wrk runs, no
    /// `etcdctl elect` unless named in --only).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Comma-separated sections to run (default: all): failover, handoff, coldstart,
    /// partition, membership, notify, claims, api, footprint, disk, etcd, etcd-elect. Results of
    /// other sections already in results.json are kept.
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// Before starting, wait (bounded by --wait-quiet) until the 1-minute load average is at
    /// most this.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) max_load: f64,
    /// Only rewrite results.md and the charts from the existing results.json.
    #[arg(long)]
    pub(crate) report_only: bool,
    /// How long at most to wait for a quiet machine (0: do not wait).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub(crate) wait_quiet: Duration,
}

impl Args {
    /// The parsed command line, with `--quick`'s limits applied; exits on an unknown section.
    pub(crate) fn from_command_line() -> Args {
        let mut args = Args::parse();
        if args.quick {
            args.trials = args.trials.min(3);
            args.elect_trials = args.elect_trials.min(2);
            args.elections = args.elections.min(300);
            args.wrk_secs = 1;
            args.wrk_reps = 1;
            args.idle_secs = args.idle_secs.min(5);
            args.claim_secs = args.claim_secs.min(2);
            args.claim_total = args.claim_total.min(2_000);
            args.throttle_secs = args.throttle_secs.min(20);
        }
        for s in &args.only {
            if !SECTIONS.contains(&s.as_str()) {
                eprintln!(
                    "bench: unknown section {s:?}; known: {}",
                    SECTIONS.join(", ")
                );
                std::process::exit(2);
            }
        }
        args
    }

    /// Whether this run measures `section`.
    pub(crate) fn wanted(&self, section: &str) -> bool {
        let args = self;
        if args.only.is_empty() {
            // etcdctl elect waits a minute per trial: not in a quick run unless asked for.
            !(args.quick && section == "etcd-elect")
        } else {
            args.only.iter().any(|s| s == section)
        }
    }
}
