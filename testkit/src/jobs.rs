//! The job ledger's API as an application uses it: claim a slot, report its outcome, read a
//! job's ledger; and [`Grants`], the record of every grant answered, which checks that no
//! slot was ever granted to two holders or with two tokens, and that tokens grow with the
//! order of grants.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;

/// One answer of the job API.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Reply {
    /// The grant's holder and token (201, 200 and 409 carry them).
    pub fn holder_token(&self) -> Option<(String, u64)> {
        Some((
            self.body["holder"].as_str()?.to_string(),
            self.body["token"].as_u64()?,
        ))
    }
}

/// A client of the job API: answers within 5 s (a claim's budget is 2 s, plus forwarding).
pub fn client() -> reqwest::Client {
    http::client(Duration::from_secs(5))
}

async fn post(client: &reqwest::Client, addr: SocketAddr, path: &str, body: &str) -> Option<Reply> {
    let (status, retry_after, text) = http::post_json(client, addr, path, body).await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Some(Reply {
        status,
        retry_after,
        body,
    })
}

/// Percent-encodes a path segment.
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `POST /v1/jobs/{job}/claims {"slot"}` at `addr`; `None` if no whole answer came.
pub async fn claim(
    client: &reqwest::Client,
    addr: SocketAddr,
    job: &str,
    slot: &str,
) -> Option<Reply> {
    let body = serde_json::json!({ "slot": slot }).to_string();
    post(
        client,
        addr,
        &format!("/v1/jobs/{}/claims", segment(job)),
        &body,
    )
    .await
}

/// Claims until the answer is a decision (not a 503, not a lost answer), for at most
/// `timeout`; `None` when none came.
pub async fn claim_decided(
    client: &reqwest::Client,
    addr: SocketAddr,
    job: &str,
    slot: &str,
    timeout: Duration,
) -> Option<Reply> {
    let deadline = Instant::now() + timeout;
    loop {
        match claim(client, addr, job, slot).await {
            Some(r) if r.status != 503 => return Some(r),
            _ if Instant::now() >= deadline => return None,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `POST /v1/jobs/{job}/claims/{slot}/done`.
pub async fn report(
    client: &reqwest::Client,
    addr: SocketAddr,
    job: &str,
    slot: &str,
    body: &Value,
) -> Option<Reply> {
    let path = format!("/v1/jobs/{}/claims/{}/done", segment(job), segment(slot));
    post(client, addr, &path, &body.to_string()).await
}

/// `GET /v1/jobs/{job}`: status and JSON body.
pub async fn ledger(client: &reqwest::Client, addr: SocketAddr, job: &str) -> Option<(u16, Value)> {
    let (status, text) = http::get(client, addr, &format!("/v1/jobs/{}", segment(job))).await?;
    Some((status, serde_json::from_str(&text).ok()?))
}

/// Every grant any peer answered (201 or 200), and every holder a 409 named: a slot must
/// always be named with one holder and one token.
#[derive(Debug, Default)]
pub struct Grants {
    /// (job, slot) → (holder, token, who told).
    seen: BTreeMap<(String, String), (String, u64, String)>,
}

impl Grants {
    /// Records an answer to a claim of (job, slot) by `asker`; `Err` describes a violation.
    pub fn record(
        &mut self,
        job: &str,
        slot: &str,
        asker: &str,
        reply: &Reply,
    ) -> Result<(), String> {
        if !matches!(reply.status, 200 | 201 | 409) {
            return Ok(());
        }
        let Some((holder, token)) = reply.holder_token() else {
            return Err(format!(
                "{asker}: a {} without holder and token: {}",
                reply.status, reply.body
            ));
        };
        if matches!(reply.status, 200 | 201) && holder != asker {
            return Err(format!(
                "{asker} was granted ({}) a slot held by {holder}: {job}/{slot}",
                reply.status
            ));
        }
        if reply.status == 409 && holder == asker {
            return Err(format!("{asker} was refused its own slot {job}/{slot}"));
        }
        let key = (job.to_string(), slot.to_string());
        match self.seen.get(&key) {
            None => {
                self.seen.insert(key, (holder, token, asker.to_string()));
                Ok(())
            }
            Some((h, t, _)) if (h, *t) == (&holder, token) => Ok(()),
            Some((h, t, told)) => Err(format!(
                "slot {job}/{slot} granted twice: to {h} with token {t} (told {told}) and to {holder} with token {token} (told {asker})"
            )),
        }
    }

    /// Slots recorded.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Every token is unique across all slots (tokens are log indexes: one grant each).
    pub fn tokens_unique(&self) -> Result<(), String> {
        let mut by_token: BTreeMap<u64, &(String, String)> = BTreeMap::new();
        for (key, (_, token, _)) in &self.seen {
            if let Some(other) = by_token.insert(*token, key) {
                return Err(format!(
                    "token {token} names two slots: {other:?} and {key:?}"
                ));
            }
        }
        Ok(())
    }

    /// The recorded (holder, token) of a slot.
    pub fn get(&self, job: &str, slot: &str) -> Option<(String, u64)> {
        self.seen
            .get(&(job.to_string(), slot.to_string()))
            .map(|(h, t, _)| (h.clone(), *t))
    }
}
