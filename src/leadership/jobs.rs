//! Claims of job slots and their outcomes as the cluster sees them: a follower forwards its
//! application's request to its leader once; the leader appends it to the log and answers
//! with what applying it decided ([`crate::ledger`]), only once it is committed.
//!
//! Safety rests on the log, not on the lease: whichever leader appends a claim, the grant is
//! decided when the entry is applied, in log order, by the same rules on every peer, so two
//! claims of one slot can never both be granted. The lease only keeps a deposed leader from
//! making callers wait for entries that will never commit.
//!
//! A peer of a release before the ledger cannot decode a claim entry. So the leader appends
//! none until every member has said it supports the ledger (`/raft/v1/features`), or the
//! ledger already holds a grant (the cluster switched over before, when every member
//! confirmed; joins of peers of an earlier release are refused from then on).
//!
//! Concurrent claims are joined into one entry ([`Command::Claims`], [`super::batcher`]) once
//! every member said it applies such entries (capability `claim-batches`); until then, each
//! claim is an entry of its own, as releases before batches append them. Tokens stay what
//! those releases hand out until the first batch ([`crate::ledger::Ledger::next_token`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::error::ClientWriteError;

use crate::config::Config;
use crate::leadership::batcher::Batcher;
use crate::leadership::Leadership;
use crate::ledger::{self, Claim, Done};
use crate::members::Members;
use crate::metrics::Metrics;
use crate::peer::client::{CallError, PeerClient};
use crate::peer::protocol::{self, ClaimRequest, DoneRequest, JobAnswer};
use crate::raft::{Applied, Command, NodeId, PeerNode, Raft, RaftStatus};
use crate::store::LedgerHandle;

/// How long a claim or a report may take before the caller is told to retry.
pub const WRITE_BUDGET: Duration = Duration::from_secs(2);

/// The most claims in one entry: 128 of the longest keys make about 50 KiB, far below the
/// message bound (an append that would exceed it is split: `network`).
pub const MAX_BATCH: usize = 128;

/// How long a member that did not confirm `claim-batches` is not asked again.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// This peer's side of the job ledger: the claims it appends as leader, and the requests it
/// forwards.
pub struct Jobs {
    raft: Raft,
    config: Arc<Config>,
    client: PeerClient,
    leadership: Arc<Leadership>,
    ledger: LedgerHandle,
    metrics: Arc<Metrics>,
    /// Members that said they support the ledger.
    confirmed: Mutex<BTreeSet<NodeId>>,
    /// Members that said they apply batches of claims, and until when the others are not
    /// asked (while one call asks them, and [`RECHECK_AFTER`] after it failed).
    batching: Mutex<(BTreeSet<NodeId>, Option<Instant>)>,
    batcher: Batcher<Claim, JobAnswer>,
}

/// Why a peer is not known to support the ledger.
#[derive(Debug, thiserror::Error)]
pub enum Unsupported {
    #[error("peer {0} runs a release without the job ledger: upgrade every peer first")]
    EarlierRelease(String),
    #[error("peer {0} has not confirmed that it supports the job ledger (the first claim needs every member to): {1}")]
    Unconfirmed(String, String),
    #[error("peer {0} runs a release without batched claims, which this cluster's log may hold: upgrade it to this release")]
    NoBatches(String),
    #[error("peer {0} has not confirmed that it applies batched claims: {1}")]
    BatchesUnconfirmed(String, String),
}

fn later(reason: impl Into<String>) -> JobAnswer {
    JobAnswer::Later {
        reason: reason.into(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Jobs {
    pub fn new(
        raft: Raft,
        config: Arc<Config>,
        client: PeerClient,
        leadership: Arc<Leadership>,
        ledger: LedgerHandle,
        metrics: Arc<Metrics>,
    ) -> Self {
        Jobs {
            raft,
            config,
            client,
            leadership,
            ledger,
            metrics,
            confirmed: Mutex::new(BTreeSet::new()),
            batching: Mutex::new((BTreeSet::new(), None)),
            batcher: Batcher::new(MAX_BATCH),
        }
    }

    /// The ledger as this peer applied it.
    pub fn ledger(&self) -> &LedgerHandle {
        &self.ledger
    }

    /// A claim of `holder`'s application; `forwarded` when a follower sent it here.
    pub async fn claim(&self, req: ClaimRequest, holder: String, forwarded: bool) -> JobAnswer {
        if let Err(e) = ledger::check_job_slot(&req.job, &req.slot) {
            return JobAnswer::Refused {
                reason: e.to_string(),
            };
        }
        if !self.leading() {
            return self
                .forward(forwarded, |client, leader| async move {
                    client.claim(&leader, &req, WRITE_BUDGET).await
                })
                .await;
        }
        let claim = Claim {
            job: req.job,
            slot: req.slot,
            holder,
            at_ms: now_ms(),
            history: self.config.job_history,
            retry_of: None,
        };
        self.write_claim(claim).await
    }

    /// As leader, claims a slot of a scheduled job for this peer (a new run of a lost one
    /// with `retry_of`).
    pub async fn claim_scheduled(&self, job: &str, slot: &str, retry_of: Option<u64>) -> JobAnswer {
        let claim = Claim {
            job: job.to_string(),
            slot: slot.to_string(),
            holder: self.config.me.name.clone(),
            at_ms: now_ms(),
            history: self.config.job_history,
            retry_of,
        };
        self.write_claim(claim).await
    }

    /// Appends a claim: joined with concurrent ones into one entry once every member applies
    /// such entries, else as an entry of its own.
    async fn write_claim(&self, claim: Claim) -> JobAnswer {
        if !self.every_member_applies_batches().await {
            return self.write_alone(claim).await;
        }
        let lost = || later("the request that was writing this claim stopped: ask again");
        self.batcher
            .submit(claim, |claims| self.write_claims(claims), lost)
            .await
    }

    /// Appends a claim as an entry of its own.
    async fn write_alone(&self, claim: Claim) -> JobAnswer {
        let answer = self.write(Command::Claim(claim)).await;
        if matches!(answer, JobAnswer::Claimed(_)) {
            self.metrics.claim_entries.inc();
            self.metrics.claims_appended.inc();
        }
        answer
    }

    /// Appends `claims` as one entry (a lone claim as [`Command::Claim`]), and answers each.
    async fn write_claims(&self, mut claims: Vec<Claim>) -> Vec<JobAnswer> {
        if claims.len() == 1 {
            if let Some(claim) = claims.pop() {
                return vec![self.write_alone(claim).await];
            }
        }
        let n = claims.len();
        match self.append(Command::Claims(claims)).await {
            Ok(Applied::Claims(outcomes)) if outcomes.len() == n => {
                self.metrics.claim_entries.inc();
                self.metrics.claims_appended.inc_by(n as u64);
                outcomes.into_iter().map(JobAnswer::Claimed).collect()
            }
            Ok(other) => vec![later(format!("unexpected outcome of a batch: {other:?}")); n],
            Err(answer) => vec![answer; n],
        }
    }

    /// As leader, records how a slot ended.
    pub async fn record(
        &self,
        job: &str,
        slot: &str,
        token: u64,
        outcome: ledger::Outcome,
        detail: &str,
    ) -> JobAnswer {
        let done = Done {
            job: job.to_string(),
            slot: slot.to_string(),
            token,
            outcome,
            detail: ledger::clip_detail(detail),
            at_ms: now_ms(),
        };
        self.write(Command::Done(done)).await
    }

    /// As leader, records slots of a scheduled job as missed. Answers how many were.
    pub async fn record_missed(
        &self,
        job: &str,
        slots: Vec<String>,
        detail: &str,
    ) -> Result<usize, String> {
        let missed = ledger::Missed {
            job: job.to_string(),
            slots,
            holder: self.config.me.name.clone(),
            detail: detail.to_string(),
            at_ms: now_ms(),
            history: self.config.job_history,
        };
        match self.write(Command::Missed(missed)).await {
            JobAnswer::Missed(n) => Ok(n),
            JobAnswer::Later { reason } | JobAnswer::Refused { reason } => Err(reason),
            other => Err(format!("unexpected answer: {other:?}")),
        }
    }

    /// A report of a slot's outcome; `forwarded` when a follower sent it here.
    pub async fn done(&self, req: DoneRequest, forwarded: bool) -> JobAnswer {
        if let Err(e) = ledger::check_job_slot(&req.job, &req.slot) {
            return JobAnswer::Refused {
                reason: e.to_string(),
            };
        }
        if !self.leading() {
            return self
                .forward(forwarded, |client, leader| async move {
                    client.done(&leader, &req, WRITE_BUDGET).await
                })
                .await;
        }
        let done = Done {
            detail: ledger::clip_detail(&req.detail),
            job: req.job,
            slot: req.slot,
            token: req.token,
            outcome: req.outcome,
            at_ms: now_ms(),
        };
        self.write(Command::Done(done)).await
    }

    /// Whether a peer that asks to join may (once the ledger holds grants, a peer of a
    /// release before it may not: it could not apply the log).
    pub async fn may_join(&self, node: &PeerNode) -> Result<(), Unsupported> {
        if self.ledger.read(|l| l.jobs.is_empty()) {
            return Ok(());
        }
        self.supports(node).await?;
        self.applies_batches(node).await
    }

    fn leading(&self) -> bool {
        RaftStatus::of(&self.raft).reported_leader(self.config.me.id)
    }

    /// Appends `command` as a leader a quorum acknowledged just now, waits until it is
    /// applied, for at most [`WRITE_BUDGET`], and answers what applying it decided.
    async fn write(&self, command: Command) -> JobAnswer {
        match self.append(command).await {
            Ok(Applied::Claim(outcome)) => JobAnswer::Claimed(outcome),
            Ok(Applied::Done(outcome)) => JobAnswer::Reported(outcome),
            Ok(Applied::Missed(n)) => JobAnswer::Missed(n),
            Ok(other) => later(format!("unexpected outcome: {other:?}")),
            Err(answer) => answer,
        }
    }

    /// [`Self::write`]'s append: the applied outcome, or the answer that says why not.
    async fn append(&self, command: Command) -> Result<Applied, JobAnswer> {
        let deadline = Instant::now() + WRITE_BUDGET;
        // Held until the write is applied: a leader shutting down waits for it before it
        // picks its successor (`Leadership::quiesce`).
        let Some(_appending) = self.leadership.begin_append().await else {
            return Err(later("the leader is shutting down: ask again in a moment"));
        };
        let status = RaftStatus::of(&self.raft);
        if !status.reported_leader(self.config.me.id)
            || !self.leadership.may_claim(status.term, Instant::now())
        {
            return Err(later(
                "this peer is not a leader a quorum acknowledged just now",
            ));
        }
        if let Err(why) = self.every_member_supports_the_ledger().await {
            return Err(later(why.to_string()));
        }
        let write = tokio::time::timeout_at(deadline.into(), self.raft.client_write(command));
        match write.await {
            Err(_) => Err(later(format!(
                "no quorum committed it within {} ms (it may still commit: ask again, a holder gets its own grant back)",
                WRITE_BUDGET.as_millis()
            ))),
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(e)) => Err(match e.api_error() {
                Some(ClientWriteError::ForwardToLeader(_)) => {
                    later("this peer lost the leadership: ask again")
                }
                Some(other) => later(other.to_string()),
                None => later(format!("Raft is stopping: {e}")),
            }),
        }
    }

    /// Checks that every member supports the ledger, or that the ledger already holds grants.
    async fn every_member_supports_the_ledger(&self) -> Result<(), Unsupported> {
        if !self.ledger.read(|l| l.jobs.is_empty()) {
            return Ok(());
        }
        let unconfirmed = self.other_members_but(&self.confirmed());
        let checks = unconfirmed.iter().map(|node| async move {
            self.supports(node).await?;
            self.confirmed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(crate::raft::node_id(&node.name));
            Ok::<(), Unsupported>(())
        });
        for result in futures::future::join_all(checks).await {
            result?;
        }
        Ok(())
    }

    /// The members other than this peer that are not in `confirmed`.
    fn other_members_but(&self, confirmed: &BTreeSet<NodeId>) -> Vec<PeerNode> {
        let members = Members::from_metrics(&self.raft.metrics().borrow());
        members
            .nodes
            .into_iter()
            .filter(|(id, _)| *id != self.config.me.id && !confirmed.contains(id))
            .map(|(_, node)| node)
            .collect()
    }

    fn confirmed(&self) -> BTreeSet<NodeId> {
        self.confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether every member confirmed that it applies batches of claims. A member that did
    /// not is asked again only after [`RECHECK_AFTER`], so that a cluster in the middle of an
    /// upgrade does not ask at every claim (the confirmation call is bounded by
    /// `election_max`, which the hold while it runs exceeds).
    async fn every_member_applies_batches(&self) -> bool {
        let lock = || self.batching.lock().unwrap_or_else(|p| p.into_inner());
        let unconfirmed: Vec<PeerNode> = {
            let (confirmed, recheck_at) = &*lock();
            let unconfirmed = self.other_members_but(confirmed);
            if unconfirmed.is_empty() {
                return true;
            }
            if recheck_at.is_some_and(|at| Instant::now() < at) {
                return false;
            }
            unconfirmed
        };
        // Concurrent claims do not all ask: the others append theirs alone meanwhile.
        lock().1 = Some(Instant::now() + self.config.timing.election_max * 2);
        let checks = unconfirmed.iter().map(|node| async move {
            let result = self.applies_batches(node).await;
            if result.is_ok() {
                lock().0.insert(crate::raft::node_id(&node.name));
            }
            result
        });
        let results = futures::future::join_all(checks).await;
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            tracing::debug!(error = %e, "claims are not batched");
            lock().1 = Some(Instant::now() + RECHECK_AFTER);
            return false;
        }
        lock().1 = None;
        true
    }

    /// Asks `node` whether its release applies batches of claims.
    async fn applies_batches(&self, node: &PeerNode) -> Result<(), Unsupported> {
        let timeout = self.config.timing.election_max;
        match self.client.capabilities(node, timeout).await {
            Ok(names) if names.iter().any(|n| n == protocol::CLAIM_BATCHES) => Ok(()),
            Ok(_) | Err(CallError::Refused { status: 404, .. }) => {
                Err(Unsupported::NoBatches(node.name.clone()))
            }
            Err(e) => Err(Unsupported::BatchesUnconfirmed(
                node.name.clone(),
                crate::errors::chain(&e),
            )),
        }
    }

    /// Asks `node` whether its release supports the ledger.
    async fn supports(&self, node: &PeerNode) -> Result<(), Unsupported> {
        match self
            .client
            .features(node, self.config.timing.election_max)
            .await
        {
            Ok(f) if f.ledger => Ok(()),
            Ok(_) | Err(CallError::Refused { status: 404, .. }) => {
                Err(Unsupported::EarlierRelease(node.name.clone()))
            }
            Err(e) => Err(Unsupported::Unconfirmed(
                node.name.clone(),
                crate::errors::chain(&e),
            )),
        }
    }

    /// Sends a request this peer cannot handle to its leader, once.
    async fn forward<F, Fut>(&self, forwarded: bool, send: F) -> JobAnswer
    where
        F: FnOnce(PeerClient, PeerNode) -> Fut,
        Fut: std::future::Future<Output = Result<JobAnswer, CallError>>,
    {
        if forwarded {
            return later("this peer is not the leader (any more)");
        }
        let leader = {
            let m = self.raft.metrics().borrow().clone();
            m.current_leader
                .filter(|id| *id != self.config.me.id)
                .and_then(|id| m.membership_config.membership().get_node(&id).cloned())
        };
        let Some(leader) = leader else {
            return later("no leader is known");
        };
        match send(self.client.clone(), leader.clone()).await {
            Ok(answer) => answer,
            Err(CallError::Refused { status: 404, .. }) => {
                later(Unsupported::EarlierRelease(leader.name).to_string())
            }
            Err(e) => later(format!(
                "cannot reach the leader {}: {}",
                leader.name,
                crate::errors::chain(&e)
            )),
        }
    }
}
