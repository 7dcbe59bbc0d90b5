//! The `raft-elector` binary: parse the command line, set up logging, call the library.
//! What only the binary needs lives beside this file, outside the library: the command line
//! ([`cli`]), logging set-up ([`logging`]), `raft-elector leader` ([`leader`]),
//! `raft-elector demo` ([`demo`]) and `raft-elector recover` ([`recover`]).

mod cli;
mod demo;
mod leader;
mod logging;
mod recover;
mod while_leader;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, RunArgs};
use leader::LeaderAnswer;
use raft_elector::errors::chain;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, with the cause, instead of clap's multi-line usage block.
            let rendered = e.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("raft-elector: {} (see --help)", message.join(" "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Some(Command::Leader(args)) => return leader(&args),
        Some(Command::Demo(args)) => {
            runtime().and_then(|rt| rt.block_on(demo::run(args)).map_err(Into::into))
        }
        Some(Command::WhileLeader(args)) => return while_leader(args),
        Some(Command::Recover(args)) => {
            runtime().and_then(|rt| rt.block_on(recover::run(args)).map_err(Into::into))
        }
        None => run_peer(&cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-elector: error: {}", chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // The shared beat of the peer's loops starts with the runtime, on tokio's timer grid.
    raft_elector::beat::start();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run_peer(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.to_config().context("invalid configuration")?;
    logging::init(&args.log, args.log_format)?;
    if args.election_namespace.is_some() || args.ttl.is_some() {
        tracing::warn!("--election-namespace and --ttl are accepted for compatibility and ignored");
    }
    if !config.http.ip().is_loopback() {
        tracing::warn!(http = %config.http, "the application API listens beyond localhost: anyone who reaches it can read who leads");
    }
    let rt = runtime()?;
    let result = rt.block_on(raft_elector::node::run(config, shutdown_signal()));
    // The peer has stopped and everything it wrote is synced; the only blocking work that can
    // still run is a DNS lookup of a peer (a lookup that Docker's DNS leaves unanswered can take
    // seconds). Give the workers a moment to drop their tasks, not the lookup time to finish.
    rt.shutdown_timeout(std::time::Duration::from_millis(20));
    result?;
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn while_leader(args: while_leader::WhileLeaderArgs) -> ExitCode {
    if let Err(e) = logging::init("info", cli::LogFormat::Text) {
        eprintln!("raft-elector: error: {e}");
        return ExitCode::FAILURE;
    }
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(while_leader::run(args)))
    {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("raft-elector while-leader: error: {}", chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn leader(args: &cli::LeaderArgs) -> ExitCode {
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(leader::ask(args)).map_err(Into::into));
    match answer {
        Ok(LeaderAnswer::Known { name, json, .. }) => {
            println!("{}", if args.json { json.to_string() } else { name });
            ExitCode::SUCCESS
        }
        Ok(LeaderAnswer::Unknown { term, json }) => {
            if args.json {
                println!("{json}");
            }
            eprintln!("raft-elector: no leader known (term {term})");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("raft-elector: error: {}", chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}
