//! The push source: a task that re-observes "who leads" only when that can have changed and
//! publishes the result into a `tokio::sync::watch` channel when the leader, the term or this
//! peer's role changed. It wakes on
//! - a change of openraft's server metrics (leader, term, state, membership),
//! - an event of the lease state it asked for ([`Leadership::watch_for`]): an acknowledgement
//!   or a heartbeat while it names nobody, a revocation while this peer leads, a forgotten
//!   leader while it names another peer,
//! - the end of the answer's validity (`valid_ms`): leases expire with time, not with an event.
//!
//! There is no polling tick: while a leader is named, each renewal of the lease (or of the
//! follower's freshness window) moves the deadline in the renewal's own wake-up, so the timer
//! fires only when the answer really runs out; while none is, only on events (and a slow
//! safety net).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::view::{key, NodeView, Observation, Published};
use crate::leadership::lease::{WANT_GAIN, WANT_LEADING, WANT_NAMED};
use crate::leadership::Leadership;
use crate::raft::ServerMetrics;

/// Re-observes at least this often while nobody is named, in case an event was missed.
const SAFETY_NET: Duration = Duration::from_secs(1);

/// The channel's first value, before the watcher's first observation: nobody named.
pub fn initial(id: &str, election: &str) -> Published {
    Published {
        obs: Observation {
            id: id.into(),
            election: election.into(),
            ..Observation::default()
        },
        last_update: SystemTime::now(),
    }
}

/// The events worth a wake-up given what is published now.
fn interest(obs: &Observation) -> u8 {
    if obs.is_leader {
        WANT_LEADING
    } else if obs.name.is_empty() {
        WANT_GAIN
    } else {
        WANT_NAMED
    }
}

/// When to observe again without an event: just after the answer stops being valid while it
/// names a leader (`valid_ms` rounds down: under 1 ms left is 0, so 1 ms then), else after the
/// safety net.
fn next_wake(obs: &Observation) -> Duration {
    if obs.name.is_empty() || cfg!(feature = "testing-skip-lease") {
        // (The test-only build names leaders without a lease: `valid_ms` is always 0.)
        SAFETY_NET
    } else {
        Duration::from_millis(obs.valid_ms.saturating_add(1))
    }
}

/// Publishes `obs` if its leader, term or role differ from the published one; `last_update`
/// moves only when the name does. Returns whether it published.
pub fn publish(tx: &watch::Sender<Published>, obs: Observation, now: SystemTime) -> bool {
    tx.send_if_modified(|p| {
        if key(&obs) == p.key() {
            return false;
        }
        if obs.name != p.obs.name {
            p.last_update = now;
        }
        p.obs = obs;
        true
    })
}

/// The part of openraft's metrics an observation depends on, read from its server metrics,
/// which openraft publishes only when they changed (its full metrics go out at every
/// replication acknowledgement: on a leader, two per heartbeat with 3 peers). openraft sends
/// the server metrics just before the full ones, within one synchronous step of its core, so
/// on the node's single-threaded runtime the full metrics that [`NodeView::observe`] reads are
/// already current when this wakes.
type RaftKey = (
    crate::raft::RaftStatus,
    Option<openraft::LogId<crate::raft::NodeId>>,
);

fn raft_key(m: &ServerMetrics) -> RaftKey {
    (
        crate::raft::RaftStatus::from_server(m),
        *m.membership_config.log_id(),
    )
}

/// Completes when the part of the metrics that matters differs from `last`; `false` when the
/// metrics channel closed.
async fn relevant_change(raft: &mut watch::Receiver<ServerMetrics>, last: &RaftKey) -> bool {
    loop {
        if raft.changed().await.is_err() {
            return false;
        }
        if raft_key(&raft.borrow_and_update()) != *last {
            return true;
        }
    }
}

/// Runs until `stop` fires or Raft's metrics close; dropping `tx` then ends every stream.
pub async fn run(
    view: Arc<dyn NodeView>,
    leadership: Arc<Leadership>,
    mut raft: watch::Receiver<ServerMetrics>,
    tx: watch::Sender<Published>,
    stop: CancellationToken,
) {
    let mut asked = 0;
    let mut renewals = leadership.renewals();
    // Replaced at each pass: tokio keeps a timer moved later in the slot of its old deadline.
    let wake = tokio::time::sleep(SAFETY_NET);
    tokio::pin!(wake);
    loop {
        let seen = raft_key(&raft.borrow_and_update());
        renewals.borrow_and_update();
        let obs = view.observe();
        let want = interest(&obs);
        if want != asked {
            // Ask first, then observe again: an event between the two is seen either way.
            leadership.watch_for(want);
            asked = want;
            continue;
        }
        let next = next_wake(&obs);
        // While a leader is named, a renewal moves the end of the answer's validity: observe
        // again then, in the renewal's own wake-up, rather than at the stale deadline.
        let naming = !obs.name.is_empty();
        publish(&tx, obs, SystemTime::now());
        wake.set(tokio::time::sleep_until(tokio::time::Instant::now() + next));
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = relevant_change(&mut raft, &seen) => if !changed { return },
            _ = leadership.changed().notified() => {}
            Ok(()) = renewals.changed(), if naming => {}
            _ = &mut wake => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::view::Role;

    fn obs(name: &str, term: u64, valid_ms: u64) -> Observation {
        Observation {
            name: name.into(),
            term,
            is_leader: false,
            id: "web-0".into(),
            election: "jobs".into(),
            role: Role::Follower,
            valid_ms,
            voters: 3,
            ..Observation::default()
        }
    }

    #[test]
    fn a_new_lease_alone_publishes_nothing() {
        let t0 = SystemTime::UNIX_EPOCH;
        let (tx, _rx) = watch::channel(Published {
            obs: obs("web-1", 3, 100),
            last_update: t0,
        });
        assert!(!publish(&tx, obs("web-1", 3, 150), t0));
        assert_eq!(tx.borrow().obs.valid_ms, 100);
    }

    #[test]
    fn last_update_moves_only_with_the_name() {
        let t1 = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        let t2 = t1 + Duration::from_secs(1);
        let (tx, _rx) = watch::channel(initial("web-0", "jobs"));
        assert!(publish(&tx, obs("web-1", 3, 100), t1));
        assert_eq!(tx.borrow().last_update, t1);
        assert!(publish(&tx, obs("web-1", 4, 100), t2));
        assert_eq!(tx.borrow().last_update, t1, "a new term, same leader");
        assert!(publish(&tx, obs("", 4, 0), t2));
        assert_eq!(tx.borrow().last_update, t2);
    }

    #[test]
    fn the_watcher_wakes_when_a_named_leader_stops_being_valid() {
        if cfg!(feature = "testing-skip-lease") {
            return;
        }
        assert_eq!(next_wake(&obs("web-1", 3, 149)), Duration::from_millis(150));
        assert_eq!(next_wake(&obs("web-1", 3, 0)), Duration::from_millis(1));
        assert_eq!(next_wake(&obs("", 3, 0)), SAFETY_NET);
    }

    #[test]
    fn the_watcher_asks_for_the_events_that_can_change_its_answer() {
        assert_eq!(interest(&obs("", 1, 0)), WANT_GAIN);
        assert_eq!(interest(&obs("web-1", 1, 10)), WANT_NAMED);
        let mut me = obs("web-0", 1, 10);
        me.is_leader = true;
        assert_eq!(interest(&me), WANT_LEADING);
    }
}
