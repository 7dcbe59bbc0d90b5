//! Fault injection against real `raft-elector` processes, with a history checker.
//!
//! Clients ask every peer who leads every few milliseconds and record each answer with the
//! time its request was sent and the time the answer came back; they also read every peer's
//! membership (`/v1/members`). A nemesis kills, pauses, partitions, bridges, slows down and
//! restarts peers, starts spare peers (they join) and stops members (they leave), on a
//! schedule drawn from a printed seed. A checker then reads the whole history and fails on a
//! stale leader, two leaders in one term, a term going down, a stale follower, a cluster
//! without an agreed leader for too long, a leader that is no voter, a membership going back
//! or differing at one index, or a membership that does not settle. See docs/NEMESIS.md.
//!
//! * `short_run_3_peers`, `short_run_5_peers`, `short_run_2_peers_and_a_witness`: part of the
//!   normal test run (about a minute each).
//! * `scaling_3_5_3_1_3_passes_every_rule_of_the_checker`: the scripted scale fault alone.
//! * `long_run` (ignored): `NEMESIS_FAULTS` faults (default 160) per cluster size in
//!   `NEMESIS_SIZES` (default `3,5,3w`; `3w` is two peers and a witness).
//! * `the_checker_rejects_a_build_without_the_lease`: builds the test-only
//!   `testing-skip-lease` binary into its own target directory and expects the checker to
//!   reject its history.
//!
//! `NEMESIS_SEED=<n>` replays the fault schedule of an earlier run; `NEMESIS_KINDS` (e.g.
//! `"slow peer,pause leader"`) limits the long run to some kinds of fault; `NEMESIS_TLS=1`
//! makes the long run's peers speak mutual TLS (`short_run_3_peers` always does).
//!
//! The clusters, their fault proxies and the [`testkit::Target`] they offer the nemesis come
//! from the shared test kit (testkit/).

mod changes;
mod checker;
mod checker_tests;
mod client;
mod followers;
mod followers_tests;
mod history;
mod ledger;
mod ledger_tests;
mod liveness;
mod membership;
mod membership_tests;
mod nemesis;
mod roster;
mod run;
mod scale;
mod schedule;
mod summary;
mod tracked;
mod violation;

use std::path::{Path, PathBuf};
use std::process::Command;

use checker::Violation;
use history::FaultKind;
use run::{run, Plan};
use testkit::docker::{self, Discovery};
use testkit::{Cluster, Spec};

fn seed() -> u64 {
    testkit::rng::seed_from_env("NEMESIS_SEED")
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_raft-elector"))
}

/// Spare peers of the process clusters: started by the membership faults, to join.
const SPARES: usize = 2;

/// The plan's processes of `exe` on loopback: its first cluster and its spares, which are not
/// of the first cluster (they join when started), every peer behind a fault proxy that knows
/// the sender by the header each peer request carries (by its process over TLS); the plan's
/// witness started with `--witness`.
fn processes(plan: &Plan, exe: &Path) -> Cluster {
    let schedule = plan.schedule.clone();
    let (peers, spares) = (plan.peers, plan.spares);
    let mut spec = Spec::new(exe, peers + spares);
    spec.spares = spares;
    spec.election = "nemesis".into();
    spec.log_filter = Some("info,openraft=off".into());
    spec.sender_header = Some("x-raft-elector-from".into());
    // Over TLS the proxies find each connection's sender by its process.
    spec.tls = plan.tls;
    spec.dir_prefix = "raft-elector-nemesis-".into();
    // A failing run says where its logs and data are.
    spec.keep_failed = true;
    if schedule.is_some() {
        spec.flags.extend(schedule::Endpoint::flags());
    }
    let mut c = Cluster::new(spec);
    if let Some(endpoint) = &schedule {
        for p in &mut c.peers {
            let flag = endpoint.url_flag(&p.name);
            p.extra.extend(flag);
        }
    }
    if let Some(w) = plan.witness {
        c.peers[w].extra.push("--witness".into());
    }
    c
}

/// No violation, every planned fault injected and enough answers checked.
fn assert_clean(outcome: &run::Outcome) {
    let failures = outcome.failures();
    assert!(
        failures.is_empty(),
        "{}; seed and history above; logs kept in {:?}",
        failures.join("; "),
        outcome.kept
    );
}

/// A plan of `faults` for `size` peers: a number, or a number and `w` (the last of them a
/// witness, e.g. `3w`: two peers and a witness); with [`SPARES`] spare peers.
fn plan(label: &str, size: &str, faults: usize, seed: u64) -> Plan {
    let (peers, witness) = match size.trim().strip_suffix('w') {
        Some(n) => (n, true),
        None => (size.trim(), false),
    };
    let peers: usize = peers
        .parse()
        .unwrap_or_else(|_| panic!("a cluster size is a number, with w for a witness: {size:?}"));
    let mut plan = Plan::new(&format!("{label}-{size}"), peers, faults, seed);
    plan.spares = SPARES;
    plan.witness = witness.then_some(peers - 1);
    // Process clusters run the schedule mode too (its endpoint is this test's, on loopback),
    // and claimers; with a witness as well since it leads as a caretaker when it must
    // (docs/NEMESIS.md, finding 6).
    plan.schedule = Some(schedule::Endpoint::start());
    plan.claims = true;
    plan
}

async fn short_run(size: &str, tls: bool) {
    let mut plan = plan("short", size, 14, seed());
    plan.tls = tls;
    let outcome = run(&plan, processes(&plan, &exe())).await;
    assert_clean(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_run_3_peers() {
    // Over peer TLS: every suite run puts the TLS transport through the faults.
    short_run("3", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_run_5_peers() {
    short_run("5", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_run_2_peers_and_a_witness() {
    short_run("3w", false).await;
}

/// 3 -> 5 -> 3 -> 1 -> 3 as a StatefulSet is scaled (the scaling test), checked by every
/// rule: never two leaders, an agreed leader within the outage bound throughout, terms never
/// going back, every peer's membership settling on the new set after each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_3_5_3_1_3_passes_every_rule_of_the_checker() {
    let mut plan = plan("scale", "3", 1, seed());
    plan.kinds = vec![FaultKind::Scale];
    let outcome = run(&plan, processes(&plan, &exe())).await;
    assert_clean(&outcome);
    assert_eq!(
        outcome.history.steps.len(),
        4,
        "the scale fault has four steps"
    );
    eprintln!("{}", outcome.history.faults[0].detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long run (about half an hour): cargo test --test nemesis -- --ignored --nocapture long_run"]
async fn long_run() {
    let faults = env_number("NEMESIS_FAULTS", 160);
    let sizes: Vec<String> = std::env::var("NEMESIS_SIZES")
        .unwrap_or_else(|_| "3,5,3w".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let kinds: Vec<FaultKind> = match std::env::var("NEMESIS_KINDS") {
        Ok(list) => list
            .split(',')
            .map(|name| {
                FaultKind::ALL
                    .into_iter()
                    .find(|k| k.name() == name.trim())
                    .unwrap_or_else(|| panic!("NEMESIS_KINDS: unknown fault kind {name:?}"))
            })
            .collect(),
        Err(_) => FaultKind::ALL.to_vec(),
    };
    let seed = seed();
    let mut summaries = Vec::new();
    let mut failed = Vec::new();
    for (k, size) in sizes.iter().enumerate() {
        let mut plan = plan("long", size, faults, seed.wrapping_add(k as u64));
        plan.kinds = kinds.clone();
        plan.tls = std::env::var("NEMESIS_TLS").is_ok_and(|v| v == "1");
        let outcome = run(&plan, processes(&plan, &exe())).await;
        let failures = outcome.failures();
        if !failures.is_empty() {
            failed.push(format!(
                "{}: {} (kept {:?})",
                plan.label,
                failures.join("; "),
                outcome.kept
            ));
        }
        summaries.push(outcome.summary);
    }
    eprintln!("======== long run: all summaries ========");
    for s in &summaries {
        eprintln!("{s}");
    }
    assert!(failed.is_empty(), "violations: {failed:?}");
}

/// Builds the test-only binary that answers from Raft's state without the lease, into its own
/// target directory so that it never replaces the binary under test.
fn unsafe_exe() -> PathBuf {
    if let Ok(path) = std::env::var("NEMESIS_UNSAFE_EXE") {
        return PathBuf::from(path);
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().unwrap_or(tmp).join("unsafe");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--offline",
            "--features",
            "testing-skip-lease",
            "--bin",
            "raft-elector",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "building the testing-skip-lease binary failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug").join("raft-elector")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_rejects_a_build_without_the_lease() {
    let exe = unsafe_exe();
    let mut plan = Plan::new("skip-lease", 3, 4, seed());
    plan.kinds = vec![FaultKind::IsolateLeader, FaultKind::PauseLeader];
    // Long enough for the others to elect a new leader while the old one is cut off.
    plan.holds.partition = (2000, 3000);
    plan.holds.pause = (2000, 3000);
    plan.keep_failed = false;
    let outcome = run(&plan, processes(&plan, &exe)).await;
    if let Err(why) = outcome.enough() {
        panic!("the run against the testing-skip-lease build means nothing: {why}");
    }
    let stale = outcome
        .report
        .violations
        .iter()
        .filter(|v| matches!(v, Violation::StaleLeader { .. }))
        .count();
    assert!(
        stale > 0,
        "the checker did not catch the build without the lease: {}",
        outcome.report
    );
    let first = outcome
        .report
        .violations
        .iter()
        .find(|v| matches!(v, Violation::StaleLeader { .. }));
    if let Some(v) = first {
        eprintln!(
            "as expected, the checker rejected the testing-skip-lease build ({}); the first stale claim:\n{}",
            outcome.report,
            v.explain(&outcome.history)
        );
    }
}

/// The container variant: needs Docker and the product image (docker/build.sh builds it).
/// Without Docker it fails; `RAFT_ELECTOR_SKIP_DOCKER=1 scripts/test.sh` leaves it out of the
/// run (reported as skipped), as the container tests.
async fn container_run(label: &str, peers: usize, faults: usize) {
    docker::require_docker(label);
    let spec = docker::Spec {
        image: docker::image(),
        peers,
        election: "nemesis".into(),
        discovery: Discovery::PeerList,
        log_filter: "info,openraft=off".into(),
        // Clients ask every peer there, also one cut off from the others.
        clients_network: true,
        ask_timeout: std::time::Duration::from_secs(1),
    };
    let plan = Plan::new(label, peers, faults, seed());
    let outcome = run(&plan, docker::Cluster::create(&spec).await).await;
    assert_clean(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_short_run_3_peers() {
    container_run("containers-3", 3, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long container run: cargo test --test nemesis -- --ignored --nocapture container_long_run"]
async fn container_long_run() {
    let faults = env_number("NEMESIS_FAULTS", 100);
    container_run("containers-long-3", 3, faults).await;
    container_run("containers-long-5", 5, faults).await;
}

#[test]
fn schedules_cover_every_kind() {
    let mut rng = testkit::Rng::new(7);
    let s = nemesis::schedule(&FaultKind::ALL, 2 * FaultKind::ALL.len(), &mut rng);
    for kind in FaultKind::ALL {
        assert_eq!(s.iter().filter(|k| **k == kind).count(), 2, "{kind}");
    }
}
