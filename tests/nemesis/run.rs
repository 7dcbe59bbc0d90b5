//! One run: start a cluster behind its proxies, start the clients, let the nemesis inject its
//! faults, then check the whole history and print the summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{Rng, Target};
use tokio_util::sync::CancellationToken;

use crate::changes::{self, Settled};
use crate::checker::{self, Report, Rules};
use crate::client::{self, Recorder};
use crate::history::{Clock, FaultKind, History, Stop};
use crate::nemesis::{self, Holds};
use crate::summary;
use crate::tracked::Tracked;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub label: String,
    /// The first cluster.
    pub peers: usize,
    /// Peers beyond the first cluster (the target has `peers + spares`), started only by the
    /// membership faults, to join.
    pub spares: usize,
    pub faults: usize,
    pub seed: u64,
    pub kinds: Vec<FaultKind>,
    /// Interval between two questions to the same peer.
    pub poll: Duration,
    pub holds: Holds,
    pub rules: Rules,
    /// The member of the first cluster started with `--witness`, if any.
    pub witness: Option<usize>,
    /// Keep logs and data of a run that fails.
    pub keep_failed: bool,
    /// The endpoint of the peers' scheduled job, when they run one (process clusters).
    pub schedule: Option<Arc<crate::schedule::Endpoint>>,
    /// Every peer's client claims job slots (rules 13-15).
    pub claims: bool,
    /// The peers speak mutual TLS (process clusters).
    pub tls: bool,
}

/// The product's default timings, as the checker's bounds.
pub fn default_rules() -> Rules {
    Rules {
        // 3/4 of the default maximum election timeout (240 ms).
        follower_window: 180_000,
        delivery: 50_000,
        heal_bound: 5_000_000,
        outage_bound: 5_000_000,
        fresh: 50_000,
        // The default --shutdown-timeout (5 s) and one second for the process to end.
        shutdown_bound: 6_000_000,
        members_bound: 20_000_000,
        max_voters: 5,
    }
}

/// Answers a run must have checked to mean anything: a thousand per 14 faults (a short run),
/// a few hundred per minute of faults, well below what the clients record (about 100 per
/// peer and second).
pub fn minimum_answers(faults: usize) -> usize {
    (faults * 1000).div_ceil(14)
}

impl Plan {
    pub fn new(label: &str, peers: usize, faults: usize, seed: u64) -> Plan {
        Plan {
            label: label.to_string(),
            peers,
            spares: 0,
            faults,
            seed,
            kinds: FaultKind::ALL.to_vec(),
            poll: Duration::from_millis(10),
            holds: Holds::default(),
            rules: default_rules(),
            witness: None,
            keep_failed: true,
            schedule: None,
            claims: true,
            tls: false,
        }
    }
}

/// What a run produced.
pub struct Outcome {
    /// The faults the plan asked for.
    pub planned: usize,
    pub history: History,
    pub report: Report,
    pub summary: String,
    /// Where logs and data were kept, when the run failed.
    pub kept: Option<PathBuf>,
}

/// Waits until the newest answer of every peer of the roster, sent after `since`, names the
/// same leader with the same term and that leader claims it. Returns how long it took, or
/// `None` at `timeout`.
async fn all_agree(rec: &Recorder, since: u64, timeout: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        let latest = rec.latest();
        let roster = rec.roster();
        let fresh: Vec<_> = roster
            .iter()
            .map(|&i| (i, latest[i].as_ref().filter(|a| a.sent >= since)))
            .collect();
        if let Some((_, Some(first))) = fresh.first() {
            let agreed = fresh.iter().all(|(i, a)| {
                a.is_some_and(|a| {
                    a.leader == first.leader
                        && a.term == first.term
                        && a.is_leader == (first.leader == Some(*i))
                })
            });
            if agreed && first.leader.is_some() {
                return Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Whether faults of `kind` can be injected into `cluster` (known once it runs): a slow peer
/// needs proxies or netem, the membership faults spare peers.
fn possible<C: Target>(kind: FaultKind, cluster: &C, plan: &Plan) -> bool {
    (kind != FaultKind::SlowPeer || cluster.can_slow()) && (!kind.membership() || plan.spares > 0)
}

/// Settles the membership ([`changes::settle`]) and says how it went.
async fn settle<C: Target>(c: &mut C, rec: &Recorder, plan: &Plan, stops: &mut Vec<Stop>) {
    let s: Settled = changes::settle(c, rec, plan, Duration::from_secs(10)).await;
    if !s.repaired.is_empty() || s.after.is_none_or(|d| d > Duration::from_secs(1)) {
        eprintln!(
            "nemesis [{}]: membership {}{}",
            plan.label,
            match s.after {
                Some(d) => format!("settled after {} ms", d.as_millis()),
                None => "NOT settled".into(),
            },
            if s.repaired.is_empty() {
                String::new()
            } else {
                format!(
                    "; stopped peers still members, started and stopped again: {}",
                    s.repaired.join(", ")
                )
            }
        );
    }
    stops.extend(s.stops);
}

/// Runs a plan to the end on `cluster` (prepared, not started; `plan.peers + plan.spares`
/// peers) and checks it.
pub async fn run<C: Target>(plan: &Plan, cluster: C) -> Outcome {
    assert_eq!(
        cluster.len(),
        plan.peers + plan.spares,
        "the cluster must have the plan's peers and spares"
    );
    let started = Instant::now();
    let clock = Clock::new();
    let rec = Arc::new(Recorder::new(clock, cluster.names(), plan.peers));
    let mut cluster = Tracked {
        inner: cluster,
        rec: rec.clone(),
    };
    let stop = CancellationToken::new();
    let clients = client::start(
        rec.clone(),
        &cluster.http(),
        plan.poll,
        plan.claims,
        stop.clone(),
    );
    for i in 0..plan.peers {
        cluster.start(i).await;
    }
    // What a target supports may be known only once it runs (netem in a container).
    let kinds: Vec<FaultKind> = plan
        .kinds
        .iter()
        .copied()
        .filter(|k| possible(*k, &cluster, plan))
        .collect();
    let skipped: Vec<&str> = plan
        .kinds
        .iter()
        .filter(|k| !possible(**k, &cluster, plan))
        .map(|k| k.name())
        .collect();
    eprintln!(
        "nemesis [{}]: {} peers (and {} spares), {} faults, seed {} (replay with NEMESIS_SEED={}), on {}{}",
        plan.label,
        plan.peers,
        plan.spares,
        plan.faults,
        plan.seed,
        plan.seed,
        cluster.describe(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; not possible here: {}", skipped.join(", "))
        }
    );
    let mut rng = Rng::new(plan.seed);
    assert!(
        !kinds.is_empty(),
        "no kind of fault of the plan is possible here"
    );
    let schedule = nemesis::schedule(&kinds, plan.faults, &mut rng);
    let first = all_agree(&rec, 0, Duration::from_secs(30)).await;
    eprintln!(
        "nemesis [{}]: first leader agreed after {:?}",
        plan.label, first
    );
    let wait = Duration::from_micros(plan.rules.heal_bound) + Duration::from_secs(5);
    let mut faults = Vec::new();
    let mut stops = Vec::new();
    for (i, kind) in schedule.iter().enumerate() {
        let injected = match nemesis::inject(*kind, &mut cluster, &rec, &mut rng, plan).await {
            Ok(injected) => injected,
            Err(why) => panic!(
                "nemesis [{}]: fault {}/{} ({kind}) could not be injected or repaired: {why}",
                plan.label,
                i + 1,
                plan.faults
            ),
        };
        stops.extend(injected.stops);
        let fault = injected.fault;
        let agreed = all_agree(&rec, fault.healed, wait).await;
        eprintln!(
            "nemesis [{}] {:>4}/{} {:>7.1}s {:<15} {} -> {}",
            plan.label,
            i + 1,
            plan.faults,
            started.elapsed().as_secs_f64(),
            kind.name(),
            fault.detail,
            match agreed {
                Some(d) => format!("leader agreed {} ms after repair", d.as_millis()),
                None => format!("NO agreed leader within {wait:?}"),
            }
        );
        faults.push(fault);
        settle(&mut cluster, &rec, plan, &mut stops).await;
        tokio::time::sleep(rng.millis(200, 800)).await;
    }
    // The membership must settle: every running peer lists the same members, the running ones.
    let settle_from = clock.now();
    settle(&mut cluster, &rec, plan, &mut stops).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let mut client_panic = None;
    for task in clients {
        if let Err(e) = task.await {
            if e.is_panic() {
                client_panic = Some(e.into_panic());
            }
        }
    }
    let end = clock.now();
    // The schedule's ledger, read while the peers still run.
    let schedule = match &plan.schedule {
        Some(endpoint) => Some(crate::schedule::ScheduleRecord {
            ledger: crate::schedule::read_ledger(&cluster.http())
                .await
                .unwrap_or_default(),
            runs: endpoint.runs(),
        }),
        None => None,
    };
    // How the claims were appended, by the peers still running (counters restart with a peer).
    let batching = claims_appended(&cluster.http()).await;
    eprintln!(
        "nemesis [{}]: claims appended by the peers at the end: {} in {} log entries",
        plan.label, batching.1, batching.0
    );
    // Every peer stopped as a pod is: SIGTERM, and it must exit 0 in time.
    let exit_within = Duration::from_micros(plan.rules.shutdown_bound);
    for exit in cluster.terminate_all(exit_within).await {
        stops.push(Stop {
            at: end,
            why: "end of the run".into(),
            exit,
        });
    }
    let recorded = rec.take();
    let history = History {
        peers: cluster.names(),
        answers: recorded.answers,
        terms: recorded.terms,
        faults,
        failures: recorded.failures,
        stops,
        members: recorded.members,
        claims: recorded.claims,
        schedule,
        lives: recorded.lives,
        enrolments: recorded.enrolments,
        settle_from: Some(settle_from),
        steps: recorded.steps,
        witnesses: plan.witness.into_iter().collect(),
        end,
    };
    let report = checker::check(&history, &plan.rules);
    let summary = summary::render(
        plan,
        &cluster.describe(),
        &history,
        &report,
        started.elapsed(),
    );
    eprintln!("{summary}");
    if !report.ok() {
        for v in report.violations.iter().take(20) {
            eprintln!("{}", v.explain(&history));
        }
        eprintln!("{}", cluster.log_tails(30).await);
    }
    // NEMESIS_KEEP=1 keeps the history and logs of a run that passed too, for study.
    let keep_anyway = std::env::var("NEMESIS_KEEP").is_ok_and(|v| v == "1");
    let kept = if !keep_anyway && (report.ok() || !plan.keep_failed) {
        None
    } else {
        // Everything needed to study the failure, next to the peers' logs.
        let dir = cluster.keep().await;
        if let Some(dir) = &dir {
            let mut text = format!("{summary}\n");
            for v in &report.violations {
                text += &v.explain(&history);
                text += "\n";
            }
            let _ = std::fs::write(dir.join("violations.txt"), text);
            let _ = std::fs::write(dir.join("history.txt"), history.dump());
            eprintln!(
                "nemesis: history, violations and logs kept in {}",
                dir.display()
            );
        }
        dir
    };
    cluster.shutdown().await;
    if let Some(p) = client_panic {
        std::panic::resume_unwind(p);
    }
    Outcome {
        planned: plan.faults,
        history,
        report,
        summary,
        kept,
    }
}

impl Outcome {
    /// Whether the run injected every planned fault and checked enough answers to mean
    /// anything; `Err` says what was missing.
    pub fn enough(&self) -> Result<(), String> {
        let (faults, answers) = (self.history.faults.len(), self.report.answers);
        let needed = minimum_answers(self.planned);
        if self.planned == 0 || faults < self.planned {
            return Err(format!(
                "{faults} of {} planned faults injected",
                self.planned
            ));
        }
        if answers < needed {
            return Err(format!("too few answers to mean anything: {answers} checked, at least {needed} needed for {faults} faults"));
        }
        Ok(())
    }

    /// Everything that fails the run: the checker's violations, too few faults or answers.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.report.ok() {
            out.push(format!("the checker found {}", self.report));
        }
        out.extend(self.enough().err());
        out
    }
}

/// The claim entries appended and the claims in them, summed over the peers at `addrs` that
/// answer (their counters since they last started).
async fn claims_appended(addrs: &[std::net::SocketAddr]) -> (f64, f64) {
    let client = reqwest::Client::new();
    let (mut entries, mut claims) = (0.0, 0.0);
    for addr in addrs {
        let Some((_, text)) = testkit::http::get(&client, *addr, "/metrics").await else {
            continue;
        };
        let metric = |name| testkit::metrics::metric(&text, name).unwrap_or(0.0);
        entries += metric("raft_elector_claim_entries_total");
        claims += metric("raft_elector_claims_appended_total");
    }
    (entries, claims)
}
