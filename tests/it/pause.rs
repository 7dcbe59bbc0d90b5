//! A leader paused (SIGSTOP) for several election timeouts must not speak from memory when it
//! wakes: once another peer leads, the old one never again says it leads with its older term.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use testkit::{Ask, Cluster};

use crate::spec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_does_not_claim_after_waking() {
    let c = Cluster::start(spec(3));
    let (old, old_term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let others = c.all_but(old);

    c.signal(old, Signal::SIGSTOP);
    let (new, new_term) = c.agreed_leader(&others, Duration::from_secs(10)).await;
    assert!(new_term > old_term);
    // Stay paused well past several election timeouts (240 ms each by default).
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.signal(old, Signal::SIGCONT);

    // Poll the woken peer as fast as it answers for a while: no claim with the older term.
    let until = Instant::now() + Duration::from_secs(2);
    let mut answers = 0;
    while Instant::now() < until {
        if let Some(a) = c.ask(old).await {
            answers += 1;
            assert!(
                !(a.is_leader && a.term < new_term),
                "woken ex-leader claimed leadership with term {} after {} led in term {new_term}",
                a.term,
                c.peers[new].name
            );
            assert!(
                !(a.name == c.peers[old].name && a.term <= old_term),
                "named itself with its old term: {a:?}"
            );
        }
    }
    assert!(answers > 10, "the woken peer answered only {answers} times");
    // And the cluster converges on one leader again, with a term not below the new one.
    let (_, term) = c.agreed_leader(&[0, 1, 2], Duration::from_secs(10)).await;
    assert!(term >= new_term);
}
