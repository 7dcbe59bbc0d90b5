//! The schedule mode (issue 14 §2): the leader fires an every-second job at its own pod's
//! application, through kill -9, SIGSTOP and SIGTERM of the leader and a restart of the whole
//! cluster; each catch-up and on-lost policy does what it says. The applications are one
//! recording HTTP server in the test, a path per peer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Timelike;
use nix::sys::signal::Signal;
use testkit::{jobs, Ask, Cluster};

use crate::spec;

const STEP: Duration = Duration::from_secs(15);

/// One request the application got.
#[derive(Debug, Clone)]
struct Run {
    peer: String,
    slot: String,
    token: u64,
}

/// What the applications got, and whether the next run should hang (to be killed mid-run).
#[derive(Default)]
struct App {
    runs: Mutex<Vec<Run>>,
    hang_next: Mutex<bool>,
}

impl App {
    fn runs(&self) -> Vec<Run> {
        self.runs.lock().expect("lock").clone()
    }

    /// Runs per slot.
    fn per_slot(&self) -> BTreeMap<String, Vec<Run>> {
        let mut m: BTreeMap<String, Vec<Run>> = BTreeMap::new();
        for r in self.runs() {
            m.entry(r.slot.clone()).or_default().push(r);
        }
        m
    }
}

async fn job(
    State(app): State<Arc<App>>,
    Path(peer): Path<String>,
    headers: HeaderMap,
) -> StatusCode {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(h("raft-elector-job"), "tick");
    let run = Run {
        peer,
        slot: h("raft-elector-slot"),
        token: h("raft-elector-token").parse().unwrap_or(0),
    };
    app.runs.lock().expect("lock").push(run);
    let hang = std::mem::take(&mut *app.hang_next.lock().expect("lock"));
    if hang {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    StatusCode::NO_CONTENT
}

/// Starts the recording application; returns its address.
async fn application(app: Arc<App>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new()
        .route("/jobs/{peer}", post(job))
        .with_state(app);
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Three peers with an every-second job `tick` POSTed to the application, and `flags`.
async fn cluster(app: &Arc<App>, flags: &[&str]) -> Cluster {
    cluster_with(app, "* * * * * *", flags).await
}

/// Three peers with job `tick` at `cron` POSTed to the application, and `flags`.
async fn cluster_with(app: &Arc<App>, cron: &str, flags: &[&str]) -> Cluster {
    let addr = application(app.clone()).await;
    let mut s = spec(3);
    s.flags.extend([
        "--job".into(),
        format!("tick={cron}"),
        "--job-timeout".into(),
        "2s".into(),
    ]);
    s.flags.extend(flags.iter().map(|f| f.to_string()));
    let mut c = Cluster::new(s);
    for p in &mut c.peers {
        let url = format!("tick=http://{addr}/jobs/{}", p.name);
        p.extra.extend(["--job-url".into(), url]);
    }
    c.spawn_all();
    c.agreed_leader(&c.all(), STEP).await;
    c
}

/// Waits until the application got `n` more runs than `before`.
async fn runs_reach(app: &App, n: usize) {
    let deadline = Instant::now() + STEP;
    while app.runs().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} runs, waited for {n}",
            app.runs().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The job's ledger on peer `i`: slot → (outcome, token).
async fn ledger(c: &Cluster, i: usize) -> BTreeMap<String, (String, u64)> {
    let (status, body) = jobs::ledger(&jobs::client(), c.peers[i].http, "tick")
        .await
        .expect("ledger");
    assert_eq!(status, 200, "{body}");
    body["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| {
            let slot = s["slot"].as_str().expect("slot").to_string();
            let outcome = s["outcome"].as_str().expect("outcome").to_string();
            (slot, (outcome, s["token"].as_u64().expect("token")))
        })
        .collect()
}

/// Every fire time from `from` to `to` (inclusive), as slot keys.
fn seconds(from: &str, to: &str) -> Vec<String> {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("slot")
            .timestamp()
    };
    (parse(from)..=parse(to))
        .map(|t| {
            chrono::DateTime::from_timestamp(t, 0)
                .expect("time")
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_catch_up_all_every_slot_runs_once_through_kill_pause_sigterm_and_a_full_restart() {
    let app = Arc::new(App::default());
    let mut c = cluster(&app, &["--job-catch-up", "all", "--job-deadline", "1m"]).await;
    runs_reach(&app, 2).await;
    let (leader, term) = c.agreed_leader(&c.all(), STEP).await;
    c.kill(leader);
    let (paused, term) = c.new_leader(&c.all_but(leader), STEP, term).await;
    c.spawn(leader);
    let n = app.runs().len();
    runs_reach(&app, n + 2).await;
    c.signal(paused, Signal::SIGSTOP);
    let (stopper, term) = c.new_leader(&c.all_but(paused), STEP, term).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.signal(paused, Signal::SIGCONT);
    let n = app.runs().len();
    runs_reach(&app, n + 2).await;
    c.stop(stopper).await;
    c.new_leader(&c.all_but(stopper), STEP, term).await;
    c.spawn(stopper);
    let n = app.runs().len();
    runs_reach(&app, n + 2).await;
    // The whole cluster down for about 3 s: those slots are caught up afterwards.
    for i in c.all() {
        c.kill(i);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.spawn_all();
    c.agreed_leader(&c.all(), STEP).await;
    let n = app.runs().len();
    runs_reach(&app, n + 6).await;
    let (leader, _) = c.agreed_leader(&c.all(), STEP).await;

    let per_slot = app.per_slot();
    let twice: Vec<_> = per_slot.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(twice.is_empty(), "slots run more than once: {twice:?}");
    let ledger = ledger(&c, leader).await;
    let first = per_slot.keys().next().expect("a run").clone();
    let last = per_slot.keys().next_back().expect("a run").clone();
    let mut gaps = Vec::new();
    for slot in seconds(&first, &last) {
        let ran = per_slot.contains_key(&slot);
        let outcome = ledger.get(&slot).map(|(o, _)| o.as_str());
        // A slot claimed by a leader killed before its request went out is lost (at most
        // once); every other slot ran.
        if !ran && outcome != Some("lost") {
            gaps.push((slot.clone(), outcome.map(str::to_string)));
        }
        if ran {
            let token = per_slot[&slot][0].token;
            let recorded = ledger.get(&slot).map(|(_, t)| *t);
            assert_eq!(
                recorded,
                Some(token),
                "slot {slot} ran with token {token}, the ledger says {recorded:?}"
            );
        }
    }
    assert!(
        gaps.is_empty(),
        "slots from {first} to {last} that neither ran nor were lost: {gaps:?}"
    );
    eprintln!(
        "{} slots from {first} to {last}: each ran once (runs by peer: {:?})",
        per_slot.len(),
        by_peer(&app)
    );
}

fn by_peer(app: &App) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in app.runs() {
        *m.entry(r.peer).or_default() += 1;
    }
    m
}

/// An every-5-seconds job; the whole cluster is killed for at least 10 s and started again 2 s
/// after a fire time, so that when the new leader looks, the latest slot is about 2 s old (a
/// catch-up, not on time) and at least one older slot fell in the outage. Returns the
/// application's runs, the ledger, the new leader's catch-up runs metric, the outage slots
/// (before the latest) and the latest.
async fn outage(flags: &[&str]) -> (App2, Vec<String>, String) {
    let app = Arc::new(App::default());
    let mut c = cluster_with(&app, "*/5 * * * * *", flags).await;
    runs_reach(&app, 1).await;
    for i in c.all() {
        c.kill(i);
    }
    let last_before = app
        .runs()
        .iter()
        .map(|r| r.slot.clone())
        .max()
        .expect("a run");
    let now = chrono::Utc::now();
    let mut restart = now + chrono::Duration::seconds(10);
    // Align to 2 s after a multiple of 5 s.
    let into = restart.timestamp().rem_euclid(5);
    restart += chrono::Duration::seconds((7 - into).rem_euclid(5));
    let restart = restart.with_nanosecond(0).expect("whole second");
    let wait = (restart - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    c.spawn_all();
    let (leader, _) = c.agreed_leader(&c.all(), STEP).await;
    let key = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let latest = key(restart - chrono::Duration::seconds(2));
    // Wait for the next on-time run after the restart.
    let on_time = key(restart + chrono::Duration::seconds(3));
    let deadline = Instant::now() + STEP;
    while !app.per_slot().contains_key(&on_time) {
        assert!(
            Instant::now() < deadline,
            "the on-time slot {on_time} never ran: {:?}",
            app.per_slot().keys()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let twice: Vec<_> = app
        .per_slot()
        .into_iter()
        .filter(|(_, r)| r.len() > 1)
        .collect();
    assert!(twice.is_empty(), "slots run more than once: {twice:?}");
    let before: Vec<String> = app_slots_between(&last_before, &latest);
    let ledger = ledger(&c, leader).await;
    let catch_ups = c
        .metric(leader, "raft_elector_job_catch_up_runs_total")
        .await
        .unwrap_or(0.0);
    (
        App2 {
            app,
            ledger,
            catch_ups,
            c,
        },
        before,
        latest,
    )
}

/// What [`outage`] observed.
struct App2 {
    app: Arc<App>,
    ledger: BTreeMap<String, (String, u64)>,
    catch_ups: f64,
    #[allow(dead_code)]
    c: Cluster,
}

/// The every-5-seconds slots strictly between two slot keys.
fn app_slots_between(after: &str, before: &str) -> Vec<String> {
    seconds(after, before)
        .into_iter()
        .filter(|s| {
            s.as_str() > after
                && s.as_str() < before
                && s[17..19].parse::<u32>().is_ok_and(|sec| sec % 5 == 0)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_latest_runs_one_missed_slot_and_none_runs_none() {
    let (seen, older, latest) = outage(&["--job-catch-up", "latest"]).await;
    assert!(
        !older.is_empty(),
        "no slot fell in the outage before {latest}: {:?}",
        seen.app.per_slot().keys()
    );
    assert!(
        seen.app.per_slot().contains_key(&latest),
        "latest: {latest} runs as the catch-up"
    );
    assert_eq!(seen.catch_ups, 1.0, "latest: one catch-up run");
    for slot in &older {
        assert!(
            !seen.app.per_slot().contains_key(slot),
            "latest: {slot} ran"
        );
        assert_eq!(
            seen.ledger.get(slot).map(|(o, _)| o.as_str()),
            Some("missed"),
            "{slot}: {:?}",
            seen.ledger
        );
    }
    let (seen, older, latest) = outage(&["--job-catch-up", "none"]).await;
    assert_eq!(seen.catch_ups, 0.0, "none: no catch-up run");
    for slot in older.iter().chain([&latest]) {
        assert!(!seen.app.per_slot().contains_key(slot), "none: {slot} ran");
        assert_eq!(
            seen.ledger.get(slot).map(|(o, _)| o.as_str()),
            Some("missed"),
            "{slot}: {:?}",
            seen.ledger
        );
    }
}

/// Kills the leader while the application holds its run; returns that run and the cluster.
async fn killed_mid_run(app: &Arc<App>, flags: &[&str]) -> (Run, Cluster) {
    let mut c = cluster(app, flags).await;
    runs_reach(app, 2).await;
    *app.hang_next.lock().expect("lock") = true;
    let n = app.runs().len();
    runs_reach(app, n + 1).await;
    let hung = app.runs()[n].clone();
    let holder = c.index(&hung.peer);
    c.kill(holder);
    (hung, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_leader_died_is_lost_with_skip_and_run_again_with_retry() {
    let app = Arc::new(App::default());
    let (hung, c) = killed_mid_run(&app, &["--job-on-lost", "skip"]).await;
    // Lost after --job-timeout (2 s) and the margin (5 s) from its claim.
    let survivor = (c.index(&hung.peer) + 1) % 3;
    let deadline = Instant::now() + STEP;
    loop {
        let l = ledger(&c, survivor).await;
        if l.get(&hung.slot).is_some_and(|(o, _)| o == "lost") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot {} never recorded lost: {l:?}",
            hung.slot
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.per_slot()[&hung.slot].len(),
        1,
        "skip: the lost slot never runs again"
    );

    let app = Arc::new(App::default());
    let (hung, _c) = killed_mid_run(&app, &["--job-on-lost", "retry"]).await;
    let deadline = Instant::now() + STEP;
    while app.per_slot()[&hung.slot].len() < 2 {
        assert!(
            Instant::now() < deadline,
            "retry: slot {} never ran again",
            hung.slot
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = &app.per_slot()[&hung.slot];
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(
        again[1].token > again[0].token,
        "the new run has a newer token: {again:?}"
    );
}
