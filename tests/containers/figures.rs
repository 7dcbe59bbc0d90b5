//! Failover figures in containers, for the README (ignored by default; a few minutes):
//!
//!   cargo nextest run --test containers --run-ignored only failover_figures --no-capture
//!
//! Repeats `docker kill` and `docker stop` of the current leader (ROUNDS each, default 10;
//! set RAFT_ELECTOR_FIGURE_ROUNDS), restarting the victim and waiting for all three to agree
//! between rounds, and prints the median and maximum time until the two others agree on a
//! new leader with a higher term.

use std::time::Duration;

use testkit::Ask;

use crate::failover::{kill_leader, stop_leader};
use crate::three_peers;

fn summary(what: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = if v.len() % 2 == 1 {
        ms(v[v.len() / 2])
    } else {
        (ms(v[v.len() / 2 - 1]) + ms(v[v.len() / 2])) / 2.0
    };
    format!(
        "{what}: n={} median {median:.0} ms, min {:.0} ms, max {:.0} ms; all: {:?}",
        v.len(),
        ms(v[0]),
        ms(v[v.len() - 1]),
        v.iter().map(|d| ms(*d).round() as u64).collect::<Vec<_>>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check: run with --run-ignored only"]
async fn failover_figures() {
    let rounds: usize = std::env::var("RAFT_ELECTOR_FIGURE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let c = three_peers("failover_figures").await;
    let mut kills = Vec::new();
    let mut stops = Vec::new();
    let mut exits = Vec::new();
    let mut commands = Vec::new();
    for _ in 0..rounds {
        let (victim, _) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
        let (took, _, _) = kill_leader(&c).await;
        kills.push(took);
        c.start_peer(victim).await;

        let (victim, _) = c.agreed_leader(&c.all(), Duration::from_secs(30)).await;
        let s = stop_leader(&c).await;
        assert_eq!(s.code, 0);
        stops.push(s.failover);
        exits.push(s.exited.expect("exit time"));
        commands.push(s.command);
        c.start_peer(victim).await;
    }
    eprintln!(
        "{}",
        summary(
            "docker kill of the leader -> new leader agreed by the two others",
            kills
        )
    );
    eprintln!(
        "{}",
        summary(
            "docker stop of the leader -> new leader agreed by the two others",
            stops
        )
    );
    eprintln!(
        "{}",
        summary("docker stop of the leader -> process exited 0", exits)
    );
    eprintln!(
        "{}",
        summary("docker stop command (exit + Docker's clean-up)", commands)
    );
}
