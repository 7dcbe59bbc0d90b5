//! The loops around the membership: the leader's controller, which runs [`super::plan::next`]
//! and makes the change it asks for, and every peer's prober, which asks members it has not
//! heard from lately what they are (reachability and roles for `/v1/members`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::changes::Changes;
use super::plan::{self, Inputs};
use crate::leadership::Leadership;
use crate::members::Members;
use crate::peer::contacts::Contacts;
use crate::raft::RaftStatus;

/// How often the leader's controller looks at the membership while a change may be due soon
/// (a joint membership, learners that may catch up, too many voters, a change just made).
const TICK: Duration = Duration::from_millis(100);
/// How often it looks otherwise, leading or not; it also wakes whenever Raft's server state
/// or membership changes. Nothing it waits for then needs a faster look: removing silent
/// voters counts in tens of seconds, a witness is noticed by the prober once a second.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// A joint membership unchanged this long has no change running to finish it.
const STUCK_JOINT: Duration = Duration::from_secs(1);

/// How often members not heard from lately are probed, and what "lately" is.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const QUIET: Duration = Duration::from_millis(500);

/// A member heard from within this long counts as reachable.
pub const REACHABLE_WITHIN: Duration = Duration::from_millis(2500);

/// The leader's controller: one change at a time, while this peer leads with a valid lease.
pub async fn run(
    changes: Arc<Changes>,
    leadership: Arc<Leadership>,
    contacts: Arc<Contacts>,
    stop: CancellationToken,
) {
    let config = changes.config.clone();
    let me = config.me.id;
    let mut leading_since: Option<(u64, Instant)> = None;
    // The joint membership seen, and since when.
    let mut joint_since: Option<(Option<u64>, Instant)> = None;
    let mut server = changes.raft.server_metrics();
    let mut busy = false;
    loop {
        // With nothing due, it has nothing to do until Raft's server state or membership
        // changes (checked again every second all the same): an idle peer wakes seldom.
        let wait = if busy { TICK } else { IDLE_TICK };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = crate::beat::sleep(wait) => {}
            changed = server.changed() => if changed.is_err() { return },
        }
        let m = changes.raft.metrics().borrow().clone();
        let status = RaftStatus::from_metrics(&m);
        let now = Instant::now();
        let leading = status.elected(me) && !leadership.relinquished();
        // Elected without a lease yet: look again soon, the lease comes within a heartbeat.
        busy = leading;
        if !leading || !leadership.may_claim(status.term, now) {
            leading_since = None;
            continue;
        }
        let since = match leading_since {
            Some((term, at)) if term == status.term => at,
            _ => {
                leading_since = Some((status.term, now));
                now
            }
        };
        let members = Members::from_metrics(&m);
        let stuck_joint = if members.joint() {
            match joint_since {
                Some((index, at)) if index == members.index => now - at >= STUCK_JOINT,
                _ => {
                    joint_since = Some((members.index, now));
                    false
                }
            }
        } else {
            joint_since = None;
            false
        };
        let silent_too_long = match config.membership.remove_unreachable_after {
            None => Default::default(),
            Some(after) => members
                .voters()
                .into_iter()
                .filter(|id| *id != me)
                .filter(|id| {
                    let name = members.name_of(*id).unwrap_or_default();
                    let silent = contacts.age(name).unwrap_or(now - since);
                    silent >= after && now - since >= after
                })
                .collect(),
        };
        let inputs = Inputs {
            me,
            last_index: m.last_log_index.unwrap_or(0),
            matched: m
                .replication
                .iter()
                .flat_map(|r| r.iter())
                .map(|(id, l)| (*id, l.map(|l| l.index)))
                .collect(),
            max_voters: config.membership.max_voters,
            witnesses: changes.witnesses(),
            silent_too_long,
            stuck_joint,
            members,
        };
        busy = inputs.members.joint()
            || !inputs.members.learners().is_empty()
            || inputs.members.voters().len() > inputs.max_voters;
        if let Some(change) = plan::next(&inputs) {
            changes.apply(&change).await;
            busy = true;
        }
    }
}

/// Every peer: asks the members it has not heard from lately what they are, and those it
/// has no peer stream to: a follower hears its leader all the time but sends it nothing, and
/// the first request it sends (a vote, in a hand-off or a failover) should not wait for a
/// connection to be made.
pub async fn probe(changes: Arc<Changes>, contacts: Arc<Contacts>, stop: CancellationToken) {
    let config = changes.config.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = crate::beat::sleep(PROBE_EVERY) => {}
        }
        let members = Members::from_metrics(&changes.raft.metrics().borrow());
        let quiet: Vec<_> = members
            .nodes
            .iter()
            .filter(|(id, node)| {
                **id != config.me.id
                    && (contacts.age(&node.name).is_none_or(|age| age > QUIET)
                        || !changes.client.has_stream(&node.name))
            })
            .map(|(id, node)| (*id, node.clone()))
            .collect();
        let timeout = config.timing.election_max;
        let asks = quiet.iter().map(|(id, node)| {
            let client = changes.client.clone();
            async move { (*id, node, client.info(node, timeout).await) }
        });
        for (id, node, answer) in futures::future::join_all(asks).await {
            if let Ok(info) = answer {
                contacts.heard(&node.name);
                changes.note_witness(id, info.witness);
            }
        }
    }
}
