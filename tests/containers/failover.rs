//! The leader's container dies (`docker kill`) or is stopped (`docker stop`, SIGTERM).

use std::time::{Duration, Instant, SystemTime};

use testkit::docker::Cluster;
use testkit::{Ask, Role};

use crate::three_peers;

/// Kills the leader; returns how long the two others took to agree on a new leader with a
/// higher term, the new leader and its term.
pub async fn kill_leader(c: &Cluster) -> (Duration, usize, u64) {
    let (old, term) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
    let others = c.all_but(old);
    let t0 = Instant::now();
    c.kill(old).await;
    let (new, new_term) = c.new_leader(&others, Duration::from_secs(20), term).await;
    (t0.elapsed(), new, new_term)
}

/// What stopping the leader with `docker stop` gave.
pub struct Stopped {
    /// From `docker stop` until the two others agreed on a new leader with a higher term.
    pub failover: Duration,
    /// From `docker stop` until the process ended (Docker's record of the exit).
    pub exited: Option<Duration>,
    /// How long the `docker stop` command took (the exit plus Docker's clean-up).
    pub command: Duration,
    pub code: i64,
    pub new_leader: usize,
}

/// Stops the leader (SIGTERM) while watching the two others.
pub async fn stop_leader(c: &Cluster) -> Stopped {
    let (old, term) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
    let others = c.all_but(old);
    let since = SystemTime::now();
    let t0 = Instant::now();
    let stopping = c.stop(old);
    let waiting = c.new_leader(&others, Duration::from_secs(20), term);
    let ((command, code), ((new_leader, _), failover)) =
        tokio::join!(stopping, async { (waiting.await, t0.elapsed()) });
    Stopped {
        failover,
        exited: c.exited_after(old, since).await,
        command,
        code,
        new_leader,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_is_replaced_and_rejoins_with_its_data() {
    let c = three_peers("killed_leader_is_replaced_and_rejoins_with_its_data").await;
    let (old, _) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
    let (took, new, term) = kill_leader(&c).await;
    eprintln!(
        "docker kill {}: {} leads (term {term}) after {took:?}",
        c.nodes[old].name, c.nodes[new].name
    );
    assert_ne!(new, old);
    assert_eq!(c.exit_code(old).await, 137, "SIGKILL");

    // Same container, same volume: the peer comes back with its Raft state and follows.
    c.start_peer(old).await;
    let (leader, rejoined_term) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
    assert_eq!(leader, new, "the returning peer must not depose the leader");
    assert_eq!(
        rejoined_term, term,
        "the returning peer must not force an election"
    );
    let back = c.ask(old).await.expect("the restarted peer answers");
    assert_eq!(
        (back.role, back.is_leader),
        (Role::Follower, false),
        "{back:?}"
    );
    // Its data survived: only its very first start found an empty data directory.
    let logs = c.logs(old).await;
    assert_eq!(
        logs.matches("fresh data directory").count(),
        1,
        "the restart must find the data of the first run:\n{logs}"
    );
    assert!(!logs.contains("earlier state was lost"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_leader_hands_over_and_exits_zero() {
    let c = three_peers("stopped_leader_hands_over_and_exits_zero").await;
    let (old, _) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
    let s = stop_leader(&c).await;
    eprintln!(
        "docker stop {}: {} leads after {:?}; the process exited {} after {:?} (the docker stop \
         command returned after {:?})",
        c.nodes[old].name, c.nodes[s.new_leader].name, s.failover, s.code, s.exited, s.command
    );
    assert_eq!(s.code, 0, "SIGTERM must end in exit code 0");
    assert_ne!(s.new_leader, old);
    // Well within docker's 10 s before SIGKILL. The hand-off is one round trip and the process
    // ends within tens of ms (it does not wait for a DNS lookup still in flight).
    let exited = s.exited.expect("exit time");
    assert!(
        exited < Duration::from_secs(8),
        "the process took {exited:?} to exit"
    );
    let logs = c.logs(old).await;
    assert!(logs.contains("leadership handed over"), "{logs}");
}
