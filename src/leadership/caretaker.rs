//! The witness as caretaker. A witness votes and never leads, but Raft leaves one case where
//! only it can end a standstill: the lost leader replicated an entry to the witness and not
//! yet to the remaining application peer, whose shorter log then wins no vote. The witness's
//! campaign controller lets it campaign after [`super::campaign`]'s caretaker wait; once it
//! leads, this loop hands leadership to an application peer at once. Meanwhile it claims
//! nothing: it names nobody, grants no job slot, fires no schedule, changes no membership,
//! and its heartbeats do not let followers name it ([`super::Leadership::may_claim`]).
//! docs/DESIGN.md, "Witness".

use openraft::ServerState;
use tokio_util::sync::CancellationToken;

use super::handoff::{Handoff, Outcome};
use super::health::healthy_peers;

/// Runs on a witness until `stop`: whenever it leads, hands over.
pub async fn run(handoff: Handoff, stop: CancellationToken) {
    let me = handoff.config.me.id;
    let timing = handoff.config.timing;
    // The server metrics change only with the state, leader, vote or membership.
    let mut metrics = handoff.raft.server_metrics();
    loop {
        let leads =
            metrics.wait_for(|m| m.state == ServerState::Leader && m.current_leader == Some(me));
        let term = tokio::select! {
            _ = stop.cancelled() => return,
            led = leads => match led {
                Ok(m) => crate::raft::vote_term(&m.vote),
                Err(_) => return,
            },
        };
        handoff.metrics.caretaker_terms.inc();
        tracing::warn!(term, "this witness leads as a caretaker (no application peer could be elected): handing over");
        // Peers whose application is healthy first; any application peer otherwise.
        let healthy = healthy_peers(&handoff).await;
        let budget = timing.election_max * 5;
        let outcome = if healthy.is_empty() {
            handoff.resign(budget).await
        } else {
            handoff.resign_to(budget, &healthy).await
        };
        match outcome {
            Outcome::HandedOver { to, term, elapsed } => {
                tracing::info!(to = %to, term, elapsed_ms = elapsed.as_millis() as u64, "the caretaker handed leadership over")
            }
            other => {
                tracing::warn!(outcome = ?other, "the caretaker could not hand leadership over; trying again");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(timing.heartbeat) => {}
                }
            }
        }
    }
}
