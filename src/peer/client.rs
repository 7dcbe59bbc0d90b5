//! The outgoing side of peer traffic: signs a request, sends it, decodes the answer. No
//! policy: what to ask, when, and what an answer means for the lease is the caller's
//! ([`crate::leadership`]).

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::{self, PeerAuth, Signed};
use super::links::{LinkOptions, Links, Routed};
use super::protocol::{
    self, AppHealthAnswer, ClaimRequest, DoneRequest, Features, JobAnswer, JoinRequest,
    LeaveRequest, MembershipAnswer, PeerInfo, PeerStatus, PreVoteRequest, PreVoteResponse,
};
use super::tls::PeerTls;
use crate::raft::PeerNode;
use crate::wire::{self, DecodeError};

/// Why a peer call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach peer at {addr}: {source}")]
    Transport {
        addr: String,
        source: reqwest::Error,
    },
    #[error("cannot reach peer at {addr} over its stream: {reason}")]
    Stream {
        addr: String,
        reason: String,
        /// Nothing accepted a connection there.
        unreachable: bool,
    },
    #[error("peer at {addr} refused the request ({status}): {reason}")]
    Refused {
        addr: String,
        status: u16,
        reason: String,
    },
    #[error("undecodable answer from peer at {addr}: {source}")]
    Decode { addr: String, source: DecodeError },
}

impl CallError {
    /// Whether nothing accepted a connection at the peer's address (refused, no route, no such
    /// name, timed out): the peer is not running there. Anything else (a connection closed
    /// unanswered, a failed TLS handshake, a refusal) means something listens.
    pub fn nothing_listens(&self) -> bool {
        match self {
            CallError::Transport { source, .. } => source.is_connect(),
            CallError::Stream { unreachable, .. } => *unreachable,
            CallError::Refused { .. } | CallError::Decode { .. } => false,
        }
    }
}

/// Who this client speaks for, and how.
pub struct ClientOptions {
    /// The election every request names.
    pub election: String,
    /// This peer's name, the sender of every request.
    pub me: String,
    /// How long to wait for a connection to be established.
    pub connect_timeout: Duration,
    /// Signs every request when the election has a peer secret.
    pub auth: Option<Arc<PeerAuth>>,
    /// Speak over one long-lived stream per peer ([`super::links`]), dropping a connection
    /// whose calls get nothing back for this long; `None`: one HTTP request per call.
    pub stream_stall: Option<Duration>,
    /// Peer TLS: streams then open only over TLS ([`super::tls`]), and never fall back to
    /// HTTP.
    pub tls: Option<Arc<PeerTls>>,
}

/// An HTTP client for peer requests, shared by everything that talks to other peers.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    election: Arc<str>,
    me: Arc<str>,
    auth: Option<Arc<PeerAuth>>,
    links: Option<Arc<Links>>,
}

impl PeerClient {
    pub fn new(options: ClientOptions) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let links = options.stream_stall.map(|stall| {
            Arc::new(Links::new(LinkOptions {
                election: options.election.clone(),
                me: options.me.clone(),
                connect_timeout: options.connect_timeout,
                stall,
                auth: options.auth.clone(),
                tls: options.tls.clone(),
            }))
        });
        Ok(PeerClient {
            http,
            election: options.election.into(),
            me: options.me.into(),
            auth: options.auth,
            links,
        })
    }

    /// Whether requests to peer `name` would go over an open stream now (always `false`
    /// without streams, or when the peer speaks only HTTP).
    pub fn has_stream(&self, name: &str) -> bool {
        self.links.as_ref().is_none_or(|l| l.is_open(name))
    }

    /// Closes the peer streams and waits for their tasks.
    pub async fn shutdown(&self) {
        if let Some(links) = &self.links {
            links.shutdown().await;
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        to: &PeerNode,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let time_ms = auth::now_ms();
        let mut req = self
            .http
            .request(method.clone(), format!("http://{}{path}", to.addr))
            .header(protocol::ELECTION_HEADER, &*self.election)
            .header(protocol::FROM_HEADER, &*self.me)
            .header(protocol::PROTOCOL_HEADER, protocol::PROTOCOL_VERSION)
            .header(auth::TO_HEADER, &to.name)
            .header(auth::TIME_HEADER, time_ms.to_string());
        if let Some(a) = &self.auth {
            let signed = Signed {
                method: method.as_str(),
                path,
                election: &self.election,
                from: &self.me,
                to: &to.name,
                time_ms,
            };
            req = req.header(auth::MAC_HEADER, a.sign(&signed, &body));
        }
        req.body(body)
    }

    /// Sends a request over the peer's stream, or over HTTP when the peer does not speak
    /// streams (or streams are off); returns the status and body of the answer.
    async fn exchange(
        &self,
        method: reqwest::Method,
        to: &PeerNode,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, bytes::Bytes), CallError> {
        let body = match &self.links {
            Some(links) => match links.call(to, path, body, timeout).await {
                Routed::Answer(status, body) => return Ok((status, body)),
                Routed::Failed(reason) => {
                    let addr = to.addr.clone();
                    let unreachable = false;
                    return Err(CallError::Stream {
                        addr,
                        reason,
                        unreachable,
                    });
                }
                Routed::Unreachable(reason) => {
                    let addr = to.addr.clone();
                    let unreachable = true;
                    return Err(CallError::Stream {
                        addr,
                        reason,
                        unreachable,
                    });
                }
                Routed::Http(body) => body,
            },
            None => body,
        };
        let transport = |source| CallError::Transport {
            addr: to.addr.clone(),
            source,
        };
        let req = self.request(method, to, path, body);
        let sent = async {
            let resp = req.timeout(timeout).send().await?;
            let status = resp.status().as_u16();
            Ok((status, resp.bytes().await?))
        };
        match sent.await {
            Ok(answer) => Ok(answer),
            Err(e) => {
                if let Some(links) = &self.links {
                    links.unreachable_over_http(to).await;
                }
                Err(transport(e))
            }
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        to: &PeerNode,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let addr = &to.addr;
        let (status, body) = self.exchange(method, to, path, body, timeout).await?;
        if !(200..300).contains(&status) {
            let reason = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            return Err(CallError::Refused {
                addr: addr.to_string(),
                status,
                reason,
            });
        }
        wire::decode(&body).map_err(|source| CallError::Decode {
            addr: addr.to_string(),
            source,
        })
    }

    /// GETs `path` from peer `to` and decodes the answer.
    async fn get<T: DeserializeOwned>(
        &self,
        to: &PeerNode,
        path: &str,
        timeout: Duration,
    ) -> Result<T, CallError> {
        self.send(reqwest::Method::GET, to, path, Vec::new(), timeout)
            .await
    }

    /// POSTs `body` to `path` on peer `to` and decodes the answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        to: &PeerNode,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let body = wire::encode(body);
        self.send(reqwest::Method::POST, to, path, body, timeout)
            .await
    }

    /// Asks peer `to` about itself.
    pub async fn status(&self, to: &PeerNode, timeout: Duration) -> Result<PeerStatus, CallError> {
        self.get(to, protocol::STATUS_PATH, timeout).await
    }

    /// Asks peer `to` whether it would vote for this peer.
    pub async fn pre_vote(
        &self,
        to: &PeerNode,
        req: &PreVoteRequest,
        timeout: Duration,
    ) -> Result<PreVoteResponse, CallError> {
        self.call(to, protocol::PREVOTE_PATH, req, timeout).await
    }

    /// Asks peer `to` to campaign now (this leader is handing over to it).
    pub async fn handoff(&self, to: &PeerNode, timeout: Duration) -> Result<(), CallError> {
        self.call(to, protocol::HANDOFF_PATH, &(), timeout).await
    }

    /// Asks peer `to` to make this peer (or, forwarded, another one) a member.
    pub async fn join(
        &self,
        to: &PeerNode,
        req: &JoinRequest,
        timeout: Duration,
    ) -> Result<MembershipAnswer, CallError> {
        self.call(to, protocol::JOIN_PATH, req, timeout).await
    }

    /// Asks peer `to` to remove a peer from the membership.
    pub async fn leave(
        &self,
        to: &PeerNode,
        req: &LeaveRequest,
        timeout: Duration,
    ) -> Result<MembershipAnswer, CallError> {
        self.call(to, protocol::LEAVE_PATH, req, timeout).await
    }

    /// Asks peer `to` whether its application is healthy.
    pub async fn app_health(
        &self,
        to: &PeerNode,
        timeout: Duration,
    ) -> Result<AppHealthAnswer, CallError> {
        self.get(to, protocol::APP_HEALTH_PATH, timeout).await
    }

    /// Asks peer `to` what it is.
    pub async fn info(&self, to: &PeerNode, timeout: Duration) -> Result<PeerInfo, CallError> {
        self.get(to, protocol::INFO_PATH, timeout).await
    }

    /// Asks peer `to` what its release supports (a release before the job ledger answers
    /// 404: [`CallError::Refused`] with that status).
    pub async fn features(&self, to: &PeerNode, timeout: Duration) -> Result<Features, CallError> {
        self.get(to, protocol::FEATURES_PATH, timeout).await
    }

    /// Asks peer `to` for its release's capabilities ([`protocol::CAPABILITIES`]; a release
    /// before them answers 404: [`CallError::Refused`] with that status).
    pub async fn capabilities(
        &self,
        to: &PeerNode,
        timeout: Duration,
    ) -> Result<Vec<String>, CallError> {
        self.get(to, protocol::CAPABILITIES_PATH, timeout).await
    }

    /// Asks the leader `to` to grant this peer a job slot.
    pub async fn claim(
        &self,
        to: &PeerNode,
        req: &ClaimRequest,
        timeout: Duration,
    ) -> Result<JobAnswer, CallError> {
        self.call(to, protocol::CLAIM_PATH, req, timeout).await
    }

    /// Asks the leader `to` to record a slot's outcome.
    pub async fn done(
        &self,
        to: &PeerNode,
        req: &DoneRequest,
        timeout: Duration,
    ) -> Result<JobAnswer, CallError> {
        self.call(to, protocol::DONE_PATH, req, timeout).await
    }
}
