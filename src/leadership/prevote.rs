//! Pre-vote on the wire and the loop that runs this peer's campaign controllers: the pre-vote
//! messages, [`answer`] (whether this peer grants one), the round that asks every other peer,
//! and [`run`], which feeds the pure step of [`super::campaign`] from openraft's metrics and
//! [`Leadership`] and carries out what it decides. Why, and what it prevents: docs/DESIGN.md,
//! "Pre-vote" and "Check-quorum".

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use openraft::ServerState;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::campaign::{campaign_rank, Controller, Event, Inputs, PreVote, RaftState};
use super::lease::Leadership;
use crate::config::Config;
use crate::members::Members;
use crate::peer::client::PeerClient;
use crate::peer::protocol::{PreVoteRequest, PreVoteResponse};
use crate::raft::{NodeId, Raft, RaftStatus};
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

/// Asks every other voter of the membership in force for a pre-vote; true when a quorum of
/// every configuration in force (this peer included) grants it. A peer that is no voter never
/// gets one.
async fn pre_vote_round(config: &Config, raft: &Raft, log: &LogStore, client: &PeerClient) -> bool {
    let me = config.me.id;
    let members = Members::from_metrics(&raft.metrics().borrow());
    if !members.is_voter(me) {
        return false;
    }
    let Ok(state) = log.clone().get_log_state().await else {
        return false;
    };
    let req = PreVoteRequest {
        last_log_id: state.last_log_id,
    };
    let others: Vec<(NodeId, _)> = members
        .voters()
        .into_iter()
        .filter(|id| *id != me)
        .filter_map(|id| Some((id, members.nodes.get(&id)?.clone())))
        .collect();
    let ask = others
        .iter()
        .map(|(_, p)| client.pre_vote(p, &req, config.timing.election_min / 2));
    let answers = futures::future::join_all(ask).await;
    let granted: Vec<NodeId> = others
        .iter()
        .zip(answers)
        .filter(|(_, a)| a.as_ref().is_ok_and(|r| r.granted))
        .map(|((id, _), _)| *id)
        .collect();
    members.quorum(|id| id == me || granted.contains(&id))
}

/// The candidate's side and check-quorum: runs the controllers of [`super::campaign`] until
/// `stop` or until the peer relinquishes. Each pass reads the inputs, steps, runs the pre-vote
/// round the step asks for (then steps again with its outcome), carries out the actions and
/// sleeps as long as the step says.
pub async fn run(
    config: Arc<Config>,
    raft: Raft,
    log: LogStore,
    client: PeerClient,
    leadership: Arc<Leadership>,
    stop: CancellationToken,
) {
    let mut controller = Controller::new(config.timing, Instant::now());
    if config.membership.witness {
        controller = controller.witness();
    }
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut renewals = leadership.renewals();
    let wake = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(wake);
    loop {
        renewals.borrow_and_update();
        let mut inputs = observe(&raft, &leadership, config.me.id, rng.gen());
        let mut actions = controller.step(&inputs);
        if actions.pre_vote_round {
            let granted = pre_vote_round(&config, &raft, &log, &client).await;
            inputs.pre_vote = Some(PreVote {
                granted,
                finished: Instant::now(),
            });
            // What the round's wait may have changed is read again; the rest stands as
            // observed, `now` included.
            inputs.lease_left = leadership.lease_remaining(inputs.term, inputs.now);
            inputs.relinquished = leadership.relinquished();
            inputs.last_append = leadership.last_append();
            actions = controller.step(&inputs);
        }
        if actions.stop {
            return;
        }
        if let Some(on) = actions.heartbeats {
            leadership.silence((!on).then_some(inputs.term));
            raft.runtime_config().heartbeat(on);
        }
        if let Some(on) = actions.elections {
            super::start::set_elections(&raft, on);
        }
        for event in &actions.events {
            log_event(event);
        }
        if actions.campaign {
            if let Err(e) = raft.trigger().elect().await {
                tracing::warn!(error = %e, "cannot campaign");
            }
        }
        // A new timer at each pass: tokio keeps a timer moved later in the slot of its old
        // deadline and wakes there. Sleeping until a lease or a freshness window runs out,
        // a renewal moves that deadline: step again then, within the renewal's wake-up,
        // instead of waking at the stale deadline.
        wake.set(tokio::time::sleep_until(match actions.on_beat {
            true => crate::beat::next(actions.sleep),
            false => tokio::time::Instant::now() + actions.sleep,
        }));
        tokio::select! {
            _ = stop.cancelled() => return,
            Ok(()) = renewals.changed(), if actions.until_lapse => {}
            _ = &mut wake => {}
        }
    }
}

/// The controllers' inputs as of now; `random` is drawn by the caller.
fn observe(raft: &Raft, leadership: &Leadership, me: NodeId, random: f64) -> Inputs {
    let (
        RaftStatus {
            state,
            term,
            leader,
            ..
        },
        voters,
    ) = {
        let m = raft.metrics();
        let m = m.borrow();
        // Voter ids only: this runs at every renewal, and the members' names and addresses
        // are not needed here.
        (
            RaftStatus::from_metrics(&m),
            m.membership_config
                .membership()
                .voter_ids()
                .collect::<std::collections::BTreeSet<_>>(),
        )
    };
    let now = Instant::now();
    Inputs {
        now,
        state: match state {
            ServerState::Leader => RaftState::Leader,
            ServerState::Candidate => RaftState::Candidate,
            ServerState::Follower => RaftState::Follower,
            ServerState::Learner => RaftState::Learner,
            ServerState::Shutdown => RaftState::Shutdown,
        },
        term,
        lease_left: leadership.lease_remaining(term, now),
        fresh_leader: leadership.fresh_leader(now).map(|(_, left)| left),
        last_append: leadership.last_append(),
        relinquished: leadership.relinquished(),
        may_lead: leadership.app().may_lead(),
        pre_vote: None,
        // openraft keeps naming the leader of the term until this peer votes in a newer one.
        rank: campaign_rank(&voters, me, leader, term),
        random,
    }
}

fn log_event(event: &Event) {
    match *event {
        Event::HeartbeatsStopped { term } => tracing::warn!(term, "no quorum has acknowledged this leader for two election timeouts: heartbeats stopped so that the others can elect"),
        Event::ElectionsSwitched { on } => tracing::debug!(elections = on, "pre-vote switched elections"),
        Event::Campaigning => tracing::debug!("leader lost: campaigning"),
    }
}
