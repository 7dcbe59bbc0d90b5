//! `raft-elector while-leader -- COMMAND ARGS...`: runs COMMAND only while the local peer leads.
//!
//! It asks the local peer (`--http`) `GET /v1/leader` every 50 ms while the command runs and
//! every 200 ms otherwise. The command starts, with `RAFT_ELECTOR_TERM` (the fencing token)
//! and `RAFT_ELECTOR_LEADER` in its environment, when the peer says it leads; it is stopped
//! (SIGTERM to its process group, SIGKILL after `--grace`) as soon as the peer says it does not,
//! leads a newer term (then started again with the new token), or has not confirmed its
//! leadership before the lease it last reported (`valid_ms`, counted from when that request
//! was sent) ran out. A command that ends by itself is started again a second later if the
//! peer still leads (`--once`: `while-leader` exits with its status instead). SIGTERM or SIGINT
//! stops the command the same way, then `while-leader` exits. The decision is the pure step of
//! [`step`]; [`child`] runs the command. Limits: docs/DESIGN.md, "while-leader".

mod child;
mod step;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use child::Child;
use step::{Answer, Decision, Gate};

/// Flags of `while-leader`.
#[derive(Debug, Args)]
pub struct WhileLeaderArgs {
    /// Application API address of the local peer.
    #[arg(long, env = "RAFT_ELECTOR_HTTP", default_value = "127.0.0.1:4040", value_parser = raft_elector::config::parse_listen_addr, value_name = "ADDR")]
    pub http: SocketAddr,

    /// After SIGTERM, how long the command's process group may take to exit before SIGKILL.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub grace: Duration,

    /// Run the command once: exit with its status when it ends (1 if it was stopped because
    /// leadership was lost, or never ran before a shutdown).
    #[arg(long)]
    pub once: bool,

    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// How often the local peer is asked while the command runs (the lease is 180 ms at the
/// default timings: three answers per lease) and while it does not.
const POLL_RUNNING: Duration = Duration::from_millis(50);
const POLL_IDLE: Duration = Duration::from_millis(200);
/// A command that ended by itself is started again after this, if the peer still leads.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// Asks the local peer once; `None` when it cannot be asked or answers nothing usable.
async fn ask(client: &reqwest::Client, url: &str) -> Option<Answer> {
    let sent = Instant::now();
    let resp = client.get(url).send().await.ok()?;
    let v: serde_json::Value = resp.json().await.ok()?;
    Some(Answer {
        sent,
        is_leader: v["is_leader"].as_bool()?,
        term: v["term"].as_u64()?,
        name: v["name"].as_str()?.to_string(),
        valid: Duration::from_millis(v["valid_ms"].as_u64()?),
    })
}

/// Runs until shutdown (or, with `--once`, until the command ends): the exit code.
pub async fn run(args: WhileLeaderArgs) -> anyhow::Result<u8> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(100))
        .build()?;
    let url = format!("http://{}/v1/leader", args.http);
    let mut term_sig = signal(SignalKind::terminate())?;
    let mut int_sig = signal(SignalKind::interrupt())?;
    let mut gate = Gate::default();
    let mut child: Option<Child> = None;
    tracing::info!(http = %args.http, command = ?args.command, "while-leader: waiting for the local peer to lead");
    loop {
        let poll = if child.is_some() {
            POLL_RUNNING
        } else {
            POLL_IDLE
        };
        let wake = gate
            .deadline()
            .map_or(Instant::now() + poll, |d| d.min(Instant::now() + poll));
        let ended = async {
            match child.as_mut() {
                Some(c) => Some(c.wait().await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term_sig.recv() => return Ok(shutdown(child, &gate, &args, "SIGTERM").await),
            _ = int_sig.recv() => return Ok(shutdown(child, &gate, &args, "SIGINT").await),
            status = ended => {
                let status = status.and_then(Result::ok);
                let term = gate.running();
                tracing::info!(term = ?term, status = ?status, "while-leader: the command ended by itself");
                child = None;
                if args.once {
                    return Ok(status.and_then(|s| s.code()).map_or(1, |c| c as u8));
                }
                gate.child_ended(Instant::now() + RESTART_AFTER);
                continue;
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let mut decision = gate.tick(Instant::now());
        if decision == Decision::Nothing {
            let answer = ask(&client, &url).await;
            decision = gate.observe(Instant::now(), answer.as_ref());
        }
        match decision {
            Decision::Nothing => {}
            Decision::Start { term, leader } => match Child::start(&args.command, term, &leader) {
                Ok(c) => {
                    tracing::info!(
                        term,
                        pid = c.pid(),
                        "while-leader: this peer leads: command started"
                    );
                    child = Some(c);
                }
                Err(e) => {
                    tracing::error!(term, error = %e, "while-leader: cannot start the command");
                    gate.child_ended(Instant::now() + RESTART_AFTER);
                }
            },
            Decision::Stop(why) => {
                if let Some(c) = child.take() {
                    let pid = c.pid();
                    let stopped = c.stop(args.grace).await;
                    tracing::warn!(reason = why.as_str(), pid, status = ?stopped.status, killed = stopped.killed, "while-leader: command stopped");
                }
                if args.once {
                    return Ok(1);
                }
            }
        }
    }
}

/// Stops the command (if it runs) on our own shutdown: the exit code.
async fn shutdown(child: Option<Child>, gate: &Gate, args: &WhileLeaderArgs, what: &str) -> u8 {
    let Some(c) = child else {
        tracing::info!("while-leader: {what}: no command running; exiting");
        return if args.once { 1 } else { 0 };
    };
    let pid = c.pid();
    let stopped = c.stop(args.grace).await;
    tracing::info!(term = ?gate.running(), pid, status = ?stopped.status, killed = stopped.killed, "while-leader: {what}: command stopped; exiting");
    match (args.once, stopped.status.and_then(|s| s.code())) {
        (true, Some(code)) => code as u8,
        (true, None) => 1,
        (false, _) => 0,
    }
}
