//! The clients: one task per peer asks `GET /v1/leader` every few milliseconds and records
//! each answer with the time its request was sent and the time the answer was read; another,
//! slower task per peer reads the term from `/metrics`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use testkit::http;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::history::{Answer, Clock, Failure, Micros, TermSample, UNKNOWN_PEER};

/// What the clients recorded so far, and each peer's newest answer for the nemesis.
pub struct Recorder {
    pub clock: Clock,
    names: Vec<String>,
    answers: Mutex<Vec<Answer>>,
    terms: Mutex<Vec<TermSample>>,
    failures: Mutex<Vec<Failure>>,
    latest: Mutex<Vec<Option<Answer>>>,
}

impl Recorder {
    pub fn new(clock: Clock, names: Vec<String>) -> Recorder {
        let n = names.len();
        Recorder {
            clock,
            names,
            answers: Mutex::new(Vec::new()),
            terms: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            latest: Mutex::new(vec![None; n]),
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

    pub fn take(&self) -> (Vec<Answer>, Vec<TermSample>, Vec<Failure>) {
        (
            std::mem::take(&mut *lock(&self.answers)),
            std::mem::take(&mut *lock(&self.terms)),
            std::mem::take(&mut *lock(&self.failures)),
        )
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

/// Starts the clients of every peer; they stop when `stop` is cancelled.
pub fn start(
    rec: Arc<Recorder>,
    http: &[SocketAddr],
    interval: Duration,
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
        tasks.push(tokio::spawn(asker.poll_term(Duration::from_millis(100))));
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
    /// the times the request was sent and the answer read.
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
            record(sent, self.rec.clock.now(), got);
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
}
