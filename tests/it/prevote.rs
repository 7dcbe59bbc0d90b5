//! Pre-vote (docs/DESIGN.md, "Pre-vote"): a follower cut off from the others and healed again
//! never raises the cluster's term, its own included, and never deposes the healthy leader.

use std::time::{Duration, Instant};

use testkit::{Ask, Cluster, Mode};

use crate::proxied_spec;

/// Asks every peer in `among` for its Raft term (`raft_elector_term`) and every answer of
/// `/v1/leader` for the leader it names, for `period`: each term must stay `term`, and every
/// named leader must be `leader` of `term`. Returns how many terms the peer `watched` reported.
async fn hold_still(
    c: &Cluster,
    among: &[usize],
    leadership: (usize, u64),
    watched: usize,
    period: Duration,
) -> usize {
    let (leader, term) = leadership;
    let leader_name = c.peers[leader].name.as_str();
    let until = Instant::now() + period;
    let mut seen = 0;
    while Instant::now() < until {
        for &i in among {
            let name = match i == watched {
                true => format!("the cut-off peer {}", c.peers[i].name),
                false => c.peers[i].name.clone(),
            };
            if let Some(t) = c.metric(i, "raft_elector_term").await {
                assert_eq!(t, term as f64, "{name}'s term moved from {term}");
                seen += usize::from(i == watched);
            }
            if let Some(a) = c.ask(i).await.filter(|a| !a.name.is_empty()) {
                assert_eq!(
                    (a.name.as_str(), a.term),
                    (leader_name, term),
                    "{name} named another leadership"
                );
            }
        }
        tokio::time::sleep(c.spec.poll).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_cut_off_and_healed_never_raises_the_term_or_deposes_the_leader() {
    let c = Cluster::start(proxied_spec(3));
    let all = c.all();
    let (leader, term) = c.agreed_leader(&all, Duration::from_secs(10)).await;
    let cut = (leader + 1) % 3;

    // Cut off for about eight of its longest election timeouts (240 ms).
    c.proxies().cut(&[cut], &c.all_but(cut), Mode::Drop);
    let seen = hold_still(&c, &all, (leader, term), cut, Duration::from_secs(2)).await;
    assert!(
        seen >= 10,
        "the cut-off peer reported its term only {seen} times"
    );

    // Healed: the leader stays, in its term, and the cut-off peer follows it again.
    c.proxies().heal();
    assert_eq!(
        c.agreed_leader(&all, Duration::from_secs(5)).await,
        (leader, term),
        "the healed peer deposed the leader"
    );
    let seen = hold_still(&c, &all, (leader, term), cut, Duration::from_secs(1)).await;
    assert!(
        seen >= 5,
        "the healed peer reported its term only {seen} times"
    );
}
