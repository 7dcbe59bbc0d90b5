//! SIGTERM: a leader hands over and exits 0; a follower exits 0.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::{Ask, Cluster};

use crate::spec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_leadership_over_and_exits_0() {
    let mut c = Cluster::start(spec(3));
    let (old, old_term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let survivors = c.all_but(old);

    let asked = Instant::now();
    c.signal(old, Signal::SIGTERM);
    let (new, new_term) = c.agreed_leader(&survivors, Duration::from_secs(3)).await;
    eprintln!(
        "hand-off: new leader agreed {} ms after SIGTERM",
        asked.elapsed().as_millis()
    );
    assert!(new_term > old_term);
    assert_ne!(new, old);

    let status = c
        .wait_exit(old, Duration::from_secs(5))
        .await
        .expect("the old leader did not exit within 5 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(
        c.log_text(old).contains("leadership handed over"),
        "no hand-off in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_a_follower_exits_0_and_the_leader_stays() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let follower = (leader + 1) % 3;
    let status = c
        .terminate(follower, Duration::from_secs(5))
        .await
        .expect("exited within 5 s");
    assert!(status.success(), "exit status {status}");
    let rest = c.all_but(follower);
    assert_eq!(
        c.agreed_leader(&rest, Duration::from_secs(5)).await,
        (leader, term)
    );
}
