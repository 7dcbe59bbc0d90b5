//! Leadership that follows the application's health (`--app-health`), with real processes:
//! each peer checks a small HTTP server of the test standing for its application, whose
//! answer the test switches between 200 and 503.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use testkit::{Ask, Cluster};

use crate::spec;

/// One application's health endpoint: answers the status the test sets.
struct App {
    status: Arc<AtomicU16>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start() -> App {
        let status = Arc::new(AtomicU16::new(200));
        let router = Router::new()
            .route(
                "/healthz",
                get(|State(s): State<Arc<AtomicU16>>| async move {
                    StatusCode::from_u16(s.load(Ordering::SeqCst))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                }),
            )
            .with_state(status.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the application");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        App {
            status,
            addr,
            server,
        }
    }

    fn set_healthy(&self, healthy: bool) {
        self.status
            .store(if healthy { 200 } else { 503 }, Ordering::SeqCst);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `n` peers, each checking its own application every 100 ms (unhealthy after 2 failures).
async fn cluster_of(n: usize) -> (Cluster, Vec<App>) {
    let mut c = Cluster::new(spec(n));
    let mut apps = Vec::new();
    for i in 0..n {
        let app = App::start().await;
        c.peers[i].extra.extend([
            format!("--app-health=http://{}/healthz", app.addr),
            "--app-health-interval=100ms".into(),
            "--app-health-timeout=100ms".into(),
            "--app-health-failures=2".into(),
        ]);
        apps.push(app);
    }
    c.spawn_all();
    (c, apps)
}

async fn cluster() -> (Cluster, Vec<App>) {
    cluster_of(3).await
}

/// Waits until peer `i` reports its application's health as `healthy`.
async fn reports(c: &Cluster, i: usize, healthy: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = c.ask(i).await.and_then(|a| a.app_healthy);
        if now == Some(healthy) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peer-{i} still reports app_healthy {now:?}, not {healthy}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// On `n` peers, fails the leader's application and the next peer's: who leads after, with
/// the cluster, the old leader and the other failed peer.
async fn fail_the_leaders_application(n: usize) -> (Cluster, Vec<App>, usize, usize, usize) {
    let (c, apps) = cluster_of(n).await;
    let (leader, term) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    reports(&c, leader, true).await;
    let other = (leader + 1) % n;
    apps[other].set_healthy(false);
    reports(&c, other, false).await;
    let since = Instant::now();
    apps[leader].set_healthy(false);
    let (now, new_term) = c.new_leader(&c.all(), Duration::from_secs(5), term).await;
    eprintln!(
        "{n} peers: leadership moved from peer-{leader} to peer-{now} (term {term} -> {new_term}) {} ms after the leader's application failed",
        since.elapsed().as_millis()
    );
    assert!(now != leader && now != other, "an unhealthy peer leads");
    (c, apps, now, leader, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_application_turns_unhealthy_hands_over_to_the_peer_whose_application_is_healthy(
) {
    // Of three, only the third peer's application is healthy.
    let (c, _apps, now, leader, _) = fail_the_leaders_application(3).await;
    assert!(
        c.log_text(leader)
            .contains("handed leadership to a peer whose application is healthy"),
        "{}",
        c.log_tail(leader, 30)
    );
    assert_eq!(
        c.metric(leader, "raft_elector_app_healthy").await,
        Some(0.0)
    );
    assert_eq!(c.metric(now, "raft_elector_app_healthy").await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_five_peers_an_unhealthy_leader_hands_over_to_a_healthy_peer_too() {
    fail_the_leaders_application(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_peer_never_leads_while_a_healthy_one_can_and_when_none_is_healthy_the_leader_stays(
) {
    let (mut c, apps) = cluster().await;
    let (leader, term) = c.agreed_leader(&c.all(), Duration::from_secs(10)).await;
    let sick = (leader + 1) % 3;
    let healthy = (leader + 2) % 3;
    apps[sick].set_healthy(false);
    reports(&c, sick, false).await;
    // kill -9 of the leader: of the two left, only the healthy one may lead.
    c.kill(leader);
    let survivors = [sick, healthy];
    let (now, term2) = c.new_leader(&survivors, Duration::from_secs(5), term).await;
    assert_eq!(now, healthy, "the unhealthy peer took over");
    assert!(
        !c.log_text(sick)
            .contains("leader hands over: campaigning now"),
        "the unhealthy peer was handed leadership"
    );

    // Now the last healthy application fails too: nobody healthy to hand over to, the leader
    // stays (and says so), as long as the test watches.
    apps[healthy].set_healthy(false);
    reports(&c, healthy, false).await;
    let watch_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < watch_until {
        let (l, t) = c.agreed_leader(&survivors, Duration::from_secs(2)).await;
        assert_eq!(
            (l, t),
            (healthy, term2),
            "the leader changed with no healthy peer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = c.ask(healthy).await.expect("the leader answers");
    assert!(answer.is_leader);
    assert_eq!(answer.app_healthy, Some(false));
    assert!(
        c.log_text(healthy)
            .contains("no other peer's application is healthy: this leader stays"),
        "{}",
        c.log_tail(healthy, 30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_app_health_flags_are_refused_with_a_clear_error() {
    for (flags, expected) in [
        (
            vec!["--app-health", "localhost:8080/healthz"],
            "--app-health must be an http:// URL",
        ),
        (
            vec![
                "--app-health",
                "http://127.0.0.1:8080/healthz",
                "--app-health-failures",
                "0",
            ],
            "must be above zero",
        ),
    ] {
        let c = Cluster::new(spec(1));
        let out = c.command(0).args(&flags).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}
