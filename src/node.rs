//! One peer, wired together: store, Raft, the two listeners, bootstrap, and the graceful
//! shutdown with hand-off. [`run`] takes the shutdown signal as a future, so tests and the
//! demo can drive it.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::peer::PeerState;
use crate::api::server::{self, Limits};
use crate::auth::PeerAuth;
use crate::config::Config;
use crate::handoff::Handoff;
use crate::leadership::Leadership;
use crate::metrics::Metrics;
use crate::raft::network::{NetworkFactory, PeerClient};
use crate::raft::{vote_term, NodeId, Raft, RaftMetrics};
use crate::store::{self, StoreError};
use crate::view::RaftView;
use crate::{api, bootstrap, prevote};

/// Why a peer could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid Raft configuration: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("cannot start Raft: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
    #[error("cannot build the peer HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot start the application API's thread: {0}")]
    Thread(std::io::Error),
    #[error("peer authentication: {0}")]
    Auth(crate::auth::AuthError),
}

/// Raft settings derived from the configuration.
fn raft_config(config: &Config) -> Result<openraft::Config, openraft::ConfigError> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    openraft::Config {
        cluster_name: config.election.clone(),
        heartbeat_interval: ms(config.timing.heartbeat),
        election_timeout_min: ms(config.timing.election_min),
        election_timeout_max: ms(config.timing.election_max),
        // Each election adds one blank entry; snapshot and purge often so that the log, and
        // the disk it uses, stays flat however many elections happen.
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_logs),
        max_in_snapshot_log_to_keep: config.snapshot_logs.min(20),
        purge_batch_size: config.snapshot_logs.min(20),
        snapshot_max_chunk_size: 256 * 1024,
        install_snapshot_timeout: ms(config.timing.election_max * 4),
        ..Default::default()
    }
    .validate()
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { what, addr, source })
}

/// Bounds of the application listener: small GET requests from the local application.
fn app_limits(config: &Config) -> Limits {
    Limits {
        max_connections: 1024,
        header_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        max_body: 64 * 1024,
        drain: config.shutdown_timeout.mul_f32(0.3),
    }
}

/// Bounds of the peer listener: a handful of peers, bodies up to the wire limit.
fn peer_limits(config: &Config) -> Limits {
    Limits {
        max_connections: 256,
        header_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        max_body: crate::wire::MAX_MESSAGE,
        drain: config.shutdown_timeout.mul_f32(0.3),
    }
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
    limits: Limits,
) -> JoinHandle<()> {
    tokio::spawn(server::serve(listener, router, stop, limits).in_current_span())
}

/// Binds a listener that [`serve_apart`] will serve on its own runtime.
fn bind_std(what: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, NodeError> {
    std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| NodeError::Bind { what, addr, source })
}

/// Serves the application API (and the probe listener) on a thread and runtime of their own:
/// however hard a local client hammers them, it cannot take worker time from Raft and the
/// peer listener, whose heartbeats keep the leadership alive.
fn serve_apart(
    servers: Vec<(std::net::TcpListener, axum::Router)>,
    stop: CancellationToken,
    limits: Limits,
) -> Result<std::thread::JoinHandle<()>, NodeError> {
    let span = tracing::Span::current();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NodeError::Thread)?;
    let run = async move {
        let serving = servers.into_iter().map(|(listener, router)| {
            let stop = stop.clone();
            async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => server::serve(listener, router, stop, limits).await,
                    Err(e) => tracing::error!(error = %e, "cannot serve the application API"),
                }
            }
        });
        futures::future::join_all(serving).await;
    };
    std::thread::Builder::new()
        .name("app-api".into())
        .spawn(move || runtime.block_on(run.instrument(span)))
        .map_err(NodeError::Thread)
}

/// Counts and logs leader changes as openraft reports them.
async fn watch_leaders(
    mut rx: watch::Receiver<RaftMetrics>,
    metrics: Arc<Metrics>,
    names: HashMap<NodeId, String>,
    span: tracing::Span,
    stop: CancellationToken,
) {
    let mut last: Option<(Option<NodeId>, u64)> = None;
    loop {
        let (leader, term) = {
            let m = rx.borrow_and_update();
            (m.current_leader, m.current_term)
        };
        if last.is_none_or(|(_, t)| t != term) {
            // Every log line of this peer carries its current term.
            span.record("term", term);
        }
        if last != Some((leader, term)) {
            if let Some(id) = leader {
                metrics.leader_changes.inc();
                let name = names.get(&id).map(String::as_str).unwrap_or("?");
                tracing::info!(leader = %name, term, "leader elected");
            }
            last = Some((leader, term));
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}

/// Completes when the Raft core stops on an error (e.g. storage failure).
async fn raft_failure(mut rx: watch::Receiver<RaftMetrics>) -> openraft::error::Fatal<NodeId> {
    loop {
        if let Err(fatal) = &rx.borrow_and_update().running_state {
            return fatal.clone();
        }
        if rx.changed().await.is_err() {
            return openraft::error::Fatal::Stopped;
        }
    }
}

/// Runs a peer until `shutdown` completes, then hands leadership over and stops. Everything
/// the peer logs carries its id and current term (the `peer` span).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let span = tracing::info_span!("peer", id = %config.me.name, term = tracing::field::Empty);
    run_in(config, shutdown, span.clone())
        .instrument(span)
        .await
}

async fn run_in(
    config: Config,
    shutdown: impl Future<Output = ()>,
    span: tracing::Span,
) -> Result<(), NodeError> {
    let config = Arc::new(config);
    let (log_store, state_machine, opened) =
        store::open(&config.data_dir, &config.election, &config.me.name)?;
    let peer_listener = bind("peer traffic", config.peer_listen).await?;
    let mut app_listeners = vec![bind_std("the application API", config.http)?];
    if let Some(addr) = config.probe_http {
        app_listeners.push(bind_std("probes", addr)?);
    }

    let metrics = Arc::new(Metrics::new(&config.election, &config.me.name));
    let leadership = Arc::new(Leadership::new(
        config.me.id,
        config.peers.iter().map(|p| p.id),
        config.timing,
    ));
    let auth = match &config.peer_secret {
        Some(secret) => Some(Arc::new(
            PeerAuth::new(secret, config.peer_auth_window).map_err(NodeError::Auth)?,
        )),
        None => {
            tracing::warn!(
                "no peer secret: peer traffic is not authenticated (see --peer-secret-file)"
            );
            None
        }
    };
    let client = PeerClient::new(
        &config.election,
        &config.me.name,
        leadership.clone(),
        metrics.clone(),
        config.timing.election_max,
        config.timing.election_min,
        auth.clone(),
    )?;
    let log_reader = log_store.clone();
    // A storage error here is Raft::new's to report: it reads the same vote.
    let stored_vote = log_reader.clone().read_vote().await.ok().flatten();
    let raft = Raft::new(
        config.me.id,
        Arc::new(raft_config(&config)?),
        NetworkFactory {
            client: client.clone(),
        },
        log_store,
        state_machine,
    )
    .await?;
    // Elections stay off until a pre-vote says this peer could win (see prevote.rs).
    raft.runtime_config().elect(false);
    // openraft's metrics show the state it loaded only once its core runs; until then they
    // read term 0. Nothing is served before they show the stored vote: a restarted peer would
    // otherwise answer term 0 once (its fencing token going back, as the fault-injection suite
    // saw), and tell a bootstrapping peer that it has no state.
    if let Some(vote) = stored_vote {
        let term = vote_term(&vote);
        let loaded = raft
            .wait(Some(config.timing.election_max * 10))
            .metrics(|m| m.current_term >= term, "stored vote loaded")
            .await;
        if let Err(e) = loaded {
            tracing::warn!(error = %e, term, "Raft has not published its stored term yet");
        }
    }

    let names: HashMap<NodeId, String> = config
        .peers
        .iter()
        .map(|p| (p.id, p.name.clone()))
        .collect();
    let stop_peer = CancellationToken::new();
    let stop_app = CancellationToken::new();
    let peer_state = Arc::new(PeerState::new(
        raft.clone(),
        log_reader.clone(),
        leadership.clone(),
        metrics.clone(),
        config.election.clone(),
        config.me.name.clone(),
        config.peers.iter().map(|p| p.name.clone()).collect(),
        config.members_digest(),
        auth,
    ));
    let peer_server = serve(
        peer_listener,
        api::peer::router(peer_state),
        stop_peer.clone(),
        peer_limits(&config),
    );
    let handoff = Handoff {
        raft: raft.clone(),
        config: config.clone(),
        client: client.clone(),
        leadership: leadership.clone(),
        metrics: metrics.clone(),
    };
    let view = Arc::new(RaftView {
        raft_metrics: raft.metrics(),
        handoff: handoff.clone(),
        leadership: leadership.clone(),
        metrics: metrics.clone(),
        names: names.clone(),
        me: config.me.name.clone(),
        election: config.election.clone(),
    });
    let routers = [api::app::router(view.clone()), api::app::probe_router(view)];
    let app_server = serve_apart(
        app_listeners.into_iter().zip(routers).collect(),
        stop_app.clone(),
        app_limits(&config),
    )?;
    tokio::spawn(
        watch_leaders(
            raft.metrics(),
            metrics.clone(),
            names,
            span,
            stop_app.clone(),
        )
        .in_current_span(),
    );
    tokio::spawn(
        prevote::run(
            config.clone(),
            raft.clone(),
            log_reader,
            client.clone(),
            leadership.clone(),
            stop_app.clone(),
        )
        .in_current_span(),
    );
    if opened.fresh {
        tracing::info!(data_dir = %config.data_dir.display(), "fresh data directory: looking for a cluster to join or bootstrap");
        tokio::spawn(
            bootstrap::run(
                config.clone(),
                raft.clone(),
                client.clone(),
                stop_app.clone(),
            )
            .in_current_span(),
        );
    }
    tracing::info!(
        election = %config.election,
        peers = config.peers.len(),
        peer_listen = %config.peer_listen,
        http = %config.http,
        "raft-elector started"
    );

    let fatal = tokio::select! {
        _ = shutdown => None,
        fatal = raft_failure(raft.metrics()) => Some(fatal),
    };
    if let Some(fatal) = fatal {
        tracing::error!(error = %fatal, "Raft stopped on an error; exiting");
        stop_app.cancel();
        stop_peer.cancel();
        return Err(NodeError::Raft(fatal));
    }
    tracing::info!("shutting down");
    let budget = config.shutdown_timeout.mul_f32(0.6);
    handoff.before_exit(budget).await;
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "Raft did not stop cleanly");
    }
    stop_app.cancel();
    stop_peer.cancel();
    // Each server bounds its own drain; this only waits for it to finish.
    let _ = tokio::task::spawn_blocking(move || app_server.join()).await;
    let _ = peer_server.await;
    tracing::info!("stopped");
    Ok(())
}
