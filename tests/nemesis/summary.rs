//! The summary printed after every run: faults by kind, answers checked, unavailability
//! windows by fault kind, recovery after repair, and the checker's verdict.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::checker::Report;
use crate::history::{FaultKind, History, Micros};
use crate::run::Plan;

fn median(v: &mut [Micros]) -> Micros {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(us: Micros) -> String {
    format!("{}", us / 1000)
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn render(plan: &Plan, target: &str, h: &History, r: &Report, elapsed: Duration) -> String {
    let mut out = String::new();
    out += &format!(
        "== nemesis summary [{}]: {} peers (and {} spares), seed {}, {} faults in {:.0} s ==\n{target}\n",
        plan.label,
        plan.peers,
        plan.spares,
        plan.seed,
        h.faults.len(),
        elapsed.as_secs_f64()
    );
    let mut by_kind: BTreeMap<FaultKind, usize> = BTreeMap::new();
    for f in &h.faults {
        *by_kind.entry(f.kind).or_default() += 1;
    }
    out += "faults injected by kind:";
    for (k, n) in &by_kind {
        out += &format!(" {k} {n};");
    }
    out += "\n";
    out += &format!(
        "answers checked: {} (leader claims {}, naming a leader {}, no leader {}); metrics term samples {}; requests without answer {} (of peers meant to run)\n",
        thousands(r.answers),
        thousands(r.claims),
        thousands(r.naming),
        thousands(r.unknown),
        thousands(r.term_samples),
        thousands(
            h.failures
                .iter()
                .filter(|f| h.enrolled(f.peer, f.sent))
                .count()
        )
    );
    let unavailable = h.claims.iter().filter(|c| c.status == 503).count();
    out += &format!(
        "job claims: {} answers ({} naming a holder, {} answered 503 to retry), {} slots granted (rules 13-15)\n",
        thousands(h.claims.len()),
        thousands(r.claim_answers),
        thousands(unavailable),
        thousands(r.slots_granted)
    );
    if h.schedule.is_some() {
        out += &format!(
            "scheduled job: {} runs, {} slots recorded lost (rules 16-17)\n",
            thousands(r.schedule_runs),
            thousands(r.schedule_lost)
        );
    }

    // Windows and per-fault totals, by the kind of the fault they followed.
    let mut windows: BTreeMap<Option<FaultKind>, Vec<Micros>> = BTreeMap::new();
    let mut totals: Vec<Micros> = vec![0; h.faults.len()];
    for w in &r.windows {
        let kind = w.fault.map(|i| h.faults[i].kind);
        windows.entry(kind).or_default().push(w.len());
        if let Some(i) = w.fault {
            totals[i] += w.len();
        }
    }
    out += "unavailability (no leader agreed by a majority of peers), by the fault it followed:\n";
    out += &format!(
        "  {:<15} {:>6} {:>8} {:>10} {:>8} {:>14} {:>12}\n",
        "fault", "faults", "windows", "median ms", "max ms", "per fault: med", "max ms"
    );
    let startup = windows.get(&None).cloned().unwrap_or_default();
    if !startup.is_empty() {
        out += &format!(
            "  {:<15} {:>6} {:>8} {:>10} {:>8}\n",
            "(first election)",
            "-",
            startup.len(),
            ms(median(&mut startup.clone())),
            ms(startup.iter().copied().max().unwrap_or(0))
        );
    }
    for (kind, count) in &by_kind {
        let mut ws = windows.get(&Some(*kind)).cloned().unwrap_or_default();
        let mut per: Vec<Micros> = h
            .faults
            .iter()
            .zip(&totals)
            .filter(|(f, _)| f.kind == *kind)
            .map(|(_, t)| *t)
            .collect();
        out += &format!(
            "  {:<15} {:>6} {:>8} {:>10} {:>8} {:>14} {:>12}\n",
            kind.name(),
            count,
            ws.len(),
            ms(median(&mut ws)),
            ms(ws.iter().copied().max().unwrap_or(0)),
            ms(median(&mut per)),
            ms(per.iter().copied().max().unwrap_or(0))
        );
    }
    out += "recovery after repair (every peer names the same leader, which claims it):\n";
    for kind in by_kind.keys() {
        let mut rs: Vec<Micros> = h
            .faults
            .iter()
            .zip(&r.recovery)
            .filter(|(f, _)| f.kind == *kind)
            .filter_map(|(_, r)| *r)
            .collect();
        let never = h
            .faults
            .iter()
            .zip(&r.recovery)
            .filter(|(f, r)| f.kind == *kind && r.is_none())
            .count();
        out += &format!(
            "  {:<15} median {:>5} ms, max {:>5} ms{}\n",
            kind.name(),
            ms(median(&mut rs)),
            ms(rs.iter().copied().max().unwrap_or(0)),
            if never > 0 {
                format!(", {never} never")
            } else {
                String::new()
            }
        );
    }
    out += &format!(
        "follower answers naming a leader already replaced: {} within {} ms of the replacement (at most {} ms after it), {} later while a fault held heartbeats back (at most {} ms after it)\n",
        r.replaced_named.count,
        ms(plan.rules.delivery + plan.rules.follower_window),
        ms(r.replaced_named.max),
        r.excused.count,
        ms(r.excused.max)
    );
    out += &format!(
        "membership: {} /v1/members answers, {} membership indexes; {} claims checked against the claimant's own membership before and after; {} falls of an index from a membership never seen applied (allowed); {} after the last fault\n",
        thousands(r.members_samples),
        r.membership_indexes,
        thousands(r.claims_bracketed),
        r.back_excused,
        match r.settled {
            Some(t) => format!("every running peer listed the running peers {} ms", ms(t)),
            None if h.settle_from.is_some() => "the running peers NEVER all listed the running peers".into(),
            None => "not checked".into(),
        }
    );
    if let Some((higher, lower)) = &r.first_excused {
        out += &format!(
            "  the first such fall: {}, then {}\n",
            h.show_members(higher),
            h.show_members(lower)
        );
    }
    out += &format!(
        "peers stopped with SIGTERM: {} (slowest exit {} ms)\n",
        r.exits.count,
        ms(r.exits.max)
    );
    out += &format!(
        "bounds: all peers agree within {} ms of each repair; no outage over {} ms while a majority is up and connected; follower window {} ms after a heartbeat arrived, heartbeats arrive within {} ms unless a fault held them; exit 0 within {} ms of SIGTERM; answers fresh for {} ms; the membership settles within {} ms of the last fault\n",
        ms(plan.rules.heal_bound),
        ms(plan.rules.outage_bound),
        ms(plan.rules.follower_window),
        ms(plan.rules.delivery),
        ms(plan.rules.shutdown_bound),
        ms(plan.rules.fresh),
        ms(plan.rules.members_bound)
    );
    out += &format!("checker: {r}\n");
    out
}
