//! The leader's container is cut off the network (`docker network disconnect`).

use std::time::{Duration, Instant};

use testkit::Ask;

use crate::three_peers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_leader_steps_aside_and_rejoins() {
    let mut c = three_peers("cut_off_leader_steps_aside_and_rejoins").await;
    let (old, term) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
    let others = c.all_but(old);

    let t0 = Instant::now();
    c.disconnect(old).await;
    // The majority elects a new leader.
    let (new, new_term) = c.new_leader(&others, Duration::from_secs(20), term).await;
    let elected = t0.elapsed();
    assert_ne!(new, old);

    // The cut-off peer, asked from inside its container (its published port is gone with its
    // network), stops saying it leads; once the majority has a new leader it must never again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first_no = None;
    let mut answers = 0;
    while Instant::now() < deadline {
        if let Some(a) = c.ask_inside(old).await {
            answers += 1;
            assert!(
                !a.is_leader,
                "{} still claims to lead after {} was elected: {a:?}",
                c.nodes[old].name, c.nodes[new].name
            );
            // Cut off, it cannot know the new leader, and must not name a stale one.
            assert!(
                a.name.is_empty(),
                "the cut-off peer names a stale leader: {a:?}"
            );
            first_no.get_or_insert(t0.elapsed());
            if answers >= 5 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answers >= 5,
        "the cut-off peer did not answer from inside its container"
    );
    eprintln!(
        "{} cut off: {} elected (term {new_term}) after {elected:?}; the cut-off peer answered \
         is_leader:false ({answers} times, first at {:?})",
        c.nodes[old].name,
        c.nodes[new].name,
        first_no.unwrap_or_default()
    );

    // Back on the network: all three agree again, the returning peer as a follower.
    let t1 = Instant::now();
    c.connect(old).await;
    let (leader, agreed_term) = c
        .agreed_leader_where(&c.all(), Duration::from_secs(30), |_, t| t >= new_term)
        .await;
    eprintln!(
        "reconnected: all three name {} (term {agreed_term}) after {:?}",
        c.nodes[leader].name,
        t1.elapsed()
    );
    let back = c.ask(old).await.expect("the reconnected peer answers");
    assert_eq!(back.name, c.nodes[leader].name);
}
