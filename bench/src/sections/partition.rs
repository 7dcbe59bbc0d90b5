//! Partition heal: one follower cut off from the others by the link proxies, then healed.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use testkit::{Answer, Ask, Mode, Rng};

use super::{ms, started, SETTLE};
use crate::cli::Args;
use crate::stats::Summary;

/// A follower is cut off from every other peer, then the link heals: does the leader change?
pub(super) async fn partitions(exe: &Path, args: &Args) -> Result<Value, String> {
    const ISOLATION: Duration = Duration::from_millis(1500);
    const OBSERVE: Duration = Duration::from_millis(2000);
    let mut out = Map::new();
    let mut rng = Rng::fresh();
    for n in [3usize, 5] {
        let (c, _) = started(exe, n, &[], true).await?;
        let all = c.all();
        let mut rejoin = Summary::default();
        let mut disruption = Summary::default();
        let (mut changed, mut majority_changed_during_cut, mut term_bumps) = (0u32, 0u32, 0u64);
        let mut isolated_term_rise = Vec::new();
        let mut disruption_kinds = std::collections::BTreeMap::new();
        for trial in 0..args.trials {
            tokio::time::sleep(SETTLE + rng.up_to(Duration::from_millis(30))).await;
            let Some(cur) = c.agreed(&all, Duration::from_secs(10)).await else {
                return Err(format!("{n} peers, trial {trial}: cluster did not settle"));
            };
            let (l, term) = (cur.leader, cur.term);
            let f = (l + 1 + trial % (n - 1)) % n;
            let leader_name = c.peers[l].name.clone();
            let is_stable = |a: &Option<Answer>| {
                a.as_ref()
                    .is_some_and(|a| a.name == leader_name && a.term == term)
            };
            // Cut.
            c.proxies().cut(&[f], &c.all_but(f), Mode::Drop);
            let cut_end = Instant::now() + ISOLATION;
            let mut f_max_term = term;
            let mut majority_moved = false;
            while Instant::now() < cut_end {
                let answers = c.ask_all(&all).await;
                for (&i, a) in all.iter().zip(&answers) {
                    if i == f {
                        if let Some(a) = a {
                            f_max_term = f_max_term.max(a.term);
                        }
                    } else if !is_stable(a) {
                        majority_moved = true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Heal, and watch every peer.
            c.proxies().heal();
            let healed = Instant::now();
            let mut rejoined: Option<Duration> = None;
            let mut last_disruption: Option<Duration> = None;
            while healed.elapsed() < OBSERVE {
                let answers = c.ask_all(&all).await;
                let now = healed.elapsed();
                for (&i, a) in all.iter().zip(&answers) {
                    if i != f && !is_stable(a) {
                        last_disruption = Some(now);
                        // What a non-isolated peer said instead of the old leader and term.
                        let kind = match a {
                            None => "no answer",
                            Some(a) if a.name.is_empty() => "unknown",
                            Some(a) if a.term != term => "other term",
                            Some(_) => "other leader",
                        };
                        *disruption_kinds.entry(kind).or_insert(0u32) += 1;
                    }
                }
                if rejoined.is_none() && answers.iter().all(is_stable) {
                    rejoined = Some(now);
                }
                tokio::time::sleep(c.poll()).await;
            }
            let fin = c.agreed(&all, Duration::from_secs(10)).await;
            let moved = fin.is_none_or(|a| a.leader != l || a.term != term);
            if moved {
                changed += 1;
            }
            if majority_moved {
                majority_changed_during_cut += 1;
            }
            if let Some(a) = fin {
                term_bumps += a.term.saturating_sub(term);
            }
            isolated_term_rise.push(f_max_term - term);
            match rejoined {
                Some(d) => rejoin.push(ms(d)),
                None => rejoin.failed += 1,
            }
            disruption.push(last_disruption.map_or(0.0, ms));
            eprintln!(
                "bench: partition {n} peers trial {trial}: leader changed: {moved}, rejoined after {:?}, isolated peer's term +{}",
                rejoined.map(ms),
                f_max_term - term
            );
        }
        out.insert(
            n.to_string(),
            json!({
                "trials": args.trials,
                "isolation_ms": ms(ISOLATION),
                "leader_changed_after_heal": changed,
                "majority_lost_leader_during_cut": majority_changed_during_cut,
                "term_increase_total": term_bumps,
                "isolated_peer_term_rise": isolated_term_rise,
                "rejoin": rejoin.to_json(),
                "majority_disruption": disruption.to_json(),
                "majority_disruption_answers": disruption_kinds,
            }),
        );
    }
    Ok(Value::Object(out))
}
