//! The clients: one task per peer asks `GET /v1/leader` every few milliseconds and records
//! each answer with the time its request was sent and the time the answer was read; another,
//! slower task per peer reads the term from `/metrics`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::history::{Answer, Clock, Failure, TermSample, UNKNOWN_PEER};

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
        tasks.push(tokio::spawn(poll_leader(
            rec.clone(),
            peer,
            *addr,
            interval,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(poll_term(
            rec.clone(),
            peer,
            *addr,
            Duration::from_millis(100),
            stop.clone(),
        )));
    }
    tasks
}

async fn poll_leader(
    rec: Arc<Recorder>,
    peer: usize,
    addr: SocketAddr,
    interval: Duration,
    stop: CancellationToken,
) {
    let client = http_client();
    let url = format!("http://{addr}/v1/leader");
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let sent = rec.clock.now();
        let body = async {
            let resp = client.get(&url).send().await.ok()?;
            let bytes = resp.bytes().await.ok()?;
            testkit::Answer::parse(&bytes)
        };
        let body = tokio::select! {
            _ = stop.cancelled() => return,
            b = body => b,
        };
        let received = rec.clock.now();
        match body {
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
        }
    }
}

/// The value of `raft_elector_term` in a metrics text.
fn term_metric(text: &str) -> Option<u64> {
    testkit::metric(text, "raft_elector_term").map(|v| v as u64)
}

async fn poll_term(
    rec: Arc<Recorder>,
    peer: usize,
    addr: SocketAddr,
    interval: Duration,
    stop: CancellationToken,
) {
    let client = http_client();
    let url = format!("http://{addr}/metrics");
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let sent = rec.clock.now();
        let text = async {
            let resp = client.get(&url).send().await.ok()?;
            resp.text().await.ok()
        };
        let text = tokio::select! {
            _ = stop.cancelled() => return,
            t = text => t,
        };
        let received = rec.clock.now();
        if let Some(term) = text.as_deref().and_then(term_metric) {
            lock(&rec.terms).push(TermSample {
                peer,
                sent,
                received,
                term,
            });
        }
    }
}
