//! Prometheus metrics of one peer.
//!
//! Counters are bumped where things happen (the peer client, the peer handlers, the Raft
//! metrics watcher); gauges that describe "now" (term, leadership, lease age) are set just
//! before each scrape is rendered, from the same check the API answers with.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a failed peer RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub peer: String,
    pub rpc: String,
}

/// Labels of a refused incoming peer request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub reason: String,
}

/// Labels of a refused join or leave.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Labels of a scheduled job's slots, by how they ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub job: String,
    pub outcome: String,
}

/// Labels of one scheduled job.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobNameLabels {
    pub job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    election: String,
    id: String,
    version: String,
    commit: String,
}

/// All metrics of a peer and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub term: Gauge,
    pub is_leader: Gauge,
    pub leader_known: Gauge,
    pub leader_changes: Counter,
    pub elections_started: Counter,
    pub peer_rpc_errors: Family<RpcLabels, Counter>,
    pub peer_requests_refused: Family<RefusedLabels, Counter>,
    pub quorum_ack_age_seconds: Gauge<f64, AtomicU64>,
    pub last_log_index: Gauge,
    /// Peer streams this peer serves now (one per peer that opened one to it).
    pub peer_streams: Gauge,
    pub snapshot_index: Gauge,
    pub purged_index: Gauge,
    pub handoffs: Counter,
    /// Terms this witness led as a caretaker.
    pub caretaker_terms: Counter,
    pub voters: Gauge,
    pub learners: Gauge,
    /// 1 while the application is healthy, 0 while unhealthy; -1 without `--app-health`.
    pub app_healthy: Gauge,
    pub membership_changes: Counter,
    pub joins_refused: Family<ReasonLabels, Counter>,
    pub leaves_refused: Family<ReasonLabels, Counter>,
    /// Slots of scheduled jobs this peer recorded as leader, by outcome (ok, failed, missed,
    /// lost).
    pub job_slots: Family<JobLabels, Counter>,
    /// Of the runs this peer started, those of slots past their time (catch-up runs).
    pub job_catch_up_runs: Family<JobNameLabels, Counter>,
    /// When this peer last finished a run of each job (Unix seconds).
    pub job_last_run: Family<JobNameLabels, Gauge<f64, AtomicU64>>,
    /// Claim entries this peer appended as leader and saw applied, and the claims in them
    /// (batches hold several).
    pub claim_entries: Counter,
    pub claims_appended: Counter,
    /// Newest term this peer campaigned in, so that one election (many vote RPCs) counts once.
    last_campaign: AtomicU64,
}

impl Metrics {
    pub fn new(election: &str, id: &str) -> Self {
        let mut registry = Registry::with_prefix("raft_elector");
        let m = Metrics {
            registry: Registry::default(),
            term: Gauge::default(),
            is_leader: Gauge::default(),
            leader_known: Gauge::default(),
            leader_changes: Counter::default(),
            elections_started: Counter::default(),
            peer_rpc_errors: Family::default(),
            peer_requests_refused: Family::default(),
            quorum_ack_age_seconds: Gauge::default(),
            last_log_index: Gauge::default(),
            peer_streams: Gauge::default(),
            snapshot_index: Gauge::default(),
            purged_index: Gauge::default(),
            handoffs: Counter::default(),
            caretaker_terms: Counter::default(),
            voters: Gauge::default(),
            learners: Gauge::default(),
            app_healthy: Gauge::default(),
            membership_changes: Counter::default(),
            joins_refused: Family::default(),
            leaves_refused: Family::default(),
            job_slots: Family::default(),
            job_catch_up_runs: Family::default(),
            job_last_run: Family::default(),
            claim_entries: Counter::default(),
            claims_appended: Counter::default(),
            last_campaign: AtomicU64::new(0),
        };
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            election: election.to_string(),
            id: id.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: env!("RAFT_ELECTOR_COMMIT").to_string(),
        })
        .set(1);
        registry.register(
            "info",
            "Election, peer id, version and commit of this peer",
            info,
        );
        registry.register("term", "Current Raft term of this peer", m.term.clone());
        registry.register(
            "is_leader",
            "1 while this peer leads with a valid lease (the same check the API answers with)",
            m.is_leader.clone(),
        );
        registry.register(
            "leader_known",
            "1 while this peer can name a leader",
            m.leader_known.clone(),
        );
        registry.register(
            "leader_changes",
            "Changes of (leader, term) seen by this peer",
            m.leader_changes.clone(),
        );
        registry.register(
            "elections_started",
            "Elections this peer started as a candidate",
            m.elections_started.clone(),
        );
        registry.register(
            "peer_rpc_errors",
            "Outgoing peer RPCs that failed",
            m.peer_rpc_errors.clone(),
        );
        registry.register(
            "peer_requests_refused",
            "Incoming peer requests refused before reaching Raft",
            m.peer_requests_refused.clone(),
        );
        registry.register(
            "quorum_ack_age_seconds",
            "Leader only: age of the newest heartbeat a quorum acknowledged (NaN when none)",
            m.quorum_ack_age_seconds.clone(),
        );
        registry.register(
            "peer_streams",
            "Peer streams this peer serves now: one per peer that opened one to it",
            m.peer_streams.clone(),
        );
        registry.register(
            "last_log_index",
            "Index of the last Raft log entry",
            m.last_log_index.clone(),
        );
        registry.register(
            "snapshot_index",
            "Last log index covered by the snapshot",
            m.snapshot_index.clone(),
        );
        registry.register(
            "purged_index",
            "Last purged log index",
            m.purged_index.clone(),
        );
        registry.register(
            "handoffs",
            "Leadership hand-offs this peer started on shutdown",
            m.handoffs.clone(),
        );
        registry.register(
            "caretaker_terms",
            "Terms this witness led as a caretaker (no application peer could be elected) before it handed over",
            m.caretaker_terms.clone(),
        );
        m.app_healthy.set(-1);
        registry.register(
            "app_healthy",
            "1 while this peer's application is healthy (--app-health), 0 while unhealthy, -1 when not checked",
            m.app_healthy.clone(),
        );
        registry.register(
            "voters",
            "Voters of the membership in force (both halves of a joint change)",
            m.voters.clone(),
        );
        registry.register(
            "learners",
            "Members that follow the log without voting",
            m.learners.clone(),
        );
        registry.register(
            "membership_changes",
            "Membership entries this peer has seen appended (a joint change counts twice)",
            m.membership_changes.clone(),
        );
        registry.register(
            "joins_refused",
            "Requests to join refused by this peer, by reason",
            m.joins_refused.clone(),
        );
        registry.register(
            "leaves_refused",
            "Requests to leave refused by this peer, by reason",
            m.leaves_refused.clone(),
        );
        registry.register(
            "job_slots",
            "Slots of scheduled jobs this peer recorded as leader, by outcome (ok, failed, missed, lost)",
            m.job_slots.clone(),
        );
        registry.register(
            "job_catch_up_runs",
            "Runs this peer started of slots past their time (after a failover or an outage)",
            m.job_catch_up_runs.clone(),
        );
        registry.register(
            "job_last_run_timestamp_seconds",
            "When this peer last finished a run of the job (Unix time; the age is time() minus this)",
            m.job_last_run.clone(),
        );
        registry.register(
            "claim_entries",
            "Log entries of job claims this peer appended as leader",
            m.claim_entries.clone(),
        );
        registry.register(
            "claims_appended",
            "Job claims this peer appended as leader (several share an entry under load)",
            m.claims_appended.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts `n` slots of `job` that ended with `outcome`.
    pub fn job_slots(&self, job: &str, outcome: &str, n: u64) {
        self.job_slots
            .get_or_create(&JobLabels {
                job: job.to_string(),
                outcome: outcome.to_string(),
            })
            .inc_by(n);
    }

    /// Counts an election, once per term this peer campaigns in; true the first time.
    pub fn campaign(&self, term: u64) -> bool {
        let first = self.last_campaign.fetch_max(term, Ordering::Relaxed) < term;
        if first {
            self.elections_started.inc();
        }
        first
    }

    /// Counts a failed outgoing RPC.
    pub fn rpc_error(&self, peer: &str, rpc: &str) {
        self.peer_rpc_errors
            .get_or_create(&RpcLabels {
                peer: peer.to_string(),
                rpc: rpc.to_string(),
            })
            .inc();
    }

    /// Counts a refused incoming request.
    pub fn refused(&self, reason: &str) {
        self.peer_requests_refused
            .get_or_create(&RefusedLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts a refused join or leave (`what`) by reason.
    pub fn membership_refused(&self, what: &str, reason: &str) {
        let family = match what {
            "join" => &self.joins_refused,
            _ => &self.leaves_refused,
        };
        family
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Renders the registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Lets a repeated warning (a refused peer request, a failed handshake) through at most once
/// every [`LogGate::EVERY`] across threads; the counters count every one.
#[derive(Debug, Default)]
pub struct LogGate {
    /// Unix seconds of the last warning let through.
    last: AtomicU64,
}

impl LogGate {
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// Whether to log now.
    pub fn due(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last.load(Ordering::Relaxed);
        now >= last + Self::EVERY.as_secs()
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::LogGate;

    #[test]
    fn a_log_gate_lets_the_first_warning_through_and_holds_the_next_ones() {
        let gate = LogGate::default();
        assert!(gate.due());
        assert!(!gate.due());
        assert!(!gate.due());
    }
}
