//! Two application peers and a witness (issue 12): the witness votes, is
//! never handed leadership, and is never named; and when the other application peer's log is
//! behind the witness's after the leader is lost, the witness leads as a caretaker just long
//! enough to bring it up to date and hand over (docs/DESIGN.md, "Witness").

use std::time::{Duration, Instant};

use testkit::jobs;
use testkit::{Ask, Cluster};

use crate::{proxied_spec, spec};

const STEP: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_and_a_witness_survive_the_crash_of_either_and_the_witness_never_leads() {
    let mut s = spec(3);
    s.flags
        .extend(["--shutdown-timeout".to_string(), "3s".to_string()]);
    let mut c = Cluster::new(s);
    c.peers[2].extra.push("--witness".into());
    c.spawn_all();
    let (leader, term) = c.agreed_leader(&[0, 1, 2], STEP).await;
    assert_ne!(leader, 2, "the witness leads");
    // The witness is known as one (from its join, or a probe).
    let deadline = Instant::now() + STEP;
    while c.members(leader).await.map(|m| m.witnesses) != Some(vec![c.peers[2].name.clone()]) {
        assert!(
            Instant::now() < deadline,
            "the witness is not listed as one"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM of the leader hands over to the other application peer, never to the witness.
    let other = 1 - leader;
    c.stop(leader).await;
    let (now, term2) = c.agreed_leader(&[other, 2], STEP).await;
    assert_eq!(now, other, "handed to the witness");
    assert!(term2 > term);
    c.spawn(leader);
    c.members_converge(&[0, 1, 2], &[0, 1, 2], &[], STEP).await;
    // kill -9 of the leader: the other application peer leads, with the witness's vote.
    let (leader, _) = c.agreed_leader(&[0, 1, 2], STEP).await;
    let other = 1 - leader;
    c.kill(leader);
    let (now, _) = c.agreed_leader(&[other, 2], Duration::from_secs(5)).await;
    assert_eq!(now, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_ahead_of_the_other_application_peer_leads_as_caretaker_and_hands_over() {
    // The leader commits a claim with the witness alone (its link to the other application
    // peer is cut), then dies. The other peer's log lacks that entry, so it can win no vote:
    // without a caretaker there is no leader until the dead peer returns.
    let mut c = Cluster::new(proxied_spec(3));
    c.peers[2].extra.push("--witness".into());
    c.spawn_all();
    let (leader, term) = c.agreed_leader(&[0, 1, 2], STEP).await;
    assert_ne!(leader, 2, "the witness leads");
    let other = 1 - leader;
    let client = jobs::client();
    // The ledger's first claim needs every member to support it (docs/DESIGN.md, "Job
    // ledger"): made while all are reachable.
    let first = jobs::claim_decided(&client, c.peers[leader].http, "mail", "first", STEP).await;
    assert_eq!(first.map(|r| r.status), Some(201));
    c.proxies().cut(&[leader], &[other], testkit::Mode::Drop);
    let slot = "2026-12-04T05:00:00Z";
    let granted = jobs::claim_decided(&client, c.peers[leader].http, "mail", slot, STEP)
        .await
        .expect("the cut-off leader decides the claim with the witness");
    assert_eq!(granted.status, 201, "{:?}", granted.body);
    let (_, token) = granted.holder_token().expect("holder and token");
    // (No heal: a dropped link delivers the bytes it held when it opens again.)
    c.kill(leader);

    // The other application peer leads, and nobody ever names the witness meanwhile.
    let witness = c.peers[2].name.clone();
    let lost = Instant::now();
    loop {
        let answers = c.ask_all(&[other, 2]).await;
        for a in answers.iter().flatten() {
            assert_ne!(a.name, witness, "{} names the witness: {a:?}", a.id);
        }
        let led = answers.iter().all(|a| {
            a.as_ref()
                .is_some_and(|a| a.name == c.peers[other].name && a.term > term)
        });
        if led {
            break;
        }
        assert!(
            lost.elapsed() < Duration::from_secs(15),
            "no leader 15 s after the leader died; last answers: {answers:?}\nwitness:\n{}",
            c.log_tail(2, 30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "the other application peer leads {:?} after the kill",
        lost.elapsed()
    );
    assert!(
        c.metric(2, "raft_elector_caretaker_terms_total").await >= Some(1.0),
        "the witness did not lead as a caretaker"
    );
    // (Whether by its hand-off or, when that ran out first, by the peer's own election once
    // the caretaker stepped down: either way the caretaker's entries came first.)
    // The grant the witness held survived: a claim of the same slot is refused, same token.
    let again = jobs::claim_decided(&client, c.peers[other].http, "mail", slot, STEP)
        .await
        .expect("the new leader decides the claim");
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.holder_token().map(|(_, t)| t), Some(token));
}
