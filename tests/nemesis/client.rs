//! The clients: one task per peer asks `GET /v1/leader` every few milliseconds and records
//! each answer with the time its request was sent and the time the answer was read; slower
//! tasks per peer read the term from `/metrics` and the membership from `/v1/members`. The
//! recorder also keeps what the nemesis did to the processes and the membership.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use testkit::http;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::history::{
    Answer, ClaimSample, Clock, Enrolment, Failure, Life, LifeEvent, MembersSample, Micros, Role,
    TermSample, UNKNOWN_PEER,
};

/// What the clients recorded so far, and each peer's newest answer for the nemesis.
pub struct Recorder {
    pub clock: Clock,
    names: Vec<String>,
    answers: Mutex<Vec<Answer>>,
    terms: Mutex<Vec<TermSample>>,
    failures: Mutex<Vec<Failure>>,
    latest: Mutex<Vec<Option<Answer>>>,
    members: Mutex<Vec<MembersSample>>,
    claims: Mutex<Vec<ClaimSample>>,
    latest_members: Mutex<Vec<Option<MembersSample>>>,
    lives: Mutex<Vec<LifeEvent>>,
    enrolments: Mutex<Vec<Enrolment>>,
    /// Whom the nemesis means to be a member now.
    roster: Mutex<Vec<bool>>,
    steps: Mutex<Vec<Micros>>,
}

/// What [`Recorder::take`] hands over at the end of a run.
pub struct Recorded {
    pub answers: Vec<Answer>,
    pub terms: Vec<TermSample>,
    pub failures: Vec<Failure>,
    pub members: Vec<MembersSample>,
    pub claims: Vec<ClaimSample>,
    pub lives: Vec<LifeEvent>,
    pub enrolments: Vec<Enrolment>,
    pub steps: Vec<Micros>,
}

impl Recorder {
    /// A recorder for the peers `names`, of which the first `members` are the first cluster
    /// (the others are spares, not members until the nemesis starts them).
    pub fn new(clock: Clock, names: Vec<String>, members: usize) -> Recorder {
        let n = names.len();
        Recorder {
            clock,
            names,
            answers: Mutex::new(Vec::new()),
            terms: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            latest: Mutex::new(vec![None; n]),
            members: Mutex::new(Vec::new()),
            claims: Mutex::new(Vec::new()),
            latest_members: Mutex::new(vec![None; n]),
            lives: Mutex::new(Vec::new()),
            enrolments: Mutex::new(
                (members..n)
                    .map(|peer| Enrolment {
                        peer,
                        at: 0,
                        member: false,
                    })
                    .collect(),
            ),
            roster: Mutex::new((0..n).map(|i| i < members).collect()),
            steps: Mutex::new(Vec::new()),
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        if name.is_empty() {
            None
        } else {
            Some(
                self.names
                    .iter()
                    .position(|n| n == name)
                    .unwrap_or(UNKNOWN_PEER),
            )
        }
    }

    fn record(&self, a: Answer) {
        lock(&self.latest)[a.peer] = Some(a.clone());
        lock(&self.answers).push(a);
    }

    fn fail(&self, f: Failure) {
        lock(&self.latest)[f.peer] = None;
        lock(&self.failures).push(f);
    }

    /// Every peer's newest answer (`None` after a failed request).
    pub fn latest(&self) -> Vec<Option<Answer>> {
        lock(&self.latest).clone()
    }

    /// Every peer's newest `/v1/members` answer (`None` after a failed request).
    pub fn latest_members(&self) -> Vec<Option<MembersSample>> {
        lock(&self.latest_members).clone()
    }

    /// The nemesis started or ended peer `peer`'s process at `at` (when it acted).
    pub fn life(&self, peer: usize, at: Micros, what: Life) {
        lock(&self.lives).push(LifeEvent { peer, at, what });
    }

    /// The nemesis means `peer` to be a member (it starts a spare or restarts a peer that
    /// left), or not (it stops it with SIGTERM to leave).
    pub fn enrol(&self, peer: usize, member: bool) {
        let at = self.clock.now();
        lock(&self.roster)[peer] = member;
        lock(&self.enrolments).push(Enrolment { peer, at, member });
    }

    /// The peers the nemesis means to be members now.
    pub fn roster(&self) -> Vec<usize> {
        let roster = lock(&self.roster);
        (0..roster.len()).filter(|&i| roster[i]).collect()
    }

    /// A step of a scripted change ended now: from here, the membership must settle on the
    /// roster (rule 11 of the checker, [`crate::history::History::steps`]).
    pub fn step(&self) {
        lock(&self.steps).push(self.clock.now());
    }

    pub fn take(&self) -> Recorded {
        Recorded {
            answers: std::mem::take(&mut *lock(&self.answers)),
            terms: std::mem::take(&mut *lock(&self.terms)),
            failures: std::mem::take(&mut *lock(&self.failures)),
            members: std::mem::take(&mut *lock(&self.members)),
            claims: std::mem::take(&mut *lock(&self.claims)),
            lives: {
                let mut lives = std::mem::take(&mut *lock(&self.lives));
                lives.sort_by_key(|l| l.at);
                lives
            },
            enrolments: std::mem::take(&mut *lock(&self.enrolments)),
            steps: std::mem::take(&mut *lock(&self.steps)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(2)
        .build()
        .expect("http client")
}

/// How long a client waits before asking again a peer that did not answer and is not meant to
/// run, so that stopped spares cost little.
pub const IDLE: Duration = Duration::from_millis(100);

/// How often each peer's claimers claim the slot of the moment ([`crate::ledger`]).
pub const CLAIM_POLL: Duration = Duration::from_millis(100);

/// Claimers per peer, each with a connection of its own: concurrent claims reach the leader
/// together and share log entries (`Command::Claims`), so faults hit batches too.
pub const CLAIMERS_PER_PEER: usize = 3;

/// How often each peer is asked for its membership.
pub const MEMBERS_POLL: Duration = Duration::from_millis(75);

/// Starts the clients of every peer (with `claims`, the job ledger's claimers too); they stop
/// when `stop` is cancelled.
pub fn start(
    rec: Arc<Recorder>,
    http: &[SocketAddr],
    interval: Duration,
    claims: bool,
    stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (peer, addr) in http.iter().enumerate() {
        let asker = Asker {
            rec: rec.clone(),
            peer,
            addr: *addr,
            stop: stop.clone(),
        };
        tasks.push(tokio::spawn(asker.clone().poll_leader(interval)));
        tasks.push(tokio::spawn(
            asker.clone().poll_term(Duration::from_millis(100)),
        ));
        if claims {
            for _ in 0..CLAIMERS_PER_PEER {
                tasks.push(tokio::spawn(asker.clone().poll_claims(CLAIM_POLL)));
            }
        }
        tasks.push(tokio::spawn(asker.poll_members(MEMBERS_POLL)));
    }
    tasks
}

/// One client of one peer.
#[derive(Clone)]
struct Asker {
    rec: Arc<Recorder>,
    peer: usize,
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Asker {
    /// Every `interval` until stopped: asks `question` and hands its result to `record` with
    /// the times the request was sent and the answer read. A peer that did not answer and is
    /// not meant to run (a spare, a member that left) is asked again only after [`IDLE`].
    async fn every<T, Q: Future<Output = Option<T>>>(
        &self,
        interval: Duration,
        question: impl Fn() -> Q,
        mut record: impl FnMut(Micros, Micros, Option<T>),
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.stop.is_cancelled() {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let sent = self.rec.clock.now();
            let got = tokio::select! {
                _ = self.stop.cancelled() => return,
                got = question() => got,
            };
            let answered = got.is_some();
            record(sent, self.rec.clock.now(), got);
            if !answered && !lock(&self.rec.roster)[self.peer] {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tokio::time::sleep(IDLE) => {}
                }
            }
        }
    }

    async fn poll_leader(self, interval: Duration) {
        let client = http_client();
        let (rec, peer, addr) = (&self.rec, self.peer, self.addr);
        let record = |sent, received, body: Option<testkit::Answer>| match body {
            Some(b) if b.id == rec.names[peer] => rec.record(Answer {
                peer,
                sent,
                received,
                leader: rec.index(&b.name),
                term: b.term,
                is_leader: b.is_leader,
            }),
            // An answer from another process on this port would be a harness bug.
            Some(b) => panic!(
                "{addr} answered as {:?}, expected {}",
                b.id, rec.names[peer]
            ),
            None => rec.fail(Failure {
                peer,
                sent,
                received,
            }),
        };
        self.every(interval, || http::ask(&client, addr), record)
            .await;
    }

    async fn poll_term(self, interval: Duration) {
        let client = http_client();
        let (rec, peer, addr) = (&self.rec, self.peer, self.addr);
        let record = |sent, received, text: Option<(u16, String)>| {
            let term = text.and_then(|(_, text)| testkit::metric(&text, "raft_elector_term"));
            if let Some(term) = term {
                lock(&rec.terms).push(TermSample {
                    peer,
                    sent,
                    received,
                    term: term as u64,
                });
            }
        };
        self.every(interval, || http::get(&client, addr, "/metrics"), record)
            .await;
    }

    /// Claims the slot of the moment; every peer's client claims the same slots.
    async fn poll_claims(self, interval: Duration) {
        let client = testkit::jobs::client();
        let (rec, peer, addr) = (&self.rec, self.peer, self.addr);
        // The slot asked, for `record` (`every` calls the two in turn, never at once).
        let slot = Mutex::new(String::new());
        let question = || {
            let asked = crate::ledger::slot_at(rec.clock.now());
            *lock(&slot) = asked.clone();
            let client = &client;
            async move { testkit::jobs::claim(client, addr, crate::ledger::JOB, &asked).await }
        };
        let record = |sent, received, reply: Option<testkit::jobs::Reply>| {
            let Some(reply) = reply else { return };
            let named = reply.holder_token();
            lock(&rec.claims).push(ClaimSample {
                peer,
                sent,
                received,
                slot: lock(&slot).clone(),
                status: reply.status,
                holder: named.as_ref().and_then(|(h, _)| rec.index(h)),
                token: named.map(|(_, t)| t),
            });
        };
        self.every(interval, question, record).await;
    }

    async fn poll_members(self, interval: Duration) {
        let client = http_client();
        let (rec, peer) = (&self.rec, self.peer);
        let record = |sent, received, text: Option<(u16, String)>| {
            let sample = text
                .filter(|(status, _)| *status == 200)
                .and_then(|(_, body)| parse_members(&body, |name| rec.index(name)));
            match sample {
                Some(Membership {
                    index,
                    joint,
                    applied,
                    members,
                }) => {
                    let m = MembersSample {
                        peer,
                        sent,
                        received,
                        index,
                        joint,
                        applied,
                        members,
                    };
                    lock(&rec.latest_members)[peer] = Some(m.clone());
                    lock(&rec.members).push(m);
                }
                None => lock(&rec.latest_members)[peer] = None,
            }
        };
        self.every(
            interval,
            || http::get(&client, self.addr, "/v1/members"),
            record,
        )
        .await;
    }
}

/// The `/v1/members` answer as the checker reads it.
#[derive(serde::Deserialize)]
struct MembersBody {
    index: Option<u64>,
    applied: Option<u64>,
    joint: bool,
    members: Vec<MemberBody>,
}

#[derive(serde::Deserialize)]
struct MemberBody {
    id: String,
    role: String,
}

/// A `/v1/members` answer as the checker reads it.
pub struct Membership {
    /// The membership's log index.
    pub index: Option<u64>,
    /// A joint change is under way.
    pub joint: bool,
    /// The last log index the peer applied.
    pub applied: Option<u64>,
    /// Sorted, by peer index ([`UNKNOWN_PEER`] for a stranger).
    pub members: Vec<(usize, Role)>,
}

/// Index, joint flag, applied index and members (by peer index from `index_of`); `None` when
/// the body breaks the contract.
pub fn parse_members(body: &str, index_of: impl Fn(&str) -> Option<usize>) -> Option<Membership> {
    let b: MembersBody = serde_json::from_str(body).ok()?;
    let mut members = Vec::new();
    for m in b.members {
        let role = match m.role.as_str() {
            "voter" | "witness" => Role::Voter,
            "learner" => Role::Learner,
            _ => return None,
        };
        members.push((index_of(&m.id).unwrap_or(UNKNOWN_PEER), role));
    }
    members.sort();
    Some(Membership {
        index: b.index,
        joint: b.joint,
        applied: b.applied,
        members,
    })
}
