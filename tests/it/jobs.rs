//! The job ledger (issue 14 §1): every slot granted once cluster-wide, through any peer, across
//! a leader's crash, restarts, snapshots and an upgrade from the release before the ledger.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::jobs::{self, Grants, Reply};
use testkit::{Ask, Cluster};

use crate::spec;

const STEP: Duration = Duration::from_secs(15);

fn addr(c: &Cluster, i: usize) -> SocketAddr {
    c.peers[i].http
}

/// Claims `slot` through every peer in `through` at once; records every answer in `grants`
/// (which fails the test on a slot granted twice) and returns the answers.
async fn claim_everywhere(
    c: &Cluster,
    client: &reqwest::Client,
    through: &[usize],
    job: &str,
    slot: &str,
    grants: &mut Grants,
) -> Vec<(usize, Reply)> {
    let asks = through.iter().map(|&i| async move {
        let reply = jobs::claim_decided(client, addr(c, i), job, slot, STEP)
            .await
            .unwrap_or_else(|| panic!("peer-{i} gave no decision on {job}/{slot} within {STEP:?}"));
        (i, reply)
    });
    let replies = futures::future::join_all(asks).await;
    for (i, reply) in &replies {
        let asker = &c.peers[*i].name;
        grants
            .record(job, slot, asker, reply)
            .unwrap_or_else(|broken| panic!("{broken}"));
    }
    replies
}

/// Waits until peer `i`'s ledger of `job` satisfies `done`; returns it.
async fn ledger_until(
    c: &Cluster,
    client: &reqwest::Client,
    i: usize,
    job: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some((200, body)) = jobs::ledger(client, addr(c, i), job).await {
            if done(&body) {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "peer-{i}'s ledger of {job} never {what}: {:?}",
            jobs::ledger(client, addr(c, i), job).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until peer `i`'s ledger of `job` lists `slots` slots.
async fn ledger_has(
    c: &Cluster,
    client: &reqwest::Client,
    i: usize,
    job: &str,
    slots: usize,
) -> serde_json::Value {
    let what = format!("listed {slots} slots");
    ledger_until(c, client, i, job, &what, |b| {
        b["slots"].as_array().map_or(0, Vec::len) == slots
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_claimed_through_every_peer_at_once_is_granted_once_and_its_holder_gets_it_back() {
    let c = Cluster::start(spec(3));
    c.agreed_leader(&c.all(), STEP).await;
    let client = jobs::client();
    let mut grants = Grants::default();
    let mut last_token = 0;
    for n in 0..10 {
        let slot = format!("2026-12-03T12:{n:02}:00Z");
        let replies = claim_everywhere(&c, &client, &c.all(), "mail", &slot, &mut grants).await;
        let created: Vec<_> = replies.iter().filter(|(_, r)| r.status == 201).collect();
        assert_eq!(created.len(), 1, "{slot}: {replies:?}");
        let conflicts = replies.iter().filter(|(_, r)| r.status == 409).count();
        assert_eq!(conflicts, 2, "{slot}: {replies:?}");
        let (holder_i, created) = created[0];
        let (holder, token) = created.holder_token().expect("a grant");
        assert_eq!(holder, c.peers[*holder_i].name);
        assert!(
            token > last_token,
            "token {token} after {last_token}: tokens must grow"
        );
        last_token = token;
        // The holder retrying (its answer lost, say) gets its own grant back.
        let again = jobs::claim_decided(&client, addr(&c, *holder_i), "mail", &slot, STEP)
            .await
            .expect("an answer");
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(again.holder_token(), Some((holder, token)));
    }
    grants.tokens_unique().unwrap_or_else(|e| panic!("{e}"));
    for i in c.all() {
        let ledger = ledger_has(&c, &client, i, "mail", 10).await;
        for slot in ledger["slots"].as_array().expect("slots") {
            let s = slot["slot"].as_str().expect("slot key");
            let shown = (
                slot["holder"].as_str().expect("holder").to_string(),
                slot["token"].as_u64().expect("token"),
            );
            assert_eq!(Some(shown), grants.get("mail", s), "peer-{i} shows {slot}");
        }
    }
    let (status, list) = c.get(0, "/v1/jobs").await.expect("GET /v1/jobs");
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list["jobs"][0]["job"], "mail", "{list}");
    assert_eq!(list["jobs"][0]["slots"], 10, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_outlive_a_crash_of_the_leader_and_a_restart_of_every_peer() {
    let mut s = spec(3);
    // Snapshots every 5 entries: the grants must survive being folded into snapshots too.
    s.flags.extend(["--snapshot-logs".into(), "5".into()]);
    let mut c = Cluster::start(s);
    let (leader, _) = c.agreed_leader(&c.all(), STEP).await;
    let client = jobs::client();
    let mut grants = Grants::default();
    let slots: Vec<String> = (0..12).map(|n| format!("slot-{n:02}")).collect();
    for (n, slot) in slots.iter().enumerate() {
        let through = [n % 3];
        claim_everywhere(&c, &client, &through, "report", slot, &mut grants).await;
    }
    c.kill(leader);
    let others = c.all_but(leader);
    c.agreed_leader(&others, STEP).await;
    for slot in &slots {
        let replies = claim_everywhere(&c, &client, &others, "report", slot, &mut grants).await;
        assert!(
            replies.iter().all(|(_, r)| matches!(r.status, 200 | 409)),
            "{replies:?}"
        );
    }
    for i in c.all() {
        if c.started(i) && i != leader {
            c.kill(i);
        }
    }
    c.spawn_all();
    c.agreed_leader(&c.all(), STEP).await;
    for slot in &slots {
        let replies = claim_everywhere(&c, &client, &c.all(), "report", slot, &mut grants).await;
        assert!(
            replies.iter().all(|(_, r)| matches!(r.status, 200 | 409)),
            "{replies:?}"
        );
    }
    assert_eq!(grants.len(), 12);
    for i in c.all() {
        ledger_has(&c, &client, i, "report", 12).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_needs_the_grant_s_token_and_is_recorded_once() {
    let c = Cluster::start(spec(3));
    c.agreed_leader(&c.all(), STEP).await;
    let client = jobs::client();
    let granted = jobs::claim_decided(&client, addr(&c, 1), "mail", "s1", STEP)
        .await
        .expect("claim");
    assert_eq!(granted.status, 201, "{granted:?}");
    let (_, token) = granted.holder_token().expect("grant");
    let report =
        |token: u64, ok: bool| json!({ "token": token, "ok": ok, "detail": "sent 3 mails" });
    let wrong = jobs::report(&client, addr(&c, 2), "mail", "s1", &report(token + 1, true))
        .await
        .expect("answer");
    assert_eq!(wrong.status, 409, "{wrong:?}");
    assert!(
        wrong.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("not this slot's"),
        "{wrong:?}"
    );
    // Reported through another peer than the holder: the token is the proof, not the route.
    let done = jobs::report(&client, addr(&c, 2), "mail", "s1", &report(token, true))
        .await
        .expect("answer");
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.body["outcome"], "ok");
    assert_eq!(done.body["detail"], "sent 3 mails");
    let same = jobs::report(&client, addr(&c, 0), "mail", "s1", &report(token, true))
        .await
        .expect("answer");
    assert_eq!(
        same.status, 200,
        "a repeated report is idempotent: {same:?}"
    );
    let other = jobs::report(&client, addr(&c, 0), "mail", "s1", &report(token, false))
        .await
        .expect("answer");
    assert_eq!(other.status, 409, "{other:?}");
    let never = jobs::report(&client, addr(&c, 0), "mail", "s9", &report(token, true))
        .await
        .expect("answer");
    assert_eq!(never.status, 409, "{never:?}");
    let ledger = ledger_until(&c, &client, 0, "mail", "recorded the outcome", |b| {
        b["slots"][0]["outcome"] == "ok"
    })
    .await;
    assert_eq!(ledger["slots"][0]["outcome"], "ok", "{ledger}");
    assert!(ledger["slots"][0]["completed_at"].is_string(), "{ledger}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_claims_get_a_clear_400_and_change_nothing() {
    let c = Cluster::start(spec(3));
    c.agreed_leader(&c.all(), STEP).await;
    let client = jobs::client();
    let long = "x".repeat(129);
    let cases: Vec<(String, String, &str)> = vec![
        (
            "/v1/jobs/mail/claims".into(),
            r#"{"slot":""}"#.into(),
            "empty",
        ),
        (
            "/v1/jobs/mail/claims".into(),
            json!({ "slot": long }).to_string(),
            "129 bytes",
        ),
        (
            "/v1/jobs/mail/claims".into(),
            r#"{"slot":"a\nb"}"#.into(),
            "not printable",
        ),
        (
            "/v1/jobs/mail/claims".into(),
            r#"{"slot":"#.into(),
            "must be JSON",
        ),
        (
            "/v1/jobs/mail/claims".into(),
            r#"{"slot":"a","holder":"web-9"}"#.into(),
            "unknown field",
        ),
        (
            "/v1/jobs/mail/claims".into(),
            r#"{"slot":7}"#.into(),
            "must be JSON",
        ),
        (
            format!("/v1/jobs/{long}/claims"),
            r#"{"slot":"a"}"#.into(),
            "129 bytes",
        ),
        (
            "/v1/jobs/mail/claims/a/done".into(),
            r#"{"token":-1,"ok":true}"#.into(),
            "must be JSON",
        ),
        (
            "/v1/jobs/mail/claims/a/done".into(),
            r#"{"ok":true}"#.into(),
            "missing field",
        ),
    ];
    for (path, body, says) in &cases {
        let (status, _, text) = testkit::http::post_json(&client, addr(&c, 0), path, body)
            .await
            .expect("an answer");
        assert_eq!(status, 400, "{path} {body}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("a JSON error");
        let why = v["error"].as_str().unwrap_or("");
        assert!(
            why.contains(says),
            "{path} {body}: {why:?} should say {says:?}"
        );
    }
    let (status, text) = c.get(0, "/v1/jobs").await.expect("GET /v1/jobs");
    assert_eq!((status, text.as_str()), (200, r#"{"jobs":[]}"#));
    let (status, _) = jobs::ledger(&client, addr(&c, 0), "mail")
        .await
        .expect("GET");
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_a_claim_is_a_503_to_retry_and_never_a_grant() {
    let mut c = Cluster::start(spec(3));
    let (leader, _) = c.agreed_leader(&c.all(), STEP).await;
    let client = jobs::client();
    // The ledger switched over (every member confirmed) before the fault.
    let first = jobs::claim_decided(&client, addr(&c, leader), "mail", "before", STEP)
        .await
        .expect("claim");
    assert_eq!(first.status, 201, "{first:?}");
    let left = (leader + 1) % 3;
    for i in c.all_but(left) {
        c.kill(i);
    }
    let reply = jobs::claim(&client, addr(&c, left), "mail", "during")
        .await
        .expect("an answer");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.retry_after.as_deref(), Some("1"), "{reply:?}");
    for i in c.all_but(left) {
        c.spawn(i);
    }
    c.agreed_leader(&c.all(), STEP).await;
    let mut grants = Grants::default();
    let replies = claim_everywhere(&c, &client, &c.all(), "mail", "during", &mut grants).await;
    let granted = replies
        .iter()
        .filter(|(_, r)| matches!(r.status, 200 | 201))
        .count();
    assert_eq!(granted, 1, "{replies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_slot_is_gone_for_good() {
    let mut s = spec(3);
    s.flags.extend(["--job-history".into(), "3".into()]);
    let c = Cluster::start(s);
    c.agreed_leader(&c.all(), STEP).await;
    let client = jobs::client();
    for n in 1..=5 {
        let r = jobs::claim_decided(&client, addr(&c, 0), "mail", &format!("s{n}"), STEP)
            .await
            .expect("claim");
        assert_eq!(r.status, 201, "{r:?}");
    }
    for i in c.all() {
        let ledger = ledger_until(&c, &client, i, "mail", "forgot s2", |b| {
            b["forgotten_up_to"] == "s2"
        })
        .await;
        assert_eq!(
            ledger["slots"].as_array().map(Vec::len),
            Some(3),
            "{ledger}"
        );
    }
    for (i, slot) in [(0, "s1"), (1, "s2"), (2, "s0")] {
        let r = jobs::claim_decided(&client, addr(&c, i), "mail", slot, STEP)
            .await
            .expect("claim");
        assert_eq!(r.status, 410, "{slot}: {r:?}");
        assert!(
            r.body["error"]
                .as_str()
                .unwrap_or("")
                .contains("never granted again"),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_claim_is_appended_while_a_peer_runs_the_release_before_the_ledger() {
    let before = testkit::release::release_exe(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        testkit::release::BEFORE_LEDGER,
    );
    let mut c = Cluster::new(spec(3));
    c.peers[2].exe = Some(before);
    c.spawn_all();
    c.agreed_leader(&c.all(), STEP).await;
    let client = jobs::client();
    let reply = jobs::claim(&client, addr(&c, 0), "mail", "s1")
        .await
        .expect("an answer");
    assert_eq!(reply.status, 503, "{reply:?}");
    let why = reply.body["error"].as_str().unwrap_or("").to_string();
    assert!(why.contains("without the job ledger"), "{why}");
    // The old peer is upgraded in place, on its data: the first claim goes through.
    c.stop(2).await;
    c.peers[2].exe = None;
    c.spawn(2);
    c.agreed_leader(&c.all(), STEP).await;
    let reply = jobs::claim_decided(&client, addr(&c, 0), "mail", "s1", STEP)
        .await
        .expect("claim");
    assert_eq!(reply.status, 201, "{reply:?}");
    ledger_has(&c, &client, 2, "mail", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_slots_claimed_by_many_clients_through_a_leader_crash_are_each_granted_once() {
    const SLOTS: usize = 200;
    const PER_PEER: usize = 3;
    let mut c = Cluster::start(spec(3));
    c.agreed_leader(&c.all(), STEP).await;
    let client = jobs::client();
    let peers: Vec<(SocketAddr, String)> =
        c.peers.iter().map(|p| (p.http, p.name.clone())).collect();
    let grants = std::sync::Mutex::new(Grants::default());
    // First grants (201) with when they were sent and received, for the order of tokens.
    let created = std::sync::Mutex::new(Vec::<(Instant, Instant, u64, String)>::new());
    let progress = std::sync::atomic::AtomicUsize::new(0);
    let claimer = |peer: usize| {
        let (addr, name) = peers[peer].clone();
        let (client, grants, created, progress) = (&client, &grants, &created, &progress);
        async move {
            for n in 0..SLOTS {
                let slot = format!("2026-12-03T13:{:02}:{:02}Z", n / 60, n % 60);
                let sent = Instant::now();
                let reply = jobs::claim_decided(client, addr, "contention", &slot, STEP * 2)
                    .await
                    .unwrap_or_else(|| panic!("{name}: no decision on {slot}"));
                let received = Instant::now();
                assert!(
                    matches!(reply.status, 200 | 201 | 409),
                    "{name} {slot}: {reply:?}"
                );
                let recorded =
                    grants
                        .lock()
                        .expect("lock")
                        .record("contention", &slot, &name, &reply);
                recorded.unwrap_or_else(|broken| panic!("{broken}"));
                if reply.status == 201 {
                    let (_, token) = reply.holder_token().expect("grant");
                    let first = (sent, received, token, slot.clone());
                    created.lock().expect("lock").push(first);
                }
                progress.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    };
    let claimers = futures::future::join_all((0..3 * PER_PEER).map(|k| claimer(k % 3)));
    let nemesis = async {
        // Half-way, the leader is killed, and started again once another leads.
        let half = SLOTS * 3 * PER_PEER / 2;
        let deadline = Instant::now() + STEP * 4;
        while progress.load(std::sync::atomic::Ordering::SeqCst) < half {
            assert!(Instant::now() < deadline, "the claimers made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (leader, term) = c.agreed_leader(&c.all(), STEP).await;
        c.kill(leader);
        c.new_leader(&c.all_but(leader), STEP, term).await;
        c.spawn(leader);
        leader
    };
    let (_, killed) = tokio::join!(claimers, nemesis);
    let grants = grants.into_inner().expect("lock");
    assert_eq!(grants.len(), SLOTS);
    grants.tokens_unique().unwrap_or_else(|e| panic!("{e}"));
    let created = created.into_inner().expect("lock");
    // A first grant whose answer the crash lost was asked again and answered 200: at most
    // one 201 per slot.
    let slots: std::collections::BTreeSet<&String> = created.iter().map(|c| &c.3).collect();
    assert_eq!(slots.len(), created.len(), "a slot was answered 201 twice");
    for a in &created {
        for b in &created {
            assert!(
                a.1 >= b.0 || a.2 < b.2,
                "a grant answered before another was asked has a token not below it: {} then {}",
                a.2,
                b.2
            );
        }
    }
    eprintln!(
        "{SLOTS} slots, {} claimers, peer-{killed} killed half-way: every slot granted once",
        3 * PER_PEER
    );
}

/// When each first grant was asked and answered, and its token.
pub type Answered = std::sync::Mutex<Vec<(Instant, Instant, u64)>>;

/// The claim entries appended and the claims in them, summed over the peers of this release
/// (each counts those it appended as leader; a peer of the release before batches has
/// neither metric).
pub async fn claim_counts(c: &Cluster) -> (f64, f64) {
    let (mut entries, mut claims) = (0.0, 0.0);
    for i in c.all() {
        entries += c
            .metric(i, "raft_elector_claim_entries_total")
            .await
            .unwrap_or(0.0);
        claims += c
            .metric(i, "raft_elector_claims_appended_total")
            .await
            .unwrap_or(0.0);
    }
    (entries, claims)
}

/// Waits until peer `i`'s ledger of `job` lists `slots` slots, then checks that it shows each
/// with the holder and token recorded in `grants`.
pub async fn ledger_shows(
    c: &Cluster,
    client: &reqwest::Client,
    i: usize,
    job: &str,
    slots: usize,
    grants: &Grants,
) {
    let deadline = Instant::now() + STEP;
    loop {
        let ledger = jobs::ledger(client, addr(c, i), job).await;
        let listed = ledger
            .as_ref()
            .and_then(|(_, b)| b["slots"].as_array().cloned());
        if let Some(listed) = listed.filter(|s| s.len() == slots) {
            for slot in listed {
                let key = slot["slot"].as_str().expect("slot key");
                let shown = (
                    slot["holder"].as_str().expect("holder").to_string(),
                    slot["token"].as_u64().expect("token"),
                );
                assert_eq!(Some(shown), grants.get(job, key), "peer-{i} shows {slot}");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peer-{i}'s ledger of {job} never listed {slots} slots: {ledger:?}\n{}",
            c.log_tail(i, 30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks that a grant answered before another was asked has the lower token.
pub fn tokens_follow_real_time(answered: &[(Instant, Instant, u64)]) {
    for a in answered {
        for b in answered {
            assert!(
                a.1 >= b.0 || a.2 < b.2,
                "a grant answered before another was asked has a token not below it: {} then {}",
                a.2,
                b.2
            );
        }
    }
}

/// Claimer `k` (of `claimers`) claims `slots` of its own job `batch-k` through one of
/// `through`, each expecting a first grant; records grants and when each was asked and
/// answered.
pub async fn claim_round(
    c: &Cluster,
    (client, grants, answered): (&reqwest::Client, &std::sync::Mutex<Grants>, &Answered),
    claimers: usize,
    through: Vec<usize>,
    slots: std::ops::Range<usize>,
) {
    let claimer = |k: usize| {
        let peer = through[k % through.len()];
        let (addr, name) = (c.peers[peer].http, c.peers[peer].name.clone());
        let slots = slots.clone();
        async move {
            let job = format!("batch-{k:02}");
            for n in slots {
                let slot = format!("2026-12-04T08:00:{n:02}Z");
                let sent = Instant::now();
                let reply = jobs::claim_decided(client, addr, &job, &slot, STEP)
                    .await
                    .unwrap_or_else(|| panic!("{name}: no decision on {job}/{slot}"));
                assert_eq!(reply.status, 201, "{job}/{slot}: {reply:?}");
                let (_, token) = reply.holder_token().expect("a grant");
                let times = (sent, Instant::now(), token);
                answered.lock().expect("lock").push(times);
                let recorded = grants
                    .lock()
                    .expect("lock")
                    .record(&job, &slot, &name, &reply);
                recorded.unwrap_or_else(|broken| panic!("{broken}"));
            }
        }
    };
    futures::future::join_all((0..claimers).map(claimer)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_share_log_entries_and_tokens_still_grow_strictly() {
    const CLAIMERS: usize = 24;
    const SLOTS: usize = 15;
    const MORE: usize = 5;
    let mut s = spec(3);
    // Snapshots every 5 entries: a peer that was down catches up from a snapshot, which must
    // carry the token floor.
    s.flags.extend(["--snapshot-logs".into(), "5".into()]);
    let mut c = Cluster::start(s);
    let client = jobs::client();
    let (leader, _) = c.agreed_leader(&c.all(), STEP).await;
    let grants = std::sync::Mutex::new(Grants::default());
    let answered = Answered::default();
    let record = (&client, &grants, &answered);
    claim_round(&c, record, CLAIMERS, c.all(), 0..SLOTS).await;
    let (entries, claims) = claim_counts(&c).await;
    assert!(
        claims as usize >= CLAIMERS * SLOTS,
        "{claims} claims appended"
    );
    assert!(
        entries < claims,
        "{claims} concurrent claims took {entries} entries: none was batched"
    );
    eprintln!("{claims} claims from {CLAIMERS} clients in {entries} log entries");

    // A follower stops and misses more claims; it catches up from a snapshot when it is back.
    let late = (leader + 1) % 3;
    c.kill(late);
    c.agreed_leader(&c.all_but(late), STEP).await;
    let record = (&client, &grants, &answered);
    claim_round(&c, record, CLAIMERS, c.all_but(late), SLOTS..SLOTS + MORE).await;
    c.spawn(late);
    for k in 0..CLAIMERS {
        ledger_has(&c, &client, late, &format!("batch-{k:02}"), SLOTS + MORE).await;
    }
    let grants = grants.into_inner().expect("lock");
    assert_eq!(grants.len(), CLAIMERS * (SLOTS + MORE));
    grants.tokens_unique().unwrap_or_else(|e| panic!("{e}"));
    let answered = answered.into_inner().expect("lock");
    tokens_follow_real_time(&answered);

    // A crash of every peer loses nothing: every peer shows every grant with the token its
    // claimer was given, and the next grant's token is above them all.
    for i in c.all() {
        c.kill(i);
    }
    c.spawn_all();
    c.agreed_leader(&c.all(), STEP).await;
    for i in c.all() {
        for k in 0..CLAIMERS {
            let job = format!("batch-{k:02}");
            ledger_shows(&c, &client, i, &job, SLOTS + MORE, &grants).await;
        }
    }
    let highest = answered.iter().map(|a| a.2).max().expect("tokens");
    let after = jobs::claim_decided(&client, addr(&c, late), "after", "restart", STEP)
        .await
        .expect("a decision");
    assert_eq!(after.status, 201, "{after:?}");
    let (_, token) = after.holder_token().expect("a grant");
    assert!(
        token > highest,
        "the first grant after the restart has token {token}, not above {highest}"
    );
}
