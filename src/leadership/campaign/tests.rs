//! The campaign controllers' step, driven with synthetic instants: no clock, no runtime.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The timings the steps below are worked out for (the defaults before session 31): heartbeat
/// 30 ms, election timeout 100-200 ms.
fn timing() -> Timing {
    Timing {
        heartbeat: ms(30),
        election_min: ms(100),
        election_max: ms(200),
    }
}

/// One peer's controllers, stepped at synthetic instants; a round the step asks for
/// takes `round_takes` and is granted as the caller says.
struct Peer {
    c: Controller,
    t0: Instant,
    round_takes: Duration,
    rounds: Vec<u64>,
}

impl Peer {
    fn new() -> Self {
        let t0 = Instant::now();
        Peer {
            // Heartbeat 30 ms, election timeout 100-200 ms: every follower's lease on a
            // leader last heard at t0 has run out at 200 + 30/5 = 206 ms.
            c: Controller::new(timing(), t0),
            t0,
            round_takes: Duration::ZERO,
            rounds: Vec::new(),
        }
    }

    /// A follower of term 1 that hears no leader, `n` ms after start.
    fn at(&self, n: u64) -> Inputs {
        Inputs {
            now: self.t0 + ms(n),
            state: RaftState::Follower,
            term: 1,
            lease_left: None,
            fresh_leader: None,
            last_append: self.t0,
            relinquished: false,
            may_lead: true,
            pre_vote: None,
            rank: 0,
            random: 0.0,
        }
    }

    fn leader(&self, n: u64, leased: bool) -> Inputs {
        Inputs {
            state: RaftState::Leader,
            term: 3,
            lease_left: leased.then_some(ms(150)),
            ..self.at(n)
        }
    }

    /// Steps as the loop does: runs the round the step asks for, then steps again.
    fn step(&mut self, mut i: Inputs, grant: bool) -> Actions {
        let a = self.c.step(&i);
        if !a.pre_vote_round {
            return a;
        }
        assert_eq!(
            a,
            Actions {
                pre_vote_round: true,
                ..Actions::default()
            }
        );
        self.rounds.push((i.now - self.t0).as_millis() as u64);
        i.pre_vote = Some(PreVote {
            granted: grant,
            finished: i.now + self.round_takes,
        });
        let a = self.c.step(&i);
        assert!(!a.pre_vote_round, "an outcome is used, not asked for again");
        a
    }

    /// The instants (ms) in `range` at which a follower of campaign rank `rank`, stepped
    /// every ms, campaigns.
    fn campaigns(&mut self, range: std::ops::RangeInclusive<u64>, rank: u32) -> Vec<u64> {
        range
            .filter(|&n| self.step(Inputs { rank, ..self.at(n) }, true).campaign)
            .collect()
    }
}

#[test]
fn a_follower_hearing_a_fresh_leader_never_asks_for_pre_votes() {
    let mut p = Peer::new();
    for n in (0..2000).step_by(5) {
        let a = p.step(
            Inputs {
                fresh_leader: Some(ms(40)),
                ..p.at(n)
            },
            true,
        );
        assert_ne!(a.elections, Some(true));
        assert!(!a.campaign);
    }
    assert!(p.rounds.is_empty());
}

#[test]
fn a_leader_never_asks_for_pre_votes_and_keeps_elections_off() {
    let mut p = Peer::new();
    let a = p.step(p.leader(0, true), true);
    assert_eq!(a.elections, Some(false));
    assert!(a.events.is_empty(), "the switch-off at start is not logged");
    for n in (30..2000).step_by(30) {
        assert_eq!(
            p.step(p.leader(n, true), true),
            Actions {
                sleep: ms(150),
                until_lapse: true,
                ..Actions::default()
            }
        );
    }
    assert!(p.rounds.is_empty());
}

#[test]
fn without_a_fresh_leader_a_round_runs_every_heartbeat_interval_after_the_last() {
    let mut p = Peer::new();
    for n in 0..=100 {
        p.step(p.at(n), false);
    }
    assert_eq!(p.rounds, [0, 30, 60, 90]);
    let mut p = Peer::new();
    p.round_takes = ms(10);
    for n in 0..=100 {
        p.step(p.at(n), false);
    }
    assert_eq!(p.rounds, [0, 40, 80], "counted from the end of a round");
}

#[test]
fn elections_are_on_only_after_a_granted_round_while_no_leader_is_fresh() {
    let mut p = Peer::new();
    let a = p.step(p.at(0), false);
    assert_eq!((a.elections, a.events), (Some(false), vec![]));
    let a = p.step(p.at(5), true);
    assert_eq!(a.elections, None, "no round before the next is due");
    let a = p.step(p.at(30), true);
    assert_eq!(a.elections, Some(true));
    assert_eq!(a.events, [Event::ElectionsSwitched { on: true }]);
    let a = p.step(p.at(60), false);
    assert_eq!(a.elections, Some(false));
    assert_eq!(a.events, [Event::ElectionsSwitched { on: false }]);
    assert_eq!(p.step(p.at(90), true).elections, Some(true));
    let a = p.step(
        Inputs {
            fresh_leader: Some(ms(100)),
            ..p.at(95)
        },
        true,
    );
    assert_eq!(
        a.elections,
        Some(false),
        "a fresh leader switches them off at once"
    );
    let a = p.step(p.at(100), true);
    assert_eq!(
        a.elections, None,
        "once the leader is stale, a new round must grant"
    );
    assert_eq!(p.step(p.at(120), true).elections, Some(true));
    assert_eq!(p.rounds, [0, 30, 60, 90, 120]);
}

#[test]
fn a_ready_follower_does_not_campaign_before_every_followers_lease_ran_out() {
    let mut p = Peer::new();
    assert_eq!(p.campaigns(0..=206, 0), [206]);
    let mut p = Peer::new();
    let candidate = Inputs {
        state: RaftState::Candidate,
        ..p.at(500)
    };
    assert!(
        !p.step(candidate, true).campaign,
        "only a follower campaigns"
    );
}

#[test]
fn a_ready_follower_campaigns_its_rank_times_20_ms_after_the_leases_ran_out() {
    for (rank, at) in [(0, 206), (1, 226), (3, 266)] {
        let mut p = Peer::new();
        assert_eq!(p.campaigns(0..=at, rank), [at], "rank {rank}");
    }
}

#[test]
fn the_campaign_moment_is_fixed_once_per_wait() {
    let mut p = Peer::new();
    assert!(p.campaigns(0..=206, 2).is_empty());
    // Ranked first now, it would campaign at once; the moment fixed at 206 ms holds.
    assert_eq!(p.campaigns(207..=246, 0), [246]);
    // The next wait fixes its moment anew: rank 1 from 247 ms.
    assert_eq!(p.campaigns(247..=267, 1), [267]);
    // A wait that ends before its moment (here a refused round) is forgotten.
    let mut p = Peer::new();
    assert!(p.campaigns(0..=209, 2).is_empty());
    assert!(!p.step(p.at(210), false).campaign);
    // The next round is due 30 ms after the refused one; granted, a new wait starts.
    assert_eq!(p.campaigns(211..=260, 1), [260]);
}

#[test]
fn a_follower_that_sees_a_newer_term_while_it_waits_leaves_the_campaign_to_that_candidate() {
    let mut p = Peer::new();
    assert!(p.campaigns(0..=210, 1).is_empty());
    // At 211 ms it voted for the peer ranked first, in term 2.
    let voted = |p: &Peer, n| Inputs {
        term: 2,
        rank: 0,
        ..p.at(n)
    };
    for n in 211..=600 {
        assert!(!p.step(voted(&p, n), true).campaign, "at {n} ms");
    }
    // That candidate won: a fresh leader ends the wait; once it is lost the next one
    // fixes its moment in the new term.
    let following = Inputs {
        fresh_leader: Some(ms(100)),
        ..voted(&p, 601)
    };
    assert!(!p.step(following, true).campaign);
    // (Its pre-vote is granted again at the next round, 630 ms: rounds ran every 30 ms.)
    assert_eq!(
        (602..=630)
            .filter(|&n| p.step(voted(&p, n), true).campaign)
            .collect::<Vec<_>>(),
        [630]
    );
}

#[test]
fn every_survivor_of_a_lost_leader_draws_its_own_rank_and_the_order_turns_with_the_term() {
    let voters: BTreeSet<NodeId> = [1, 2, 3, 4, 5].into();
    for term in 1..=10 {
        let ranks: BTreeSet<u32> = [2, 3, 4, 5]
            .into_iter()
            .map(|me| campaign_rank(&voters, me, Some(1), term))
            .collect();
        assert_eq!(ranks, [0, 1, 2, 3].into(), "term {term}");
    }
    let first = |term| {
        [2, 3, 4, 5]
            .into_iter()
            .find(|me| campaign_rank(&voters, *me, Some(1), term) == 0)
    };
    let firsts: BTreeSet<_> = (1..=4).map(first).collect();
    assert_eq!(
        firsts.len(),
        4,
        "each survivor goes first in one of 4 terms"
    );
    assert_eq!(
        campaign_rank(&voters, 1, Some(1), 7),
        4,
        "the lost leader last"
    );
    assert_eq!(campaign_rank(&voters, 9, Some(1), 7), 4, "a non-voter last");
    let no_leader: BTreeSet<u32> = (1..=5)
        .map(|me| campaign_rank(&voters, me, None, 3))
        .collect();
    assert_eq!(no_leader, [0, 1, 2, 3, 4].into());
}

#[test]
fn a_candidate_still_candidate_holds_elections_off_for_random_times_election_max() {
    let mut p = Peer::new();
    assert_eq!(p.step(p.at(0), true).elections, Some(true));
    let candidate = |p: &Peer, n, random| Inputs {
        state: RaftState::Candidate,
        term: 2,
        random,
        ..p.at(n)
    };
    // Seen a candidate of term 2 at 300 ms with 0.25: held until 300 + 50 ms.
    let a = p.step(candidate(&p, 300, 0.25), true);
    assert_eq!(a.elections, Some(false));
    assert_eq!(a.events, [Event::ElectionsSwitched { on: false }]);
    let rounds = p.rounds.len();
    for n in 301..350 {
        assert_eq!(p.step(candidate(&p, n, 0.9), true).elections, None);
    }
    assert_eq!(p.rounds.len(), rounds, "no round while held");
    assert_eq!(p.step(candidate(&p, 350, 0.9), true).elections, Some(true));
    assert_eq!(p.rounds.len(), rounds + 1);
}

#[test]
fn the_split_vote_hold_is_taken_once_per_term() {
    let mut p = Peer::new();
    let candidate = |p: &Peer, n, term| Inputs {
        state: RaftState::Candidate,
        term,
        random: 0.5,
        ..p.at(n)
    };
    assert_eq!(p.step(candidate(&p, 0, 2), true).elections, Some(false));
    assert_eq!(p.step(candidate(&p, 100, 2), true).elections, Some(true));
    for n in 101..=400 {
        assert_eq!(
            p.step(candidate(&p, n, 2), true).elections,
            None,
            "at {n} ms"
        );
    }
    assert_eq!(p.step(candidate(&p, 401, 3), true).elections, Some(false));
    assert_eq!(p.step(candidate(&p, 501, 3), true).elections, Some(true));
}

#[test]
fn the_first_campaign_after_a_leader_is_lost_is_never_held() {
    let mut p = Peer::new();
    for n in 0..266 {
        let a = p.step(
            Inputs {
                rank: 3,
                random: 0.99,
                ..p.at(n)
            },
            true,
        );
        assert_ne!(a.elections, Some(false), "at {n} ms");
        assert!(!a.campaign, "at {n} ms");
    }
    // Rank 3: due 206 + 3 × 20 ms; nothing held it.
    assert_eq!(p.campaigns(266..=266, 3), [266]);
    let a = p.step(
        Inputs {
            state: RaftState::Candidate,
            term: 2,
            random: 0.5,
            ..p.at(310)
        },
        true,
    );
    assert_eq!(
        a.elections,
        Some(false),
        "only a campaign that did not win is held"
    );
}

#[test]
fn a_leader_stops_heartbeats_exactly_two_election_timeouts_after_its_lease_lapsed() {
    let mut p = Peer::new();
    for n in (0..100).step_by(30) {
        assert_eq!(p.step(p.leader(n, true), true).heartbeats, None);
    }
    for n in [100, 130, 250, 499] {
        assert_eq!(
            p.step(p.leader(n, false), true).heartbeats,
            None,
            "at {n} ms"
        );
    }
    let a = p.step(p.leader(500, false), true);
    assert_eq!(a.heartbeats, Some(false));
    assert!(a.events.contains(&Event::HeartbeatsStopped { term: 3 }));
    assert_eq!(
        p.step(p.leader(530, false), true).heartbeats,
        None,
        "switched once"
    );
}

#[test]
fn heartbeats_resume_once_the_leader_is_leased_again_or_no_longer_leads() {
    let mut p = Peer::new();
    p.step(p.leader(0, false), true);
    assert_eq!(p.step(p.leader(400, false), true).heartbeats, Some(false));
    let a = p.step(p.leader(430, true), true);
    assert_eq!((a.heartbeats, a.events), (Some(true), vec![]));
    p.step(p.leader(460, false), true);
    assert_eq!(p.step(p.leader(860, false), true).heartbeats, Some(false));
    assert_eq!(p.step(p.at(890), true).heartbeats, Some(true));
}

#[test]
fn a_lease_that_holds_again_restarts_the_check_quorum_count() {
    let mut p = Peer::new();
    p.step(p.leader(0, false), true);
    p.step(p.leader(390, true), true);
    for n in [420, 819] {
        assert_eq!(
            p.step(p.leader(n, false), true).heartbeats,
            None,
            "at {n} ms"
        );
    }
    assert_eq!(p.step(p.leader(820, false), true).heartbeats, Some(false));
}

#[test]
fn a_follower_never_stops_heartbeats() {
    let mut p = Peer::new();
    for n in (0..10_000).step_by(5) {
        assert_eq!(p.step(p.at(n), false).heartbeats, None, "at {n} ms");
    }
}

#[test]
fn nothing_is_switched_once_relinquished() {
    let stop = Actions {
        stop: true,
        ..Actions::default()
    };
    // A leader about to be silenced.
    let mut p = Peer::new();
    p.step(p.leader(0, false), true);
    let last = Inputs {
        relinquished: true,
        ..p.leader(400, false)
    };
    assert_eq!(p.step(last, true), stop);
    // A follower about to campaign, and about to switch elections on.
    let mut p = Peer::new();
    assert!(p.campaigns(0..=206, 2).is_empty());
    let last = Inputs {
        relinquished: true,
        ..p.at(246)
    };
    assert_eq!(p.step(last, true), stop);
    // A peer that relinquished during a pre-vote round.
    let mut p = Peer::new();
    p.step(p.at(0), false);
    assert!(p.c.step(&p.at(30)).pre_vote_round);
    let outcome = PreVote {
        granted: true,
        finished: p.t0 + ms(35),
    };
    let last = Inputs {
        relinquished: true,
        pre_vote: Some(outcome),
        ..p.at(30)
    };
    assert_eq!(p.c.step(&last), stop);
}

#[test]
fn the_loop_sleeps_until_the_lease_lapses_as_leader_or_a_fresh_leader_goes_stale_and_5_ms_otherwise(
) {
    let mut p = Peer::new();
    let leased = p.step(p.leader(0, true), true);
    assert_eq!(
        (leased.sleep, leased.on_beat, leased.until_lapse),
        (ms(150), false, true)
    );
    // Unleased, check-quorum counts on the shared beat, in half election timeouts.
    let unleased = p.step(p.leader(1, false), true);
    assert_eq!(
        (unleased.sleep, unleased.on_beat, unleased.until_lapse),
        (ms(100), true, false)
    );
    let fresh = |p: &Peer, n, left| Inputs {
        fresh_leader: Some(ms(left)),
        ..p.at(n)
    };
    assert_eq!(p.step(fresh(&p, 10, 12), true).sleep, ms(12));
    assert_eq!(p.step(fresh(&p, 20, 100), true).sleep, ms(100));
    assert_eq!(p.step(p.at(30), true).sleep, ms(5));
}

#[test]
fn a_witness_that_hears_appends_never_asks_for_pre_votes_nor_campaigns() {
    let mut p = Peer::new();
    p.c = Controller::new(timing(), p.t0).witness();
    for n in 0..4000 {
        // Append-entries (leased or not) keep arriving, every 100 ms.
        let heard = Inputs {
            last_append: p.t0 + ms(n / 100 * 100),
            ..p.at(n)
        };
        let a = p.step(heard, true);
        assert_ne!(a.elections, Some(true), "at {n} ms");
        assert!(!a.campaign, "at {n} ms");
    }
    assert!(p.rounds.is_empty(), "no pre-vote round was asked for");
}

#[test]
fn a_witness_campaigns_as_caretaker_only_after_three_election_timeouts_without_a_leader() {
    // election_max is 200 ms: the application peers had until 600 ms to elect one of them.
    let mut p = Peer::new();
    p.c = Controller::new(timing(), p.t0).witness();
    for n in 0..600 {
        let a = p.step(p.at(n), true);
        assert!(!a.campaign && a.elections != Some(true), "at {n} ms");
    }
    assert!(p.rounds.is_empty(), "no pre-vote round before 600 ms");
    // Refused pre-votes (an application peer's log is as long): no campaign.
    for n in 600..1200 {
        assert!(!p.step(p.at(n), false).campaign, "at {n} ms");
    }
    assert_eq!(p.rounds.first(), Some(&600));
    // Granted: it campaigns like any peer.
    let campaigned = (1200..2000).find(|n| p.step(p.at(*n), true).campaign);
    assert!(campaigned.is_some(), "the caretaker never campaigned");
}

#[test]
fn a_peer_whose_application_is_unhealthy_neither_asks_for_pre_votes_nor_campaigns_until_healthy_again(
) {
    let mut p = Peer::new();
    let unhealthy = |p: &Peer, n| Inputs {
        may_lead: false,
        ..p.at(n)
    };
    for n in 0..2000 {
        let a = p.step(unhealthy(&p, n), true);
        assert_ne!(a.elections, Some(true), "at {n} ms");
        assert!(!a.campaign, "at {n} ms");
    }
    assert!(p.rounds.is_empty(), "no pre-vote round was asked for");
    // Healthy again: it asks, is granted, and campaigns.
    let campaigned = (2000..4000).any(|n| p.step(p.at(n), true).campaign);
    assert!(campaigned, "a healthy peer campaigns again");
}
