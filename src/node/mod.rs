//! One peer, wired together as a linear sequence: [`Node::start`] opens the store, starts Raft
//! and the listeners and spawns the background tasks; `Node::wait` runs until the shutdown
//! future completes or Raft fails; `Node::stop`, the one exit path, hands leadership over
//! (on a requested shutdown), stops Raft and the listeners, and awaits every task, each step
//! bounded by its share of `--shutdown-timeout` ([`ShutdownBudget`]).

mod jobs_view;
mod listeners;
mod raft_view;
mod watcher;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api;
use crate::config::Config;
use crate::leadership::jobs::Jobs;
use crate::leadership::membership::{self, agent, controller, Changes, Left};
use crate::leadership::scheduler::{self, Scheduler};
use crate::leadership::start::{start_raft, StartError};
use crate::leadership::{
    bootstrap, caretaker, health, prevote, Handoff, Leadership, LocalPeer, NetworkFactory,
};
use crate::members::name_in;
use crate::metrics::Metrics;
use crate::peer::auth::{AuthError, PeerAuth};
use crate::peer::client::{ClientOptions, PeerClient};
use crate::peer::contacts::Contacts;
use crate::peer::server::{self as peer_server, Admission, Streams};
use crate::peer::tls::{PeerTls, TlsError};
use crate::raft::{vote_term, NodeId, Raft, ServerMetrics};
use crate::store::{self, StoreError};
pub use listeners::{BindError, Limits};
pub use raft_view::RaftView;

/// Why a peer could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("Raft stopped on an error: {0}")]
    Raft(openraft::error::Fatal<NodeId>),
    #[error("cannot build the peer HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot start the application API's thread: {0}")]
    Thread(std::io::Error),
    #[error("peer authentication: {0}")]
    Auth(#[from] AuthError),
    #[error("peer TLS: {0}")]
    Tls(#[from] TlsError),
}

/// How `--shutdown-timeout` is shared between the steps of a shutdown. The steps run one
/// after the other, so the shares add up to the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownBudget {
    /// Handing leadership over.
    pub handoff: Duration,
    /// Leaving the membership (after the hand-off).
    pub leave: Duration,
    /// openraft's own shutdown.
    pub raft: Duration,
    /// In-flight requests finishing on the listeners.
    pub drain: Duration,
    /// Every task awaited (the listeners' drain included); what still runs then is aborted.
    pub join: Duration,
}

impl ShutdownBudget {
    pub fn new(total: Duration) -> Self {
        ShutdownBudget {
            handoff: total.mul_f32(0.4),
            leave: total.mul_f32(0.2),
            raft: total.mul_f32(0.1),
            drain: total.mul_f32(0.25),
            join: total.mul_f32(0.3),
        }
    }
}

/// Why a running peer stops.
enum Stop {
    Requested,
    Failed(Box<openraft::error::Fatal<NodeId>>),
}

/// A running peer.
pub struct Node {
    raft: Raft,
    handoff: Handoff,
    changes: Arc<Changes>,
    budget: ShutdownBudget,
    /// Stops the background tasks and the peer listener (after the hand-off and Raft).
    stop: CancellationToken,
    /// The peer listener and the background tasks.
    tasks: JoinSet<()>,
    /// The application API's own thread (see [`listeners::serve_apart`]).
    app_server: std::thread::JoinHandle<()>,
    /// The peer streams this peer opened, and those it serves.
    client: PeerClient,
    streams: Arc<Streams>,
}

/// Runs a peer until `shutdown` completes, then hands leadership over and stops. Everything
/// the peer logs carries its id and current term (the `peer` span).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let span = tracing::info_span!("peer", id = %config.me.name, term = tracing::field::Empty);
    let inner = span.clone();
    async move {
        let node = Node::start(config, inner).await?;
        let why = node.wait(shutdown).await;
        node.stop(why).await
    }
    .instrument(span)
    .await
}

impl Node {
    /// Opens the store, starts Raft and the listeners, and spawns the background tasks.
    pub async fn start(config: Config, span: tracing::Span) -> Result<Node, NodeError> {
        let config = Arc::new(config);
        let budget = ShutdownBudget::new(config.shutdown_timeout);
        let tls = match &config.peer_tls {
            Some(files) => Some(Arc::new(PeerTls::load(files.clone())?)),
            None => None,
        };
        let (log_store, state_machine, opened) =
            store::open(&config.data_dir, &config.election, &config.me.name)?;
        let peer_listener = listeners::bind("peer traffic", config.peer_listen).await?;
        let mut app_listeners = vec![listeners::bind_std("the application API", config.http)?];
        if let Some(addr) = config.probe_http {
            app_listeners.push(listeners::bind_std("probes", addr)?);
        }

        let metrics = Arc::new(Metrics::new(&config.election, &config.me.name));
        // Until Raft publishes its membership, the first cluster's voters (a peer that is not
        // one of them never claims).
        let mut leadership = Leadership::new(
            config.me.id,
            config.peers.iter().map(|p| p.id),
            config.timing,
        );
        if config.membership.witness {
            leadership = leadership.witness();
        }
        let leadership = Arc::new(leadership);
        let contacts = Arc::new(Contacts::default());
        let auth = peer_auth(&config)?;
        let client = PeerClient::new(ClientOptions {
            election: config.election.clone(),
            me: config.me.name.clone(),
            connect_timeout: config.timing.election_max,
            auth: auth.clone(),
            stream_stall: config.peer_streams.then_some(config.timing.stream_stall()),
            tls: tls.clone(),
        })?;
        let network = NetworkFactory::new(
            client.clone(),
            leadership.clone(),
            metrics.clone(),
            contacts.clone(),
            config.timing.election_min,
        );
        let ledger = state_machine.ledger();
        let raft = start_raft(&config, network, log_store.clone(), state_machine).await?;
        leadership.attach(raft.metrics());
        let changes = Arc::new(Changes::new(
            raft.clone(),
            config.clone(),
            client.clone(),
            leadership.clone(),
        ));
        let jobs = Arc::new(Jobs::new(
            raft.clone(),
            config.clone(),
            client.clone(),
            leadership.clone(),
            ledger,
            metrics.clone(),
        ));
        let scheduler = Scheduler {
            jobs: jobs.clone(),
            raft: raft.clone(),
            leadership: leadership.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
        };
        let handoff = Handoff {
            raft: raft.clone(),
            config: config.clone(),
            client: client.clone(),
            leadership: leadership.clone(),
            metrics: metrics.clone(),
            changes: changes.clone(),
        };

        let client_for_stop = client.clone();
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let streams = Streams::new(stop.clone(), config.timing.stream_stall(), metrics.clone());
        let admission = Admission {
            election: config.election.clone(),
            me: config.me.name.clone(),
            senders: {
                let config = config.clone();
                Arc::new(move |name: &str| config.may_speak(name))
            },
            contacts: contacts.clone(),
            metrics: metrics.clone(),
            auth,
            tls_names: tls.as_ref().map(|_| {
                let config = config.clone();
                Arc::new(move |name: &str| config.tls_names(name)) as peer_server::TlsNames
            }),
        };
        let local = LocalPeer {
            raft: raft.clone(),
            log: log_store.clone(),
            leadership: leadership.clone(),
            config: config.clone(),
            changes: changes.clone(),
            jobs: jobs.clone(),
        };
        tasks.spawn(
            listeners::serve(
                peer_listener,
                peer_server::router(admission, local, streams.clone()),
                stop.clone(),
                Limits::peer(budget.drain),
                tls.map(|tls| listeners::Tls {
                    tls,
                    metrics: metrics.clone(),
                    log: Default::default(),
                }),
            )
            .in_current_span(),
        );
        let (published_tx, published) =
            watch::channel(watcher::initial(&config.me.name, &config.election));
        let view = Arc::new(RaftView {
            raft_metrics: raft.metrics(),
            handoff: handoff.clone(),
            leadership: leadership.clone(),
            metrics: metrics.clone(),
            config: config.clone(),
            changes: changes.clone(),
            contacts: contacts.clone(),
            published,
        });
        tasks.spawn(
            watcher::run(
                view.clone(),
                leadership.clone(),
                raft.server_metrics(),
                published_tx,
                stop.clone(),
            )
            .in_current_span(),
        );
        let routers = [
            api::app::router(view.clone(), config.max_streams).merge(api::jobs::router(Arc::new(
                jobs_view::LedgerView {
                    jobs,
                    me: config.me.name.clone(),
                },
            ))),
            api::app::probe_router(view),
        ];
        let app_server = listeners::serve_apart(
            app_listeners.into_iter().zip(routers).collect(),
            stop.clone(),
            Limits::app(budget.drain),
        )
        .map_err(NodeError::Thread)?;
        tasks.spawn(scheduler::run(scheduler, stop.clone()).in_current_span());
        tasks.spawn(
            watch_leaders(raft.server_metrics(), metrics, span, stop.clone()).in_current_span(),
        );
        tasks.spawn(
            controller::run(
                changes.clone(),
                leadership.clone(),
                contacts.clone(),
                stop.clone(),
            )
            .in_current_span(),
        );
        tasks.spawn(controller::probe(changes.clone(), contacts, stop.clone()).in_current_span());
        tasks.spawn(
            agent::join(changes.clone(), leadership.clone(), stop.clone()).in_current_span(),
        );
        tasks.spawn(
            prevote::run(
                config.clone(),
                raft.clone(),
                log_store,
                client.clone(),
                leadership,
                stop.clone(),
            )
            .in_current_span(),
        );
        if config.membership.witness {
            tasks.spawn(caretaker::run(handoff.clone(), stop.clone()).in_current_span());
        }
        if let Some(check) = config.app_health.clone() {
            // Healthy until the checks fail (docs/DESIGN.md, "Application health").
            handoff.leadership.app().set(true);
            tasks.spawn(health::run(check, handoff.clone(), stop.clone()).in_current_span());
        }
        if opened.fresh {
            tracing::info!(data_dir = %config.data_dir.display(), "fresh data directory: looking for a cluster to join or bootstrap");
            tasks.spawn(
                bootstrap::run(config.clone(), raft.clone(), client, stop.clone())
                    .in_current_span(),
            );
        }
        tracing::info!(
            election = %config.election,
            peers = config.peers.len(),
            witness = config.membership.witness,
            app_health = config.app_health.as_ref().map(|c| c.url.as_str()),
            max_voters = config.membership.max_voters,
            peer_listen = %config.peer_listen,
            http = %config.http,
            "raft-elector started"
        );
        Ok(Node {
            raft,
            handoff,
            changes,
            budget,
            stop,
            tasks,
            app_server,
            client: client_for_stop,
            streams,
        })
    }

    /// Runs until `shutdown` completes or Raft stops on an error.
    async fn wait(&self, shutdown: impl Future<Output = ()>) -> Stop {
        tokio::select! {
            _ = shutdown => Stop::Requested,
            fatal = raft_failure(&self.raft) => Stop::Failed(Box::new(fatal)),
        }
    }

    /// The one exit path: hand over (if asked to stop and leading), stop Raft, stop the
    /// listeners and tasks, and await them all, each step within its share of the budget.
    async fn stop(mut self, why: Stop) -> Result<(), NodeError> {
        let result = match why {
            Stop::Requested => {
                tracing::info!("shutting down");
                self.hand_over_and_leave().await;
                Ok(())
            }
            Stop::Failed(fatal) => {
                tracing::error!(error = %fatal, "Raft stopped on an error; exiting");
                Err(NodeError::Raft(*fatal))
            }
        };
        match tokio::time::timeout(self.budget.raft, self.raft.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "Raft did not stop cleanly"),
            Err(_) => tracing::warn!(
                budget_ms = self.budget.raft.as_millis() as u64,
                "Raft did not stop within its share of the shutdown timeout"
            ),
        }
        self.stop.cancel();
        // Each listener bounds its own drain by `budget.drain`; the tasks end on `stop`.
        let deadline = Instant::now() + self.budget.join;
        let app_server = self.app_server;
        let joined = tokio::time::timeout_at(deadline.into(), async {
            while self.tasks.join_next().await.is_some() {}
            self.streams.close().await;
            self.client.shutdown().await;
            let _ = tokio::task::spawn_blocking(move || app_server.join()).await;
        })
        .await;
        if joined.is_err() {
            tracing::warn!("some tasks did not stop within the shutdown timeout; aborting them");
            self.tasks.shutdown().await;
        }
        tracing::info!("stopped");
        result
    }
}

impl Node {
    /// Hands leadership over if this peer leads, then leaves the membership; again if this
    /// peer turns out to lead after all (it won an election it had started just before the
    /// shutdown: a leader that was stopping too handed over to it), within the hand-off's and
    /// the leave's shares of the budget together.
    async fn hand_over_and_leave(&self) {
        let deadline = Instant::now() + self.budget.handoff + self.budget.leave;
        let mut handoff_budget = self.budget.handoff;
        loop {
            self.handoff.before_exit(handoff_budget).await;
            let left = deadline.saturating_duration_since(Instant::now());
            match membership::agent::leave(&self.changes, left).await {
                Left::Removed(index) => tracing::info!(index, "left the membership"),
                Left::Stayed(why) => tracing::info!(why, "not leaving the membership"),
                Left::Refused(reason) => {
                    tracing::warn!(reason = %reason, "the leader refused this peer's leave")
                }
                Left::StillLeads if Instant::now() < deadline => {
                    tracing::info!("this peer leads after all: handing over again before leaving");
                    handoff_budget = deadline.saturating_duration_since(Instant::now()) / 2;
                    continue;
                }
                Left::StillLeads => tracing::warn!(
                    "this peer leads and the shutdown budget is spent: exiting as leader; the others elect after their election timeout"
                ),
                Left::TimedOut => tracing::warn!(
                    budget_ms = (self.budget.handoff + self.budget.leave).as_millis() as u64,
                    "could not leave the membership within its share of the shutdown timeout; the cluster keeps this peer as a member"
                ),
            }
            return;
        }
    }
}

fn peer_auth(config: &Config) -> Result<Option<Arc<PeerAuth>>, AuthError> {
    match &config.peer_secret {
        Some(secret) => Ok(Some(Arc::new(PeerAuth::new(
            secret,
            config.peer_auth_window,
        )?))),
        None => {
            tracing::warn!(
                "no peer secret: peer traffic is not authenticated (see --peer-secret-file)"
            );
            Ok(None)
        }
    }
}

/// Counts and logs leader changes as openraft reports them, and tells openraft's runtime
/// whether its tick has work ([`crate::beat::raft_leads_or_campaigns`]).
async fn watch_leaders(
    mut rx: watch::Receiver<ServerMetrics>,
    metrics: Arc<Metrics>,
    span: tracing::Span,
    stop: CancellationToken,
) {
    let mut last: Option<(Option<NodeId>, u64)> = None;
    let mut membership_index = None;
    loop {
        let (leader, term, name, index) = {
            let m = rx.borrow_and_update();
            let name = m
                .current_leader
                .and_then(|id| name_in(&m.membership_config, id));
            let index = m.membership_config.log_id().map(|l| l.index);
            // openraft's tick has work only where it leads or campaigns (or may elect).
            crate::beat::raft_leads_or_campaigns(matches!(
                m.state,
                ServerState::Leader | ServerState::Candidate
            ));
            (m.current_leader, vote_term(&m.vote), name, index)
        };
        if index != membership_index {
            if membership_index.is_some() {
                metrics.membership_changes.inc();
            }
            membership_index = index;
        }
        if last.is_none_or(|(_, t)| t != term) {
            // Every log line of this peer carries its current term.
            span.record("term", term);
        }
        if last != Some((leader, term)) {
            if leader.is_some() {
                metrics.leader_changes.inc();
                let name = name.as_deref().unwrap_or("?");
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

/// Completes when the Raft core stops on an error (e.g. storage failure). It watches the
/// server metrics, which change seldom and close when the core ends, rather than the full
/// metrics, which openraft publishes at every turn of its core; the error itself is in the
/// full metrics, set before the core ends.
async fn raft_failure(raft: &Raft) -> openraft::error::Fatal<NodeId> {
    let mut server = raft.server_metrics();
    loop {
        if let Err(fatal) = &raft.metrics().borrow().running_state {
            return fatal.clone();
        }
        if server.changed().await.is_err() {
            return match &raft.metrics().borrow().running_state {
                Err(fatal) => fatal.clone(),
                Ok(()) => openraft::error::Fatal::Stopped,
            };
        }
    }
}
