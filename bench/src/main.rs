//! raft-elector's benchmark: failover, hand-off, cold start, partition heal, joins and leaves
//! of members, notification, job claims, application API throughput and footprint, side by
//! side with etcd, PostgreSQL (claims) and a bare axum handler, in one run.
//!
//! ```sh
//! scripts/bench.sh            # installs wrk and etcd when absent, builds, runs everything
//! cargo run --release -p raft-elector-bench -- --quick --only failover
//! ```
//!
//! Writes `docs/bench/results.json`, `docs/bench/results.md` and the SVG charts shown in
//! `docs/BENCHMARKS.md`. Not part of the test suite.

mod cli;
mod defaults;
mod etcd;
mod load;
mod postgres;
mod report;
mod run;
mod sections;
mod stats;
mod sys;

use std::net::SocketAddr;

use cli::Args;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("bare-axum") {
        let addr: SocketAddr = argv
            .get(2)
            .and_then(|a| a.parse().ok())
            .expect("bare-axum ADDR [WORKERS]");
        let workers = argv.get(3).and_then(|w| w.parse().ok()).unwrap_or(0);
        if let Err(e) = load::serve_bare(addr, workers) {
            eprintln!("bare-axum: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = Args::from_command_line();
    // One thread: the bench's own polling and proxies stay off the second core as much as
    // possible, and every child is forked from the main thread (so PR_SET_PDEATHSIG holds).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(run::run(args)) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}
