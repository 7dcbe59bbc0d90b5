//! Asking a peer's application API over HTTP: the client every harness uses, `GET` of a path,
//! and the question "who leads?".

use std::net::SocketAddr;
use std::time::Duration;

use crate::answer::Answer;

/// A client for loopback and container addresses: no proxy from the environment, answers
/// within `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()
        .expect("http client")
}

/// `GET path` at `addr`: status and body; `None` if no whole answer came.
pub async fn get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let resp = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// `POST path` at `addr` with a JSON `body`: status, `Retry-After` if any, and body; `None`
/// if no whole answer came.
pub async fn post_json(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    body: &str,
) -> Option<(u16, Option<String>, String)> {
    let resp = client
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Some((status, retry, resp.text().await.ok()?))
}

/// `GET /v1/leader` at `addr`, whatever the status (503 when no leader is known); `None` if no
/// answer came or it breaks the contract.
pub async fn ask(client: &reqwest::Client, addr: SocketAddr) -> Option<Answer> {
    ask_parsed(client, addr, Answer::parse).await
}

/// [`ask`], with the answer read by `parse` (e.g. [`Answer::parse_either_release`]).
pub async fn ask_parsed(
    client: &reqwest::Client,
    addr: SocketAddr,
    parse: fn(&[u8]) -> Option<Answer>,
) -> Option<Answer> {
    let resp = client
        .get(format!("http://{addr}/v1/leader"))
        .send()
        .await
        .ok()?;
    parse(&resp.bytes().await.ok()?)
}
