//! "Do these peers agree on a leader?": the one rule every suite and the benchmark apply to the
//! answers of `GET /v1/leader`, and the waiting for it, whatever runs the peers.

use std::time::{Duration, Instant};

use crate::answer::Answer;

/// The leader that the `answers` of the peers `among` (by index into `names`) agree on: all
/// name the same leader with the same term, exactly that leader says it leads, and the leader
/// is one of `among`. Returns its index and the term.
pub fn agreement<S: AsRef<str>>(
    names: &[S],
    among: &[usize],
    answers: &[Option<Answer>],
) -> Option<(usize, u64)> {
    let first = answers.first()?.as_ref()?;
    if first.name.is_empty() {
        return None;
    }
    let leader = names.iter().position(|n| n.as_ref() == first.name)?;
    for (&i, a) in among.iter().zip(answers) {
        let a = a.as_ref()?;
        if a.name != first.name || a.term != first.term || a.is_leader != (i == leader) {
            return None;
        }
    }
    among.contains(&leader).then_some((leader, first.term))
}

/// An agreed leader: its index, its term and when the agreement was seen.
#[derive(Debug, Clone, Copy)]
pub struct Agreed {
    pub leader: usize,
    pub term: u64,
    pub at: Instant,
}

/// Whatever can ask its peers who leads: processes, containers, a compose project.
#[allow(async_fn_in_trait)]
pub trait Ask {
    /// The peers' names, by index.
    fn names(&self) -> Vec<String>;
    /// Asks peer `i` who leads; `None` if it cannot be reached or breaks the contract.
    async fn ask(&self, i: usize) -> Option<Answer>;
    /// How long to wait between two rounds of questions.
    fn poll(&self) -> Duration {
        Duration::from_millis(10)
    }

    /// Every peer's index.
    fn all(&self) -> Vec<usize> {
        (0..self.names().len()).collect()
    }

    /// Every peer's index but `i`.
    fn all_but(&self, i: usize) -> Vec<usize> {
        (0..self.names().len()).filter(|&j| j != i).collect()
    }

    /// Asks the peers `among` at once.
    async fn ask_all(&self, among: &[usize]) -> Vec<Option<Answer>> {
        futures::future::join_all(among.iter().map(|&i| self.ask(i))).await
    }

    /// Asks `among` until they agree on a leader that `accept(leader, term)` takes; at the
    /// deadline, the last answers.
    async fn agreed_where(
        &self,
        among: &[usize],
        timeout: Duration,
        accept: impl Fn(usize, u64) -> bool,
    ) -> Result<Agreed, Vec<Option<Answer>>> {
        let names = self.names();
        let deadline = Instant::now() + timeout;
        loop {
            let answers = self.ask_all(among).await;
            let at = Instant::now();
            if let Some((leader, term)) = agreement(&names, among, &answers) {
                if accept(leader, term) {
                    return Ok(Agreed { leader, term, at });
                }
            }
            if at >= deadline {
                return Err(answers);
            }
            tokio::time::sleep(self.poll()).await;
        }
    }

    /// Asks `among` until they agree on a leader, with when that was seen; `None` at the
    /// deadline.
    async fn agreed(&self, among: &[usize], timeout: Duration) -> Option<Agreed> {
        self.agreed_where(among, timeout, |_, _| true).await.ok()
    }

    /// Waits until the peers `among` agree on a leader that `accept(leader, term)` takes;
    /// returns its index and the term. Panics at the deadline, with the last answers.
    async fn agreed_leader_where(
        &self,
        among: &[usize],
        timeout: Duration,
        accept: impl Fn(usize, u64) -> bool,
    ) -> (usize, u64) {
        match self.agreed_where(among, timeout, accept).await {
            Ok(a) => (a.leader, a.term),
            Err(last) => panic!(
                "no (acceptable) agreed leader among {among:?} within {timeout:?}; last answers: {last:?}"
            ),
        }
    }

    /// Waits until the peers `among` agree on a leader with a term above `term` (a new
    /// leadership); returns its index and term. Panics at the deadline, with the last answers.
    async fn new_leader(&self, among: &[usize], timeout: Duration, term: u64) -> (usize, u64) {
        self.agreed_leader_where(among, timeout, |_, t| t > term)
            .await
    }

    /// Waits until the peers `among` agree on a leader; returns its index and the term.
    /// Panics at the deadline, with the last answers.
    async fn agreed_leader(&self, among: &[usize], timeout: Duration) -> (usize, u64) {
        self.agreed_leader_where(among, timeout, |_, _| true).await
    }

    /// Waits until the peers `among` have agreed on one leader and term, round after round
    /// without a break, for `held` (a leadership past its first moments); returns its index
    /// and the term. Panics at the deadline, with the last answers.
    async fn settled_leader(
        &self,
        among: &[usize],
        held: Duration,
        timeout: Duration,
    ) -> (usize, u64) {
        let names = self.names();
        let deadline = Instant::now() + timeout;
        let mut since: Option<Agreed> = None;
        loop {
            let answers = self.ask_all(among).await;
            let at = Instant::now();
            match (agreement(&names, among, &answers), since) {
                (Some(now), Some(s)) if now == (s.leader, s.term) => {
                    if at >= s.at + held {
                        return now;
                    }
                }
                (Some((leader, term)), _) => since = Some(Agreed { leader, term, at }),
                (None, _) => since = None,
            }
            assert!(
                at < deadline,
                "no leader agreed on among {among:?} for {held:?} within {timeout:?}; last answers: {answers:?}"
            );
            tokio::time::sleep(self.poll()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Role;

    fn says(name: &str, term: u64, is_leader: bool) -> Option<Answer> {
        Some(Answer {
            name: name.into(),
            term,
            is_leader,
            id: String::new(),
            election: "e".into(),
            role: if is_leader {
                Role::Leader
            } else {
                Role::Follower
            },
            valid_ms: 100,
            voters: 3,
            app_healthy: None,
        })
    }

    const NAMES: [&str; 3] = ["a", "b", "c"];

    #[test]
    fn all_name_the_leader_in_one_term_and_only_it_claims() {
        let answers = [says("b", 3, false), says("b", 3, true), says("b", 3, false)];
        assert_eq!(agreement(&NAMES, &[0, 1, 2], &answers), Some((1, 3)));
        // Among a subset, in the order asked.
        let two = [says("c", 4, true), says("c", 4, false)];
        assert_eq!(agreement(&NAMES, &[2, 0], &two), Some((2, 4)));
    }

    #[test]
    fn any_disagreement_is_no_agreement() {
        let cases: [[Option<Answer>; 3]; 6] = [
            [says("b", 3, false), says("b", 4, true), says("b", 3, false)],
            [says("b", 3, false), says("b", 3, true), says("a", 3, false)],
            [
                says("b", 3, false),
                says("b", 3, false),
                says("b", 3, false),
            ],
            [says("b", 3, true), says("b", 3, true), says("b", 3, false)],
            [says("b", 3, false), None, says("b", 3, false)],
            [says("", 3, false), says("", 3, false), says("", 3, false)],
        ];
        for answers in cases {
            assert_eq!(agreement(&NAMES, &[0, 1, 2], &answers), None, "{answers:?}");
        }
        // A stranger, or a leader outside the peers asked.
        assert_eq!(agreement(&NAMES, &[0], &[says("z", 1, false)]), None);
        assert_eq!(agreement(&NAMES, &[0], &[says("b", 1, false)]), None);
    }

    /// One peer, "a", whose answer to question `k` is `script[k]` (then the last one again).
    struct Scripted {
        script: Vec<Option<Answer>>,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl Ask for Scripted {
        fn names(&self) -> Vec<String> {
            vec!["a".into()]
        }

        async fn ask(&self, _: usize) -> Option<Answer> {
            let k = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.script[k.min(self.script.len() - 1)].clone()
        }

        fn poll(&self) -> Duration {
            Duration::ZERO
        }
    }

    #[tokio::test]
    async fn a_settled_leader_is_one_agreed_on_without_a_break() {
        let leads = |term| says("a", term, true);
        let peer = Scripted {
            script: vec![leads(1), None, leads(1), leads(2), leads(2), leads(2)],
            asked: Default::default(),
        };
        // The break and the new term each restart the count: the first two rounds in a row
        // that agree on one leadership are the fourth and the fifth.
        let settled = peer
            .settled_leader(&[0], Duration::ZERO, Duration::from_secs(5))
            .await;
        assert_eq!(settled, (0, 2));
        assert_eq!(peer.asked.into_inner(), 5);
    }
}
