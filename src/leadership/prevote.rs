//! Pre-vote: a peer campaigns only when it could win.
//!
//! openraft 0.9 has no pre-vote. Without it, a follower cut off from the others times out,
//! raises its term again and again, and when it comes back its higher term makes the healthy
//! leader step down: a needless leader change. Here every peer keeps openraft's elections
//! switched off while it hears from a leader, and when it stops hearing from one it first asks
//! the others whether they would vote for it:
//!
//! * a peer grants a pre-vote only if it has not heard from a leader within the follower window
//!   either, is not itself a leader with a valid lease, and the candidate's log is at least as
//!   up to date as its own;
//! * with a quorum of grants (itself included) elections are switched on, otherwise off.
//!
//! The check runs every heartbeat interval and a peer's follower window (3/4 of
//! `election_timeout_max`) ends well before openraft's own election timer (at least
//! `election_timeout_max + election_timeout_min` after the last heartbeat), so a real failover
//! is not delayed. Elections asked for by a hand-off bypass this switch.
//!
//! Campaigning: openraft waits out its lease on the lost leader and then its election timeout,
//! one after the other. Once a pre-vote succeeds and every follower's lease has run out, a
//! peer campaigns by itself after a random delay of up to `election_timeout_min`.
//!
//! Split votes: openraft 0.9 draws each peer's election timeout once, at start. Two survivors
//! whose timeouts happen to be close campaign at the same moment, split the vote, and do it
//! again round after round. So when a peer sees itself still a candidate (its campaign did not
//! win within a heartbeat interval), it holds elections off for a random time up to
//! `election_timeout_max` before it may campaign again, which breaks the tie within a round or
//! two. The first campaign after a leader is lost is never delayed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use openraft::ServerState;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::lease::Leadership;
use crate::config::Config;
use crate::peer::client::PeerClient;
use crate::peer::protocol::{PreVoteRequest, PreVoteResponse};
use crate::raft::{Raft, RaftStatus};
use crate::store::LogStore;

/// The receiving side: decides whether to grant a pre-vote.
pub async fn answer(
    raft: &Raft,
    log: &LogStore,
    leadership: &Leadership,
    req: &PreVoteRequest,
) -> PreVoteResponse {
    let now = Instant::now();
    let status = RaftStatus::of(raft);
    let leading = status.raft_leader() && leadership.lease_valid(status.term, now);
    let following = leadership.fresh_leader(now).is_some();
    let mine = match log.clone().get_log_state().await {
        Ok(s) => s.last_log_id,
        Err(e) => {
            tracing::warn!(error = %e, "pre-vote: cannot read the log state; refusing");
            return PreVoteResponse { granted: false };
        }
    };
    PreVoteResponse {
        granted: !leading && !following && req.last_log_id >= mine,
    }
}

/// Asks every other peer for a pre-vote; true when a quorum (this peer included) grants it.
async fn pre_vote_round(config: &Config, log: &LogStore, client: &PeerClient) -> bool {
    let Ok(state) = log.clone().get_log_state().await else {
        return false;
    };
    let req = PreVoteRequest {
        last_log_id: state.last_log_id,
    };
    let others = config.others();
    let ask = others
        .iter()
        .map(|p| client.pre_vote(p, &req, config.timing.election_min / 2));
    let answers = futures::future::join_all(ask).await;
    let granted = 1 + answers
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|r| r.granted))
        .count();
    granted > config.peers.len() / 2
}

/// The candidate's side: keeps openraft's elections on only while a pre-vote would succeed,
/// and campaigns as soon as the lost leader's lease has run out on every follower.
pub async fn run(
    config: Arc<Config>,
    raft: Raft,
    log: LogStore,
    client: PeerClient,
    leadership: Arc<Leadership>,
    stop: CancellationToken,
) {
    let timing = config.timing;
    let mut enabled: Option<bool> = None;
    let mut granted = false;
    let mut next_pre_vote = Instant::now();
    // After a campaign that did not win at once: no new campaign before this instant. One
    // hold per campaign (term).
    let mut hold_until: Option<Instant> = None;
    let mut held_term = 0;
    // When this follower will campaign by itself (see below).
    let mut campaign_at: Option<Instant> = None;
    // Since when this leader's lease has not held, and whether heartbeats are on.
    let mut unleased_since: Option<Instant> = None;
    let mut heartbeats = true;
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        if leadership.relinquished() {
            return;
        }
        let RaftStatus { state, term, .. } = RaftStatus::of(&raft);
        let now = Instant::now();
        if state == ServerState::Candidate && term > held_term {
            held_term = term;
            hold_until = Some(now + timing.election_max.mul_f64(rng.gen::<f64>()));
        }
        let fresh = leadership.fresh_leader(now).map(|(_, left)| left);
        let following = state == ServerState::Leader || fresh.is_some();
        let held = hold_until.is_some_and(|h| now < h);
        if following || held {
            granted = false;
        } else if now >= next_pre_vote {
            granted = pre_vote_round(&config, &log, &client).await;
            next_pre_vote = Instant::now() + timing.heartbeat;
        }
        // Check-quorum: a leader whose lease has not held for two election timeouts (cut off
        // from its quorum, or a link so slow that no acknowledgement comes back in time) stops
        // its heartbeats. openraft would keep sending them, and the followers it still reaches
        // would never elect anyone else; without them their leases run out and they do.
        let leased = state == ServerState::Leader && leadership.lease_valid(term, now);
        if state != ServerState::Leader || leased {
            unleased_since = None;
        } else {
            unleased_since.get_or_insert(now);
        }
        let beat = unleased_since.is_none_or(|since| now < since + timing.election_max * 2);
        if heartbeats != beat && !leadership.relinquished() {
            raft.runtime_config().heartbeat(beat);
            if !beat {
                tracing::warn!(term, "no quorum has acknowledged this leader for two election timeouts: heartbeats stopped so that the others can elect");
            }
            heartbeats = beat;
        }
        let want = granted && !following && !held;
        if enabled != Some(want) && !leadership.relinquished() {
            raft.runtime_config().elect(want);
            if want || enabled.is_some() {
                tracing::debug!(elections = want, "pre-vote switched elections");
            }
            enabled = Some(want);
        }
        // openraft campaigns only once its own lease on the old leader AND its election
        // timeout have passed, one after the other. A follower whose pre-vote succeeded
        // campaigns as soon as every follower's lease has run out (they all last heard the
        // leader at about the same moment as this one), after a random delay of up to
        // election_timeout_min so that two survivors rarely campaign at once.
        let leases_out = leadership.last_append() + timing.election_max + timing.heartbeat / 5;
        if want && state == ServerState::Follower && now >= leases_out {
            let at = *campaign_at
                .get_or_insert_with(|| now + timing.election_min.mul_f64(rng.gen::<f64>()));
            if now >= at {
                campaign_at = None;
                tracing::debug!("leader lost: campaigning");
                if let Err(e) = raft.trigger().elect().await {
                    tracing::warn!(error = %e, "cannot campaign");
                }
            }
        } else {
            campaign_at = None;
        }
        // While a leader is fresh, nothing changes before its freshness runs out; otherwise
        // look again soon, so that the campaign starts close to its chosen moment.
        let pause = match (state, fresh) {
            (ServerState::Leader, _) => timing.heartbeat,
            (_, Some(left)) => left.min(timing.heartbeat),
            _ => Duration::from_millis(5),
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
