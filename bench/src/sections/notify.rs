//! Notification latency (issue 13): how soon an application learns of a new leader by push
//! (`GET /v1/leader/events`, Server-Sent Events; the blocking `GET /v1/leader?term=N`) and by
//! the seed's pattern, polling every 1 s or 5 s.
//!
//! Each trial: 3 peers; an SSE stream and a blocking query open on a follower F; the leader is
//! killed (kill -9); the bench asks every survivor every 5 ms until they agree on a new leader
//! (`agreed`, the reference). Push delay = when the SSE event (or the blocking query's answer)
//! naming the new leader reached the client, minus `agreed`: negative when the event arrived
//! before the 5 ms poll saw every survivor agree. Polling delay: an application polling every
//! P sees the change at its next poll, so each trial draws the poll's phase at random in [0, P)
//! and counts the wait from `agreed` to the next poll (not measured: what polling gives by
//! construction, shown next to push).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::sse::Stream;
use testkit::{Ask, Rng};

use super::{ms, started, SETTLE};
use crate::cli::Args;
use crate::stats::Summary;

/// When the SSE stream first names a leader that is neither `old` nor nobody, and that name.
async fn sse_until(mut s: Stream, old: String) -> Option<(Instant, String)> {
    let (event, _) = s
        .until(Duration::from_secs(10), |e| {
            let n = e.json()["name"].as_str().unwrap_or("").to_string();
            !n.is_empty() && n != old
        })
        .await;
    let at = Instant::now();
    event.map(|e| (at, e.json()["name"].as_str().unwrap_or("").to_string()))
}

/// When a blocking query first answers with a leader that is neither `old` nor nobody (asked
/// again while it names nobody), and that name.
async fn long_poll_until(
    client: reqwest::Client,
    addr: std::net::SocketAddr,
    old: String,
    term: u64,
) -> Option<(Instant, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut name, mut term) = (old.clone(), term);
    while Instant::now() < deadline {
        let url = format!("http://{addr}/v1/leader?term={term}&name={name}&wait=10s");
        let v: Value = client.get(url).send().await.ok()?.json().await.ok()?;
        let at = Instant::now();
        name = v["name"].as_str().unwrap_or("").to_string();
        term = v["term"].as_u64().unwrap_or(term);
        if !name.is_empty() && name != old {
            return Some((at, name));
        }
    }
    None
}

/// The wait from a change until the next poll of an application polling every `period`, the
/// poll's phase drawn at random.
fn poll_delay(period: Duration, rng: &mut Rng) -> f64 {
    ms(rng.up_to(period))
}

pub(super) async fn notify(exe: &Path, args: &Args) -> Result<Value, String> {
    let mut rng = Rng::fresh();
    let (mut c, _) = started(exe, 3, &[], false).await?;
    let all = c.all();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let (mut sse, mut lp) = (Summary::default(), Summary::default());
    let (mut poll1, mut poll5) = (Summary::default(), Summary::default());
    let mut since_kill = Summary::default();
    for trial in 0..args.trials {
        tokio::time::sleep(SETTLE + rng.up_to(Duration::from_millis(30))).await;
        let Some(cur) = c.agreed(&all, Duration::from_secs(10)).await else {
            return Err(format!("notify, trial {trial}: cluster did not settle"));
        };
        let l = cur.leader;
        let f = (l + 1) % 3;
        let old = c.peers[l].name.clone();
        let addr = c.peers[f].http;
        let Some((200, mut stream)) =
            Stream::open(addr, "/v1/leader/events", None, Duration::from_secs(2)).await
        else {
            return Err(format!(
                "notify, trial {trial}: no event stream on peer {f}"
            ));
        };
        // The current state comes first.
        if stream.next(Duration::from_secs(2)).await.is_none() {
            return Err(format!("notify, trial {trial}: no first event"));
        }
        let sse_task = tokio::spawn(sse_until(stream, old.clone()));
        let lp_task = tokio::spawn(long_poll_until(client.clone(), addr, old.clone(), cur.term));
        // Let the blocking query reach the peer before the kill.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        c.kill(l);
        let survivors = c.all_but(l);
        let agreed = c
            .agreed_where(&survivors, Duration::from_secs(10), |leader, term| {
                leader != l && term > cur.term
            })
            .await
            .map_err(|_| format!("notify, trial {trial}: no new leader within 10 s"))?;
        let new = c.peers[agreed.leader].name.clone();
        let pushed = sse_task.await.ok().flatten();
        let polled = lp_task.await.ok().flatten();
        let after = |got: &Option<(Instant, String)>, sum: &mut Summary| match got {
            Some((at, name)) if *name == new => {
                let d = if *at >= agreed.at {
                    ms(*at - agreed.at)
                } else {
                    -ms(agreed.at - *at)
                };
                sum.push(d);
                format!("{d:+.1} ms")
            }
            Some((_, name)) => {
                sum.failed += 1;
                format!("named {name}, not the agreed {new}")
            }
            None => {
                sum.failed += 1;
                "nothing within 10 s".into()
            }
        };
        let sse_text = after(&pushed, &mut sse);
        let lp_text = after(&polled, &mut lp);
        if let Some((at, _)) = &pushed {
            since_kill.push(ms(*at - t0));
        }
        poll1.push(poll_delay(Duration::from_secs(1), &mut rng));
        poll5.push(poll_delay(Duration::from_secs(5), &mut rng));
        eprintln!(
            "bench: notify trial {trial}: new leader agreed {:.0} ms after kill -9; SSE {sse_text}, blocking query {lp_text} after that",
            ms(agreed.at - t0)
        );
        c.spawn(l);
        if c.agreed(&all, Duration::from_secs(20)).await.is_none() {
            return Err(format!(
                "notify, trial {trial}: the restarted peer did not rejoin\n{}",
                c.log_tail(l, 20)
            ));
        }
    }
    Ok(json!({
        "sse": sse.to_json(),
        "long_poll": lp.to_json(),
        "poll_1s": poll1.to_json(),
        "poll_5s": poll5.to_json(),
        "sse_since_kill": since_kill.to_json(),
    }))
}
