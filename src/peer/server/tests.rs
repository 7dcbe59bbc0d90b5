//! The peer handlers against a fake local peer: admission, decoding and dispatch, with no Raft.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::Request;
use tower::ServiceExt;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::peer::auth::MIN_SECRET;

/// Answers every request the same way and counts the calls that reached it.
#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
    leader: Option<NodeId>,
}

impl Fake {
    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl PeerService for Arc<Fake> {
    async fn append(
        &self,
        _: AppendRequest,
        _: bool,
        _: Instant,
    ) -> Result<AppendResponse, RaftError> {
        self.called();
        Ok(AppendResponse::Success)
    }
    async fn vote(&self, req: VoteRequest) -> Result<VoteResponse, RaftError> {
        self.called();
        Ok(VoteResponse::new(req.vote, req.last_log_id, false))
    }
    async fn snapshot(
        &self,
        _: SnapshotRequest,
    ) -> Result<SnapshotResponse, RaftError<InstallSnapshotError>> {
        unreachable!("no snapshot in these tests")
    }
    async fn pre_vote(&self, _: PreVoteRequest, _: NodeId) -> PreVoteResponse {
        self.called();
        PreVoteResponse { granted: true }
    }
    fn status(&self) -> PeerStatus {
        self.called();
        PeerStatus {
            election: "jobs".into(),
            peer: "a".into(),
            members_digest: 7,
            initialized: true,
            term: 3,
            last_log_index: Some(9),
        }
    }
    fn app_health(&self) -> AppHealthAnswer {
        self.called();
        AppHealthAnswer {
            healthy: Some(false),
        }
    }
    fn info(&self) -> PeerInfo {
        self.called();
        PeerInfo {
            peer: "a".into(),
            witness: false,
            leaving: false,
            term: 3,
            last_log_index: Some(9),
        }
    }
    async fn join(&self, req: JoinRequest, _: String) -> MembershipAnswer {
        self.called();
        if req.name.starts_with("web-") {
            MembershipAnswer::Done {
                standing: crate::members::Standing::Learner,
                index: 4,
            }
        } else {
            MembershipAnswer::Refused {
                code: "not_sibling".into(),
                reason: format!("{:?} is not a pod of StatefulSet \"web\"", req.name),
            }
        }
    }
    async fn leave(&self, _: LeaveRequest, _: String) -> MembershipAnswer {
        self.called();
        MembershipAnswer::Later {
            reason: "no leader is known".into(),
        }
    }
    fn features(&self) -> Features {
        Features { ledger: true }
    }
    /// Echoes the holder it was given, so tests see it is the admitted sender.
    async fn claim(&self, req: ClaimRequest, from: String) -> JobAnswer {
        self.called();
        JobAnswer::Refused {
            reason: format!("{} {} {from}", req.job, req.slot),
        }
    }
    async fn done(&self, _: DoneRequest, _: String) -> JobAnswer {
        self.called();
        JobAnswer::Later {
            reason: "no leader is known".into(),
        }
    }
    async fn handoff(&self, from: NodeId) -> Result<(), HandoffRefused> {
        self.called();
        match self.leader == Some(from) {
            true => Ok(()),
            false => Err(HandoffRefused::NotMyLeader),
        }
    }
}

const SECRET: &[u8; MIN_SECRET] = b"0123456789abcdef";

fn server(fake: &Arc<Fake>, secret: bool) -> (Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new("jobs", "a"));
    let auth = secret.then(|| {
        Arc::new(PeerAuth::new(SECRET, Duration::from_secs(30)).expect("secret long enough"))
    });
    let admission = Admission {
        election: "jobs".into(),
        me: "a".into(),
        senders: Arc::new(|name: &str| ["a", "b", "c", "web-4"].contains(&name)),
        contacts: Arc::new(Contacts::default()),
        metrics: metrics.clone(),
        auth,
        tls_names: None,
    };
    let streams = Streams::new(
        CancellationToken::new(),
        Duration::from_millis(200),
        metrics.clone(),
    );
    (router(admission, fake.clone(), streams), metrics)
}

/// A request as peer `from` of `election` sends it now, signed when `secret` is given.
fn request(
    method: &str,
    path: &str,
    election: &str,
    from: &str,
    body: Vec<u8>,
    secret: Option<&[u8]>,
) -> Request<Body> {
    Sent {
        method,
        path,
        election,
        from,
        secret,
        time_ms: auth::now_ms(),
    }
    .build(body)
}

/// A peer request's head, as a peer signs it.
struct Sent<'a> {
    method: &'a str,
    path: &'a str,
    election: &'a str,
    from: &'a str,
    secret: Option<&'a [u8]>,
    time_ms: u64,
}

impl Sent<'_> {
    fn build(&self, body: Vec<u8>) -> Request<Body> {
        let Sent {
            method,
            path,
            election,
            from,
            secret,
            time_ms,
        } = *self;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(protocol::ELECTION_HEADER, election)
            .header(protocol::FROM_HEADER, from)
            .header(protocol::PROTOCOL_HEADER, protocol::PROTOCOL_VERSION)
            .header(auth::TO_HEADER, "a")
            .header(auth::TIME_HEADER, time_ms.to_string());
        if let Some(secret) = secret {
            let signer = PeerAuth::new(secret, Duration::from_secs(30)).expect("secret");
            let signed = Signed {
                method,
                path,
                election,
                from,
                to: "a",
                time_ms,
            };
            req = req.header(auth::MAC_HEADER, signer.sign(&signed, &body));
        }
        req.body(Body::from(body)).expect("request")
    }
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = router.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, body.to_vec())
}

fn refused(metrics: &Metrics, reason: &str) -> bool {
    metrics
        .render()
        .lines()
        .any(|l| l.contains(&format!("reason=\"{reason}\"")) && l.ends_with(" 1"))
}

/// Sends `req` to a fresh server and checks that it was refused with `status`, counted under
/// `reason`, and never reached the local peer. Returns the refusal's text.
async fn refused_before_the_peer(req: Request<Body>, status: StatusCode, reason: &str) -> String {
    let fake = Arc::new(Fake::default());
    let (router, metrics) = server(&fake, false);
    let (got, body) = send(&router, req).await;
    assert_eq!(got, status);
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        0,
        "the request reached the peer"
    );
    assert!(refused(&metrics, reason), "not counted as {reason:?}");
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn a_request_of_another_election_is_refused_before_anything_is_decoded() {
    let garbage = vec![0xff; 64];
    let req = request("POST", protocol::VOTE_PATH, "other", "b", garbage, None);
    let why = refused_before_the_peer(req, StatusCode::FORBIDDEN, "election").await;
    assert!(why.contains("not \"other\""), "{why}");
}

#[tokio::test]
async fn a_stranger_and_this_peer_s_own_name_are_refused() {
    for from in ["z", "a"] {
        let req = request("GET", protocol::STATUS_PATH, "jobs", from, vec![], None);
        refused_before_the_peer(req, StatusCode::FORBIDDEN, "sender").await;
    }
}

#[tokio::test]
async fn another_protocol_version_is_refused() {
    let mut req = request("GET", protocol::STATUS_PATH, "jobs", "b", vec![], None);
    req.headers_mut()
        .insert(protocol::PROTOCOL_HEADER, "99".parse().expect("header"));
    refused_before_the_peer(req, StatusCode::BAD_REQUEST, "protocol").await;
}

#[tokio::test]
async fn a_member_s_malformed_body_is_refused_and_never_reaches_the_peer() {
    let req = request(
        "POST",
        protocol::VOTE_PATH,
        "jobs",
        "b",
        vec![1, 2, 3],
        None,
    );
    refused_before_the_peer(req, StatusCode::BAD_REQUEST, "malformed").await;
}

#[tokio::test]
async fn an_admitted_request_is_answered_by_the_local_peer() {
    let fake = Arc::new(Fake::default());
    let (router, _) = server(&fake, false);
    let req = request("GET", protocol::STATUS_PATH, "jobs", "b", vec![], None);
    let (status, body) = send(&router, req).await;
    assert_eq!(status, StatusCode::OK);
    let answer: PeerStatus = wire::decode(&body).expect("a status record");
    assert_eq!((answer.term, answer.last_log_index), (3, Some(9)));
    let req = request(
        "POST",
        protocol::PREVOTE_PATH,
        "jobs",
        "c",
        wire::encode(&PreVoteRequest { last_log_id: None }),
        None,
    );
    let (status, body) = send(&router, req).await;
    assert_eq!(status, StatusCode::OK);
    let answer: PreVoteResponse = wire::decode(&body).expect("a pre-vote answer");
    assert!(answer.granted);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_hand_off_from_a_peer_that_is_not_the_leader_is_refused_with_409() {
    let fake = Arc::new(Fake {
        leader: Some(node_id("b")),
        ..Fake::default()
    });
    let (router, metrics) = server(&fake, false);
    let handoff = |from| {
        request(
            "POST",
            protocol::HANDOFF_PATH,
            "jobs",
            from,
            wire::encode(&()),
            None,
        )
    };
    assert_eq!(send(&router, handoff("c")).await.0, StatusCode::CONFLICT);
    assert!(refused(&metrics, "handoff"));
    assert_eq!(send(&router, handoff("b")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn with_a_secret_only_signed_requests_get_through() {
    let fake = Arc::new(Fake::default());
    let (router, metrics) = server(&fake, true);
    let unsigned = request("GET", protocol::STATUS_PATH, "jobs", "b", vec![], None);
    assert_eq!(send(&router, unsigned).await.0, StatusCode::UNAUTHORIZED);
    let wrong = request(
        "GET",
        protocol::STATUS_PATH,
        "jobs",
        "b",
        vec![],
        Some(b"another-secret-of-16"),
    );
    assert_eq!(send(&router, wrong).await.0, StatusCode::UNAUTHORIZED);
    assert!(metrics.render().contains("reason=\"auth\""));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    let now = auth::now_ms();
    let sent = Sent {
        method: "GET",
        path: protocol::STATUS_PATH,
        election: "jobs",
        from: "b",
        secret: Some(SECRET),
        time_ms: now,
    };
    let signed = || sent.build(vec![]);
    assert_eq!(send(&router, signed()).await.0, StatusCode::OK);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    // The very same request again is a replay.
    assert_eq!(send(&router, signed()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_claim_s_holder_is_the_admitted_sender_and_a_stranger_s_claim_is_refused() {
    let fake = Arc::new(Fake::default());
    let (router, _) = server(&fake, false);
    let claim = ClaimRequest {
        job: "mail".into(),
        slot: "2026-12-03T12:00:00Z".into(),
    };
    let req = request(
        "POST",
        protocol::CLAIM_PATH,
        "jobs",
        "c",
        wire::encode(&claim),
        None,
    );
    let (status, body) = send(&router, req).await;
    assert_eq!(status, StatusCode::OK);
    let answer: JobAnswer = wire::decode(&body).expect("a job answer");
    assert_eq!(
        answer,
        JobAnswer::Refused {
            reason: "mail 2026-12-03T12:00:00Z c".into()
        }
    );
    let req = request(
        "POST",
        protocol::CLAIM_PATH,
        "jobs",
        "z",
        wire::encode(&claim),
        None,
    );
    refused_before_the_peer(req, StatusCode::FORBIDDEN, "sender").await;
    let req = request("POST", protocol::DONE_PATH, "jobs", "b", vec![9, 9], None);
    refused_before_the_peer(req, StatusCode::BAD_REQUEST, "malformed").await;
}
