//! The job API's view of the running peer: claims and reports go through
//! [`crate::leadership::jobs::Jobs`] (to the leader), reads come from the ledger this peer
//! applied.

use std::sync::Arc;

use crate::api::jobs::{JobResult, JobsView};
use crate::api::view::BoxFuture;
use crate::leadership::jobs::Jobs;
use crate::ledger::{ClaimOutcome, DoneOutcome, JobLedger, JobSummary, Outcome};
use crate::peer::protocol::{ClaimRequest, DoneRequest, JobAnswer};

/// The real job view.
pub struct LedgerView {
    pub jobs: Arc<Jobs>,
    /// This peer's name: the holder of the claims its application makes.
    pub me: String,
}

fn result<T>(answer: JobAnswer, pick: impl FnOnce(JobAnswer) -> Option<T>) -> JobResult<T> {
    match answer {
        JobAnswer::Later { reason } => JobResult::Unavailable(reason),
        JobAnswer::Refused { reason } => JobResult::Invalid(reason),
        other => {
            let shown = format!("{other:?}");
            pick(other).map_or_else(
                || JobResult::Unavailable(format!("unexpected answer from the leader: {shown}")),
                JobResult::Decided,
            )
        }
    }
}

impl JobsView for LedgerView {
    fn claim(&self, job: String, slot: String) -> BoxFuture<'_, JobResult<ClaimOutcome>> {
        Box::pin(async move {
            let answer = self
                .jobs
                .claim(ClaimRequest { job, slot }, self.me.clone(), false)
                .await;
            result(answer, |a| match a {
                JobAnswer::Claimed(outcome) => Some(outcome),
                _ => None,
            })
        })
    }

    fn report(
        &self,
        job: String,
        slot: String,
        token: u64,
        ok: bool,
        detail: String,
    ) -> BoxFuture<'_, JobResult<DoneOutcome>> {
        Box::pin(async move {
            let req = DoneRequest {
                job,
                slot,
                token,
                outcome: if ok { Outcome::Ok } else { Outcome::Failed },
                detail,
            };
            result(self.jobs.done(req, false).await, |a| match a {
                JobAnswer::Reported(outcome) => Some(outcome),
                _ => None,
            })
        })
    }

    fn jobs(&self) -> Vec<JobSummary> {
        self.jobs.ledger().read(|l| l.summaries())
    }

    fn job(&self, job: &str) -> Option<JobLedger> {
        self.jobs.ledger().read(|l| l.jobs.get(job).cloned())
    }
}
