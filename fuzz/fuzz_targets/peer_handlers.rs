//! Arbitrary requests into the peer listener's router, backed by a real single-peer Raft node
//! on a temporary sled store: admission checks, decoding and the handlers themselves.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use raft_elector::config::{Config, Peer, Timing};
use raft_elector::leadership::jobs::Jobs;
use raft_elector::leadership::membership::Changes;
use raft_elector::leadership::{Leadership, LocalPeer, NetworkFactory};
use raft_elector::metrics::Metrics;
use raft_elector::peer::client::{ClientOptions, PeerClient};
use raft_elector::peer::contacts::Contacts;
use raft_elector::peer::server::{self, Admission};
use raft_elector::raft::{node_id, PeerNode, Raft};
use tower::ServiceExt;

struct Fixture {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("tmp");
        let router = rt.block_on(async {
            let (log, sm, _) = raft_elector::store::open(&dir.path().join("d"), "fuzz", "a").expect("store");
            let ledger = sm.ledger();
            let timing = Timing::default();
            let (a, b) = (node_id("a"), node_id("b"));
            let leadership = Arc::new(Leadership::new(a, [a, b], timing));
            let metrics = Arc::new(Metrics::new("fuzz", "a"));
            let client = PeerClient::new(ClientOptions {
                election: "fuzz".into(),
                me: "a".into(),
                connect_timeout: Duration::from_millis(50),
                auth: None,
                stream_stall: None,
                tls: None,
            })
            .expect("client");
            let contacts = Arc::new(Contacts::default());
            let network = NetworkFactory::new(client.clone(), leadership.clone(), metrics.clone(), contacts.clone(), Duration::from_millis(50));
            let raft_config = openraft::Config {
                heartbeat_interval: 30,
                election_timeout_min: 100,
                election_timeout_max: 200,
                ..Default::default()
            };
            let raft = Raft::new(a, Arc::new(raft_config.validate().expect("config")), network, log.clone(), sm)
                .await
                .expect("raft");
            let members = [(a, PeerNode { name: "a".into(), addr: "127.0.0.1:1".into() }), (b, PeerNode { name: "b".into(), addr: "127.0.0.1:2".into() })];
            let _ = raft.initialize(members.into_iter().collect::<std::collections::BTreeMap<_, _>>()).await;
            let peers = vec![Peer::new("a".into(), "127.0.0.1:1".into()), Peer::new("b".into(), "127.0.0.1:2".into())];
            let config = Config {
                election: "fuzz".into(),
                me: peers[0].clone(),
                peers,
                membership: Default::default(),
                peer_listen: "127.0.0.1:1".parse().expect("addr"),
                http: "127.0.0.1:3".parse().expect("addr"),
                probe_http: None,
                data_dir: dir.path().join("d"),
                timing,
                shutdown_timeout: Duration::from_secs(1),
                snapshot_logs: 1000,
                peer_secret: None,
                peer_auth_window: Duration::from_secs(30),
                peer_streams: false,
                peer_tls: None,
                max_streams: 16,
                app_health: None,
                job_history: 10,
                schedules: Default::default(),
            };
            let admission = Admission {
                election: "fuzz".into(),
                me: "a".into(),
                senders: Arc::new(|name: &str| name == "a" || name == "b"),
                contacts,
                metrics: metrics.clone(),
                auth: None,
                tls_names: None,
            };
            let config = Arc::new(config);
            let changes = Arc::new(Changes::new(raft.clone(), config.clone(), client.clone(), leadership.clone()));
            let jobs = Arc::new(Jobs::new(raft.clone(), config.clone(), client, leadership.clone(), ledger, metrics.clone()));
            let local = LocalPeer { raft, log, leadership, config, changes, jobs };
            let streams = server::Streams::new(Default::default(), Duration::from_millis(200), metrics.clone());
            server::router(admission, local, streams)
        });
        Fixture { rt, router, _dir: dir }
    })
}

const PATHS: [&str; 15] = [
    "/raft/v2/stream",
    "/raft/v1/append",
    "/raft/v1/vote",
    "/raft/v1/snapshot",
    "/raft/v1/handoff",
    "/raft/v1/prevote",
    "/raft/v1/status",
    "/raft/v1/join",
    "/raft/v1/leave",
    "/raft/v1/info",
    "/raft/v1/features",
    "/raft/v1/claim",
    "/raft/v1/done",
    "/raft/v1/unknown",
    "/",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let f = fixture();
    let path = PATHS[(selector as usize) % PATHS.len()];
    let mut req = Request::builder().method(if selector & 8 == 0 { "POST" } else { "GET" });
    if path == "/raft/v2/stream" {
        // A stream's handshake: its query (the nonce) and upgrade header from the input.
        let query: String = body.iter().map(|&b| b as char).filter(|c| c.is_ascii_alphanumeric() || "=&%-_".contains(*c)).collect();
        req = req.uri(format!("{path}?{query}"));
        if selector & 4 == 0 {
            req = req.header("upgrade", "raft-elector-frames/1").header("connection", "upgrade");
        }
    } else {
        req = req.uri(path);
    }
    // Mostly well-formed admission headers, sometimes not, so both sides are exercised.
    if selector & 0x10 == 0 {
        req = req.header("x-raft-elector-election", "fuzz");
    }
    if selector & 0x20 == 0 {
        req = req.header("x-raft-elector-from", if selector & 0x40 == 0 { "b" } else { "a" });
    }
    if selector & 0x80 == 0 {
        req = req.header("x-raft-elector-protocol", "1");
    }
    let req = req.body(Body::from(body.to_vec())).expect("request");
    let status = f.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), f.router.clone().oneshot(req)).await
    });
    let status = status.expect("a peer request hung").expect("infallible").status();
    assert!(status.as_u16() != 500, "internal error on {path}");
});
