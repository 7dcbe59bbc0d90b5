//! Check-quorum (docs/DESIGN.md, "Check-quorum"): a leader whose followers still hear it but
//! whose acknowledgements no longer count (a link slower than the lease, or one that loses the
//! answers) goes quiet, so that the followers elect another leader; never two claim at once.

use std::time::{Duration, Instant};

use testkit::proxy::Net;
use testkit::{agreement, Ask, Cluster};

use crate::proxied_spec;

/// Far above what check-quorum needs here (about 1 s: the lease lapses, two election timeouts
/// later heartbeats stop, one more and the followers elect), far below "never".
const NEW_LEADER_WITHIN: Duration = Duration::from_secs(10);

/// How the peers send their requests, and so what ends the old leadership.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// Peer streams (the default): a stream whose answers do not come back stalls and is
    /// dropped, and none can be opened again through a link that holds the answers (the
    /// handshake needs one), so the followers stop hearing the old leader by themselves.
    Streams,
    /// One HTTP request per message: requests keep arriving whatever happens to the answers,
    /// so the followers elect only once check-quorum silenced the old leader, which it logs.
    Http,
}

/// Starts three peers behind proxies, lets `fault` degrade the links of the leader (its index
/// and its followers'), then asks every peer, round after round: at most one claims to lead
/// in any round, the followers agree on a new leader of a higher term within
/// [`NEW_LEADER_WITHIN`], and for a second after it the old leader never claims. Over HTTP the
/// old leader logs that check-quorum stopped its heartbeats; once healed, all agree again.
async fn the_followers_replace_a_leader_whose_link(
    transport: Transport,
    fault: impl FnOnce(&Net, usize, &[usize]),
) {
    the_followers_replace_a_leader_after(0, transport, |c, old, followers| {
        fault(c.proxies(), old, followers)
    })
    .await
}

/// As [`the_followers_replace_a_leader_whose_link`], with `spares` more peers that are not of
/// the first cluster (the last ones) and a fault that may also start them.
async fn the_followers_replace_a_leader_after(
    spares: usize,
    transport: Transport,
    fault: impl FnOnce(&mut Cluster, usize, &[usize]),
) {
    let mut spec = proxied_spec(3 + spares);
    spec.spares = spares;
    if transport == Transport::Http {
        spec.flags
            .extend(["--peer-transport".into(), "http".into()]);
    }
    let mut c = Cluster::new(spec);
    let first: Vec<usize> = (0..3).collect();
    c.first_cluster(&first);
    for &i in &first {
        c.spawn(i);
    }
    let all = first.clone();
    let names = c.names();
    let (old, old_term) = c.agreed_leader(&all, Duration::from_secs(10)).await;
    let followers: Vec<usize> = first.iter().copied().filter(|&i| i != old).collect();
    let logged = c.log_text(old).len();

    fault(&mut c, old, &followers);
    let faulted = Instant::now();
    let mut replaced: Option<Instant> = None;
    loop {
        let answers = c.ask_all(&all).await;
        let claims: Vec<&str> = answers
            .iter()
            .flatten()
            .filter(|a| a.is_leader)
            .map(|a| a.id.as_str())
            .collect();
        assert!(claims.len() <= 1, "two claims at once: {answers:?}");
        match replaced {
            None => {
                let among: Vec<_> = followers.iter().map(|&i| answers[i].clone()).collect();
                if let Some((new, term)) = agreement(&names, &followers, &among) {
                    assert!(term > old_term, "{answers:?}");
                    eprintln!(
                        "{} replaced {} ms after the fault",
                        names[new],
                        faulted.elapsed().as_millis()
                    );
                    replaced = Some(Instant::now());
                }
                assert!(
                    faulted.elapsed() < NEW_LEADER_WITHIN,
                    "no new leader {NEW_LEADER_WITHIN:?} after the fault; last answers: {answers:?}"
                );
            }
            Some(at) => {
                assert!(
                    !answers[old].as_ref().is_some_and(|a| a.is_leader),
                    "the old leader claims again: {answers:?}"
                );
                if at.elapsed() > Duration::from_secs(1) {
                    break;
                }
            }
        }
        tokio::time::sleep(c.spec.poll).await;
    }
    let log = &c.log_text(old)[logged..];
    if transport == Transport::Http {
        assert!(
            log.contains("heartbeats stopped"),
            "check-quorum did not silence the old leader:\n{log}"
        );
    }

    c.proxies().heal();
    c.agreed_leader(&all, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_round_trips_outlast_its_lease_is_replaced() {
    // 100 ms each way: a 200 ms round trip, above the 180 ms lease. Answers do come back (in
    // time for the stall bound), so the stream stays up and check-quorum must act.
    the_followers_replace_a_leader_whose_link(Transport::Http, |net, leader, _| {
        net.slow(leader, Duration::from_millis(100))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_round_trips_outlast_its_lease_is_replaced_over_streams() {
    the_followers_replace_a_leader_whose_link(Transport::Streams, |net, leader, _| {
        net.slow(leader, Duration::from_millis(100))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_hears_no_answers_is_replaced() {
    // Everything the followers send the leader is lost; its heartbeats still arrive.
    the_followers_replace_a_leader_whose_link(Transport::Http, |net, leader, followers| {
        for &f in followers {
            net.lose(f, leader, true);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_streams_get_no_answers_is_replaced() {
    the_followers_replace_a_leader_whose_link(Transport::Streams, |net, leader, followers| {
        for &f in followers {
            net.lose(f, leader, true);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_hears_no_answers_while_it_has_entries_to_send_is_replaced() {
    // As above, and a new peer then asks the old leader to join: the leader appends the change
    // and openraft sends it again and again, since no follower's acknowledgement arrives. Those
    // retries must not keep the followers from electing another leader.
    for transport in [Transport::Http, Transport::Streams] {
        the_followers_replace_a_leader_after(1, transport, |c, leader, followers| {
            for &f in followers {
                c.proxies().lose(f, leader, true);
            }
            c.join_later(3, &[leader]);
            c.spawn(3);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cut-off leader to append a membership change, which it no longer does: \
            membership writes need the leader lease since the nemesis finding 5 (the leader \
            then answers the join 'later'); kept to show the scenario, to be rebuilt"]
async fn a_silenced_leader_holding_an_entry_its_follower_lacks_leads_again_once_healed() {
    // Two voters. The leader, cut off from its follower, appends a change (a new peer joins
    // through it) that the follower never receives, and check-quorum silences it. Once the
    // link heals, the follower cannot win a pre-vote (the leader's log is longer), so only the
    // leader can end the standstill: its occasional request delivers the entry, and the
    // acknowledgement restores its lease.
    let mut spec = proxied_spec(3);
    spec.spares = 1;
    let mut c = Cluster::new(spec);
    c.first_cluster(&[0, 1]);
    c.spawn(0);
    c.spawn(1);
    let (leader, term) = c.agreed_leader(&[0, 1], Duration::from_secs(10)).await;
    let follower = 1 - leader;
    let logged = c.log_text(leader).len();
    c.proxies().cut(&[leader], &[follower], testkit::Mode::Drop);
    c.join_later(2, &[leader]);
    c.spawn(2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let learner = c
            .members(leader)
            .await
            .is_some_and(|m| m.learners.contains(&c.peers[2].name));
        if learner && c.log_text(leader)[logged..].contains("heartbeats stopped") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cut-off leader did not both add the learner and go quiet within 10 s:\n{}",
            c.log_tail(leader, 30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.proxies().heal();
    let healed = Instant::now();
    let (now_leader, now_term) = c.agreed_leader(&[0, 1], Duration::from_secs(10)).await;
    eprintln!(
        "peer-{now_leader} leads in term {now_term} (before: peer-{leader} in term {term}), {} ms after the heal",
        healed.elapsed().as_millis()
    );
    c.members_converge(&[0, 1, 2], &[0, 1, 2], &[], Duration::from_secs(10))
        .await;
}
