//! SIGTERM: a leader hands over to the follower it chose and exits 0; a follower exits 0.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::logs::field;
use testkit::{Ask, Cluster};

use crate::spec;

/// What a hand-off in a healthy 3-peer cluster may take, from SIGTERM until the two others
/// agree on the new leader: one vote round and a heartbeat (README: about 7 ms). An ordinary
/// election after the old leader went silent takes about 300-400 ms, too close to tell apart
/// by time on a loaded machine: the terms and the logs tell it apart.
const HANDOFF_WITHIN: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_leadership_to_the_chosen_follower_and_exits_0() {
    // Past its first election timeout (240 ms), the leader asks at once.
    hand_off_after_leading_for(Duration::from_millis(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_an_election_still_hands_over_in_one_election() {
    // Within its first election timeout the hand-off first waits that out (openraft refuses
    // every vote then); the leader's heartbeats must go on meanwhile, or the followers'
    // leases run out and an ordinary election races the hand-off.
    hand_off_after_leading_for(Duration::ZERO).await;
}

/// Stops a leader that has led (as the peers agree) for `leading_for`, and checks that the
/// follower it chose took over in the next term.
async fn hand_off_after_leading_for(leading_for: Duration) {
    let mut c = Cluster::start(spec(3));
    let (old, old_term) = c
        .settled_leader(&c.all(), leading_for, Duration::from_secs(10))
        .await;
    let survivors = c.all_but(old);
    let logged: Vec<usize> = (0..3).map(|i| c.log_text(i).len()).collect();
    let since = |c: &Cluster, i: usize| c.log_text(i)[logged[i]..].to_string();

    let sent = Instant::now();
    c.signal(old, Signal::SIGTERM);
    let (new, new_term) = c.agreed_leader(&survivors, HANDOFF_WITHIN).await;
    eprintln!(
        "hand-off: new leader agreed {} ms after SIGTERM",
        sent.elapsed().as_millis()
    );
    // One election, the one the hand-off asked for.
    assert_eq!(new_term, old_term + 1, "not the hand-off's election");
    let took = c.expect_stopped(old, sent).await;
    eprintln!(
        "the old leader exited 0 {} ms after SIGTERM",
        took.as_millis()
    );

    let (old_name, new_name) = (&c.peers[old].name, &c.peers[new].name);
    let old_log = since(&c, old);
    let handed = old_log
        .lines()
        .find(|l| l.contains("leadership handed over"))
        .unwrap_or_else(|| panic!("no hand-off in {old_name}'s log:\n{old_log}"));
    assert_eq!(
        field(handed, "to").as_deref(),
        Some(new_name.as_str()),
        "{handed}"
    );
    assert_eq!(
        field(handed, "term"),
        Some(new_term.to_string()),
        "{handed}"
    );
    // The new leader campaigned because the old one asked it to; the other follower was not
    // asked.
    for &i in &survivors {
        let log = since(&c, i);
        let asked = log
            .lines()
            .find(|l| l.contains("leader hands over: campaigning now"));
        match i == new {
            true => {
                let asked = asked.unwrap_or_else(|| {
                    panic!("{new_name} leads, but was not asked to take over:\n{log}")
                });
                assert_eq!(field(asked, "from").as_deref(), Some(old_name.as_str()));
            }
            false => assert!(asked.is_none(), "{} was asked too:\n{log}", c.peers[i].name),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_a_follower_exits_0_and_the_leader_stays() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    let follower = (leader + 1) % 3;
    c.stop(follower).await;
    let rest = c.all_but(follower);
    assert_eq!(
        c.agreed_leader(&rest, Duration::from_secs(5)).await,
        (leader, term)
    );
}
