//! Push instead of poll (issue 13, sections 1 and 2): nais/elector's `GET /` and `/sse`,
//! `/v1/leader/events` and the blocking `GET /v1/leader?wait=&term=`, on real peers over real
//! sockets: the current state at once, the next leader after kill -9 and after a hand-off, a
//! `Last-Event-ID` reconnect, the stream bound, and clients that never read.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use testkit::sse::{Event, Stream};
use testkit::{Ask, Cluster};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::spec;

const AGREE: Duration = Duration::from_secs(10);
const OPEN: Duration = Duration::from_secs(5);
/// A new leader is elected and pushed well within this after the old one is gone.
const FAILOVER: Duration = Duration::from_secs(10);

fn name_of(e: &Event) -> String {
    e.json()["name"].as_str().unwrap_or_default().to_string()
}

async fn open(c: &Cluster, i: usize, path: &str, last_id: Option<&str>) -> Stream {
    let (status, s) = Stream::open(c.peers[i].http, path, last_id, OPEN)
        .await
        .unwrap_or_else(|| panic!("{path} on peer {i} answered nothing"));
    assert_eq!(status, 200, "{path} on peer {i}");
    s
}

/// The stream's first event, which comes at once; if it names nobody, the next that names
/// someone.
async fn named_at_once(s: &mut Stream, path: &str) -> Event {
    let first = s
        .next(OPEN)
        .await
        .unwrap_or_else(|| panic!("{path}: no event at once"));
    if !name_of(&first).is_empty() {
        return first;
    }
    let (named, _) = s.until(AGREE, |e| !name_of(e).is_empty()).await;
    named.unwrap_or_else(|| panic!("{path}: nobody named again"))
}

/// How the leader is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    Kill,
    Pause,
    HandOff,
}

/// On a follower: `/sse` and `/v1/leader/events` name the leader at once, and a new leader
/// (another name, non-empty) after the leader is lost as `loss` says.
async fn streams_follow_a_change(c: &mut Cluster, loss: Loss) {
    let (leader, term) = c.agreed_leader(&[0, 1, 2], AGREE).await;
    let watcher = (leader + 1) % 3;
    let leader_name = c.peers[leader].name.clone();
    let mut compat = open(c, watcher, "/sse", None).await;
    let mut events = open(c, watcher, "/v1/leader/events", None).await;
    // The current state comes at once. On a loaded machine a follower's lease on the leader
    // may lapse between the agreement and the connect: it then names nobody (never a stale
    // name) until the next heartbeat, so the leader's name may come one event later.
    let first = named_at_once(&mut compat, "/sse").await;
    assert_eq!(name_of(&first), leader_name);
    assert!(first.json()["last_update"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let first = named_at_once(&mut events, "/v1/leader/events").await;
    assert_eq!(name_of(&first), leader_name);
    assert_eq!(first.id.as_deref(), Some(term.to_string().as_str()));
    assert_eq!(first.json()["term"], term);

    let lost = Instant::now();
    match loss {
        Loss::Kill => c.kill(leader),
        Loss::Pause => c.procs.pause(leader),
        Loss::HandOff => {
            c.stop(leader).await;
        }
    }
    let new = |e: &Event| !name_of(e).is_empty() && name_of(e) != leader_name;
    let (next, before) = compat.until(FAILOVER, new).await;
    let next = next.unwrap_or_else(|| panic!("/sse: no new leader; events: {before:?}"));
    // nais/elector's stream has one event per change of name, so never the same name twice.
    let mut names: Vec<String> = before.iter().map(name_of).collect();
    names.insert(0, leader_name.clone());
    names.push(name_of(&next));
    assert!(names.windows(2).all(|w| w[0] != w[1]), "{names:?}");
    let (ev, _) = events.until(FAILOVER, new).await;
    let ev = ev.expect("/v1/leader/events: the new leader");
    let new_term = ev.json()["term"].as_u64().expect("term");
    assert!(new_term > term, "{ev:?}");
    assert_eq!(ev.id, Some(new_term.to_string()));
    assert_eq!(name_of(&ev), name_of(&next));
    let among: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let (agreed, _) = c.new_leader(&among, AGREE, term).await;
    let agreed_name = c.peers[agreed].name.clone();
    if agreed_name != name_of(&next) {
        // On a loaded machine the first new leader may already have been replaced by the time
        // the survivors agree: the stream then pushes that change too.
        let (later, seen) = compat.until(FAILOVER, |e| name_of(e) == agreed_name).await;
        assert!(
            later.is_some(),
            "/sse pushed {} but never the agreed {agreed_name}: {seen:?}",
            name_of(&next)
        );
    }
    eprintln!("new leader pushed {:?} after {loss:?}", lost.elapsed());
    if loss == Loss::Pause {
        c.procs.resume(leader);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_push_the_leader_at_once_and_the_next_after_kill_9() {
    let mut c = Cluster::start(spec(3));
    streams_follow_a_change(&mut c, Loss::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_push_the_next_leader_after_sigstop_of_the_leader() {
    let mut c = Cluster::start(spec(3));
    streams_follow_a_change(&mut c, Loss::Pause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_push_the_next_leader_after_a_hand_off_by_sigterm() {
    let mut c = Cluster::start(spec(3));
    streams_follow_a_change(&mut c, Loss::HandOff).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_answers_nais_elector_shape_uncached() {
    let c = Cluster::start(spec(3));
    let (leader, _) = c.agreed_leader(&[0, 1, 2], AGREE).await;
    let resp = c
        .client
        .get(format!("http://{}/", c.peers[0].http))
        .send()
        .await
        .expect("GET /");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["name"], c.peers[leader].name.as_str());
    assert!(
        body["last_update"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    // The old sidecar's answer on any other path is unchanged.
    let (_, old) = c.get(0, "/whatever").await.expect("compat");
    let old: serde_json::Value = serde_json::from_str(&old).expect("json");
    assert_eq!(old, serde_json::json!({ "name": c.peers[leader].name }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_last_event_id_gets_the_current_state_at_once() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], AGREE).await;
    let watcher = (leader + 1) % 3;
    let mut s = open(&c, watcher, "/v1/leader/events", None).await;
    let seen = s.next(OPEN).await.expect("first event");
    drop(s);
    c.kill(leader);
    let among: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let (new, new_term) = c.new_leader(&among, AGREE, term).await;
    let mut s = open(&c, watcher, "/v1/leader/events", seen.id.as_deref()).await;
    let now = named_at_once(&mut s, "/v1/leader/events after a reconnect").await;
    assert_eq!(name_of(&now), c.peers[new].name);
    assert_eq!(now.id, Some(new_term.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_answers_unchanged_after_wait_and_early_on_a_change() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c
        .settled_leader(&[0, 1, 2], Duration::from_millis(500), AGREE)
        .await;
    let watcher = (leader + 1) % 3;
    let addr = c.peers[watcher].http;
    let name = c.peers[leader].name.clone();

    let started = Instant::now();
    let (status, body) = c
        .get(
            watcher,
            &format!("/v1/leader?wait=300ms&term={term}&name={name}"),
        )
        .await
        .expect("unchanged answer");
    assert!(started.elapsed() >= Duration::from_millis(300), "{body}");
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (body["name"].as_str(), body["term"].as_u64()),
        (Some(name.as_str()), Some(term))
    );

    // A term the caller is behind on: at once.
    let started = Instant::now();
    let (status, _) = c
        .get(watcher, &format!("/v1/leader?wait=1m&term={}", term - 1))
        .await
        .expect("answer");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));

    let client = testkit::http::client(Duration::from_secs(90));
    let path = format!("http://{addr}/v1/leader?wait=1m&term={term}");
    let polling = tokio::spawn(async move {
        let resp = client.get(path).send().await.expect("long-poll");
        (resp.text().await.expect("body"), Instant::now())
    });
    // The query is waiting when it has not answered for a while (no sleep-and-hope: we check).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !polling.is_finished(),
        "the blocking query answered before any change"
    );
    let killed = Instant::now();
    c.kill(leader);
    let (text, answered) = tokio::time::timeout(FAILOVER, polling)
        .await
        .expect("the blocking query answered on the change")
        .expect("task");
    let body: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert!(
        body["term"].as_u64() != Some(term) || body["name"] != name.as_str(),
        "{body}"
    );
    eprintln!(
        "blocking query answered {:?} after kill -9",
        answered - killed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_wait_or_term_is_a_400_with_a_clear_message() {
    let c = Cluster::start(spec(1));
    c.agreed_leader(&[0], AGREE).await;
    for path in [
        "/v1/leader?wait=soon",
        "/v1/leader?wait=1s&term=x",
        "/v1/leader?term=-2",
    ] {
        let (status, body) = c.get(0, path).await.expect("answer");
        assert_eq!(status, 400, "{path}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("bad ")),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_max_streams_get_503_and_a_closed_one_frees_its_slot() {
    let mut s = spec(1);
    s.flags = vec!["--max-streams".into(), "2".into()];
    let c = Cluster::start(s);
    c.agreed_leader(&[0], AGREE).await;
    let a = open(&c, 0, "/sse", None).await;
    let _b = open(&c, 0, "/v1/leader/events", None).await;
    let (status, _) = Stream::open(c.peers[0].http, "/sse", None, OPEN)
        .await
        .expect("answer");
    assert_eq!(status, 503);
    let (status, body) = c.get(0, "/v1/leader?wait=1s&term=1").await.expect("answer");
    assert_eq!(status, 503, "{body}");
    assert_eq!(c.get(0, "/v1/leader").await.expect("plain").0, 200);
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = Stream::open(c.peers[0].http, "/sse", None, OPEN)
            .await
            .expect("answer");
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_and_blocking_queries_end_when_the_peer_stops() {
    let mut c = Cluster::start(spec(1));
    let (_, term) = c.agreed_leader(&[0], AGREE).await;
    let mut s = open(&c, 0, "/v1/leader/events", None).await;
    s.next(OPEN).await.expect("first event");
    let client = testkit::http::client(Duration::from_secs(60));
    let url = format!("http://{}/v1/leader?wait=5m&term={term}", c.peers[0].http);
    let polling = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    // `stop` asserts a clean exit within the shutdown timeout: neither held it.
    let took = c.stop(0).await;
    eprintln!("stopped in {took:?} with a stream and a blocking query open");
    let (last, _) = s.until(OPEN, |_| false).await;
    assert!(last.is_none(), "the stream ended");
    // Answered (the state as the peer stopped) or cut with the connection: never left hanging.
    let answered = tokio::time::timeout(OPEN, polling).await;
    assert!(answered.is_ok(), "the blocking query still hangs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_delay_neither_other_streams_nor_elections() {
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], AGREE).await;
    let watcher = (leader + 1) % 3;
    // Fifty connections that ask for streams and never read a byte.
    let stalled: Vec<_> = (0..50)
        .map(|_| {
            let mut s = testkit::raw::connect(c.peers[watcher].http);
            std::io::Write::write_all(
                &mut s,
                testkit::raw::get_request("/v1/leader/events", "").as_bytes(),
            )
            .expect("send");
            s
        })
        .collect();
    let mut reader = open(&c, watcher, "/sse", None).await;
    reader.next(OPEN).await.expect("the reader's first event");
    let killed = Instant::now();
    c.kill(leader);
    let old = c.peers[leader].name.clone();
    let (next, before) = reader
        .until(FAILOVER, |e| !name_of(e).is_empty() && name_of(e) != old)
        .await;
    assert!(
        next.is_some(),
        "the reading client got no new leader: {before:?}"
    );
    let among: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    c.new_leader(&among, AGREE, term).await;
    eprintln!(
        "with 50 stalled streams, new leader pushed {:?} after kill -9",
        killed.elapsed()
    );
    drop(stalled);
}

/// The venv the tests' Python tools live in (config/kubernetes/validate.sh makes it, with
/// sseclient-py).
pub(crate) fn venv_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(root.join("config/kubernetes/validate.sh"))
        .arg("--install-only")
        .status()
        .expect("run validate.sh --install-only");
    assert!(status.success(), "validate.sh --install-only failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("kubernetes-validate-venv/bin/python")
}

/// sseclient-py reading a stream: one JSON line per event.
struct PyClient {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl PyClient {
    fn start(python: &PathBuf, url: &str, last_id: Option<&str>) -> PyClient {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/push/sse_client.py");
        let mut cmd = tokio::process::Command::new(python);
        cmd.arg(script)
            .arg(url)
            .args(last_id)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start sse_client.py");
        let stdout = child.stdout.take().expect("stdout");
        PyClient {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    async fn next(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .ok()?
            .ok()??;
        serde_json::from_str(&line).ok()
    }

    /// The event's data as JSON.
    async fn event(&mut self, timeout: Duration) -> Option<(Option<String>, serde_json::Value)> {
        let line = self.next(timeout).await?;
        let data = serde_json::from_str(line["data"].as_str()?).ok()?;
        Some((line["id"].as_str().map(str::to_string), data))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_sse_client_library_follows_kill_9_and_reconnects_with_last_event_id() {
    let python = venv_python();
    let mut c = Cluster::start(spec(3));
    let (leader, term) = c.agreed_leader(&[0, 1, 2], AGREE).await;
    let watcher = (leader + 1) % 3;
    let base = format!("http://{}", c.peers[watcher].http);
    let old = c.peers[leader].name.clone();
    let mut compat = PyClient::start(&python, &format!("{base}/sse"), None);
    let mut events = PyClient::start(&python, &format!("{base}/v1/leader/events"), None);
    for client in [&mut compat, &mut events] {
        let status = client
            .next(Duration::from_secs(10))
            .await
            .expect("status line");
        assert_eq!(status["status"], 200);
        let (_, data) = client.event(OPEN).await.expect("the state at once");
        assert_eq!(data["name"], old.as_str());
    }
    c.kill(leader);
    let among: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let (new, new_term) = c.new_leader(&among, AGREE, term).await;
    let new_name = c.peers[new].name.clone();
    let deadline = Instant::now() + FAILOVER;
    let mut ids = vec![term];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (id, data) = events
            .event(left)
            .await
            .expect("events up to the new leader");
        let t = data["term"].as_u64().expect("term");
        assert_eq!(id, Some(t.to_string()));
        ids.push(t);
        if data["name"] == new_name.as_str() && t == new_term {
            break;
        }
    }
    assert!(
        ids.windows(2).all(|w| w[0] <= w[1]),
        "terms went back: {ids:?}"
    );
    let (_, data) = compat
        .event(FAILOVER)
        .await
        .expect("an /sse event after the kill");
    let mut data = data;
    while data["name"] != new_name.as_str() {
        assert_ne!(data["name"], old.as_str(), "the same name twice on /sse");
        data = compat
            .event(FAILOVER)
            .await
            .expect("up to the new leader")
            .1;
    }
    let _ = compat.child.start_kill();
    let _ = events.child.start_kill();
    let mut again = PyClient::start(
        &python,
        &format!("{base}/v1/leader/events"),
        Some(&term.to_string()),
    );
    assert_eq!(
        again.next(Duration::from_secs(10)).await.expect("status")["status"],
        200
    );
    let (id, data) = again.event(OPEN).await.expect("the current state at once");
    assert_eq!(id, Some(new_term.to_string()));
    assert_eq!(data["name"], new_name.as_str());
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The measurement, too heavy for the routine run on a small machine:
/// `PUSH_STREAMS=1000 cargo nextest run --test it --run-ignored only push::many_streams`.
/// Opens `PUSH_STREAMS` (default 1000) reading streams and 10 that never read on one
/// follower, hands leadership over (SIGTERM) and kills leaders in turn, restarting them;
/// every reading stream must see every new leader, no election may start without a loss of
/// the leader, and the follower's memory must come back to about where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: 1,000 streams and repeated failovers"]
async fn many_streams_during_repeated_failovers_each_get_every_new_leader() {
    let n: usize = std::env::var("PUSH_STREAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut s = spec(5);
    s.flags = vec!["--max-streams".into(), (n + 100).to_string()];
    let mut c = Cluster::start(s);
    let (mut leader, mut term) = c.agreed_leader(&[0, 1, 2, 3, 4], AGREE).await;
    let watcher = (leader + 1) % 5;
    let pid = c.pid(watcher).expect("pid");
    let rss_before = rss_kib(pid);
    let _stalled: Vec<_> = (0..10)
        .map(|_| {
            let mut s = testkit::raw::connect(c.peers[watcher].http);
            std::io::Write::write_all(
                &mut s,
                testkit::raw::get_request("/v1/leader/events", "").as_bytes(),
            )
            .expect("send");
            s
        })
        .collect();
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = open(&c, watcher, "/v1/leader/events", None).await;
        s.next(OPEN).await.expect("first event");
        streams.push(s);
    }
    let rss_open = rss_kib(pid);
    let elections_before = c
        .metric(watcher, "raft_elector_elections_started_total")
        .await
        .unwrap_or(0.0);
    let mut losses = 0;
    for round in 0..4 {
        let old = c.peers[leader].name.clone();
        if round % 2 == 0 {
            c.stop(leader).await;
        } else {
            c.kill(leader);
        }
        losses += 1;
        let among: Vec<usize> = (0..5).filter(|i| *i != leader).collect();
        let (new, new_term) = c.new_leader(&among, AGREE, term).await;
        let want = c.peers[new].name.clone();
        let readers = streams.iter_mut().map(|s| {
            let want = want.clone();
            let old = old.clone();
            async move {
                s.until(FAILOVER, |e| {
                    name_of(e) == want && e.json()["term"] == new_term
                })
                .await
                .0
                .is_some()
                    || panic!("a stream never saw {want} after {old}")
            }
        });
        futures::future::join_all(readers).await;
        c.spawn(leader);
        leader = new;
        term = new_term;
        eprintln!("round {round}: {n} streams saw {want} (term {term})");
        if leader == watcher {
            break;
        }
    }
    let elections = c
        .metric(watcher, "raft_elector_elections_started_total")
        .await
        .unwrap_or(0.0)
        - elections_before;
    drop(streams);
    let rss_after = rss_kib(pid);
    eprintln!(
        "RSS of the follower: {rss_before} KiB before, {rss_open} KiB with {n} streams, {rss_after} KiB after closing them; elections it started: {elections} in {losses} losses"
    );
    assert!(
        elections <= losses as f64 * 3.0,
        "spurious elections: {elections}"
    );
}
