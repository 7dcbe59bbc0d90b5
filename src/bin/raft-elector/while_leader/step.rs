//! The decision of `while-leader`, as a pure step: what the local peer last said (and when it
//! was asked), the time, and the child's state in; start, stop or nothing out. No clock, no
//! I/O: the loop in `mod.rs` passes the time and carries the decision out.

use std::time::{Duration, Instant};

/// One answer of the local peer's `GET /v1/leader`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// When the request was SENT: the lease the answer reports runs from no later than this.
    pub sent: Instant,
    pub is_leader: bool,
    pub term: u64,
    pub name: String,
    /// How long, at most, the answer stays true.
    pub valid: Duration,
}

/// Why the child is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The local peer says it no longer leads.
    Lost,
    /// The local peer did not confirm its leadership before the lease it last reported ran
    /// out (it is paused, crashed or unreachable).
    NotConfirmed,
    /// The local peer leads a newer term: the child runs again with the new fencing token.
    TermChanged,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Lost => "leadership lost",
            Reason::NotConfirmed => "leadership not confirmed before the lease ran out",
            Reason::TermChanged => "a new term",
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    /// Start the child for this leadership.
    Start {
        term: u64,
        leader: String,
    },
    /// Stop the child.
    Stop(Reason),
}

/// The state: the leadership the child runs for, and until when it is confirmed.
#[derive(Debug, Default)]
pub struct Gate {
    /// The term the child runs for (`None`: no child).
    running: Option<u64>,
    /// The end of the lease the local peer last reported while leading.
    confirmed_until: Option<Instant>,
    /// No start before this (after a child that ended by itself).
    not_before: Option<Instant>,
}

impl Gate {
    /// A new answer (`None`: the peer could not be asked, which confirms nothing).
    pub fn observe(&mut self, now: Instant, answer: Option<&Answer>) -> Decision {
        if let Some(a) = answer {
            if a.is_leader && a.valid > Duration::ZERO {
                let until = a.sent + a.valid;
                self.confirmed_until = Some(self.confirmed_until.map_or(until, |u| u.max(until)));
                if self.running.is_some_and(|t| t != a.term) {
                    return self.stop(Reason::TermChanged);
                }
            } else {
                self.confirmed_until = None;
                if self.running.is_some() {
                    return self.stop(Reason::Lost);
                }
            }
        }
        if let Some(d) = self.expired(now) {
            return d;
        }
        match answer {
            Some(a)
                if a.is_leader
                    && self.running.is_none()
                    && self.not_before.is_none_or(|t| now >= t)
                    && self.confirmed_until.is_some_and(|u| now < u) =>
            {
                self.running = Some(a.term);
                Decision::Start {
                    term: a.term,
                    leader: a.name.clone(),
                }
            }
            _ => Decision::Nothing,
        }
    }

    /// The time passed: stop a child whose leadership was not confirmed in time.
    pub fn tick(&mut self, now: Instant) -> Decision {
        self.expired(now).unwrap_or(Decision::Nothing)
    }

    fn expired(&mut self, now: Instant) -> Option<Decision> {
        let running = self.running.is_some();
        let lapsed = self.confirmed_until.is_none_or(|u| now >= u);
        (running && lapsed).then(|| {
            self.confirmed_until = None;
            self.stop(Reason::NotConfirmed)
        })
    }

    fn stop(&mut self, why: Reason) -> Decision {
        self.running = None;
        Decision::Stop(why)
    }

    /// The child ended by itself: it may start again, not before `again`.
    pub fn child_ended(&mut self, again: Instant) {
        self.running = None;
        self.not_before = Some(again);
    }

    /// When the loop must look again at the latest (the lease's end while a child runs).
    pub fn deadline(&self) -> Option<Instant> {
        self.running.and(self.confirmed_until)
    }

    pub fn running(&self) -> Option<u64> {
        self.running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn leading(sent: Instant, term: u64) -> Answer {
        Answer {
            sent,
            is_leader: true,
            term,
            name: "web-0".into(),
            valid: ms(150),
        }
    }

    fn following(sent: Instant, term: u64) -> Answer {
        Answer {
            is_leader: false,
            name: "web-1".into(),
            ..leading(sent, term)
        }
    }

    #[test]
    fn starts_when_the_peer_leads_and_stops_when_it_says_it_no_longer_does() {
        let t0 = Instant::now();
        let mut g = Gate::default();
        assert_eq!(g.observe(t0, Some(&following(t0, 1))), Decision::Nothing);
        assert_eq!(
            g.observe(t0 + ms(10), Some(&leading(t0 + ms(5), 2))),
            Decision::Start {
                term: 2,
                leader: "web-0".into()
            }
        );
        assert_eq!(
            g.observe(t0 + ms(60), Some(&leading(t0 + ms(55), 2))),
            Decision::Nothing
        );
        assert_eq!(
            g.observe(t0 + ms(110), Some(&following(t0 + ms(105), 3))),
            Decision::Stop(Reason::Lost)
        );
        assert_eq!(g.running(), None);
    }

    #[test]
    fn a_leadership_not_confirmed_before_its_lease_ends_stops_the_child_at_that_moment() {
        let t0 = Instant::now();
        let mut g = Gate::default();
        g.observe(t0, Some(&leading(t0, 2)));
        // The peer stops answering (paused, killed): nothing confirms the lease.
        assert_eq!(g.observe(t0 + ms(50), None), Decision::Nothing);
        assert_eq!(g.deadline(), Some(t0 + ms(150)));
        assert_eq!(g.tick(t0 + ms(149)), Decision::Nothing);
        assert_eq!(g.tick(t0 + ms(150)), Decision::Stop(Reason::NotConfirmed));
        // An answer sent before the lease ran out but arriving after it: the lease it reports
        // runs from its sending, so it may restart the child only while that lease holds.
        assert_eq!(
            g.observe(t0 + ms(400), Some(&leading(t0 + ms(200), 2))),
            Decision::Nothing
        );
    }

    #[test]
    fn a_new_term_restarts_the_child_with_the_new_token() {
        let t0 = Instant::now();
        let mut g = Gate::default();
        g.observe(t0, Some(&leading(t0, 2)));
        assert_eq!(
            g.observe(t0 + ms(50), Some(&leading(t0 + ms(50), 4))),
            Decision::Stop(Reason::TermChanged)
        );
        assert_eq!(
            g.observe(t0 + ms(60), Some(&leading(t0 + ms(60), 4))),
            Decision::Start {
                term: 4,
                leader: "web-0".into()
            }
        );
    }

    #[test]
    fn a_child_that_ended_by_itself_starts_again_only_after_the_pause() {
        let t0 = Instant::now();
        let mut g = Gate::default();
        g.observe(t0, Some(&leading(t0, 2)));
        g.child_ended(t0 + ms(1000));
        assert_eq!(
            g.observe(t0 + ms(100), Some(&leading(t0 + ms(100), 2))),
            Decision::Nothing
        );
        assert!(matches!(
            g.observe(t0 + ms(1000), Some(&leading(t0 + ms(1000), 2))),
            Decision::Start { term: 2, .. }
        ));
    }

    #[test]
    fn an_unreachable_peer_starts_nothing() {
        let t0 = Instant::now();
        let mut g = Gate::default();
        for n in 0..10 {
            assert_eq!(g.observe(t0 + ms(n * 50), None), Decision::Nothing);
        }
        assert_eq!(g.deadline(), None);
    }
}
