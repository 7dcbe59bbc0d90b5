//! A Server-Sent Events reader over a real connection, for the push tests: `GET path` with
//! `Accept: text/event-stream` (and `Last-Event-ID` if given), then events one by one. Comment
//! lines (keep-alives) are counted, not returned.

use std::net::SocketAddr;
use std::time::Duration;

/// One event: its `id:` (if any) and its `data:` lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    /// The data as JSON (panics if it is not: the stream broke its contract).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {:?}", self.data))
    }
}

/// An open event stream.
pub struct Stream {
    resp: reqwest::Response,
    buf: String,
    /// Comment lines seen so far.
    pub comments: usize,
}

impl Stream {
    /// Opens `path` at `addr`; the status and the stream, or `None` if no answer came within
    /// `timeout` (non-200 answers are returned too, as status with no stream use).
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        last_event_id: Option<&str>,
        timeout: Duration,
    ) -> Option<(u16, Stream)> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(timeout)
            .build()
            .ok()?;
        let mut req = client
            .get(format!("http://{addr}{path}"))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = tokio::time::timeout(timeout, req.send()).await.ok()?.ok()?;
        let status = resp.status().as_u16();
        Some((
            status,
            Stream {
                resp,
                buf: String::new(),
                comments: 0,
            },
        ))
    }

    /// The next event within `timeout`; `None` at the deadline or when the stream ends.
    pub async fn next(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.next_event())
            .await
            .ok()
            .flatten()
    }

    /// Events until one satisfies `want` (returned) within `timeout`, with those before it.
    pub async fn until(
        &mut self,
        timeout: Duration,
        want: impl Fn(&Event) -> bool,
    ) -> (Option<Event>, Vec<Event>) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) if want(&e) => return (Some(e), before),
                Some(e) => before.push(e),
                None => return (None, before),
            }
        }
    }

    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(e) = self.parse(&block) {
                    return Some(e);
                }
                continue;
            }
            let chunk = self.resp.chunk().await.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    fn parse(&mut self, block: &str) -> Option<Event> {
        let mut id = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') {
                self.comments += 1;
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            } else if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.strip_prefix(' ').unwrap_or(v).to_string());
            }
        }
        (!data.is_empty()).then(|| Event {
            id,
            data: data.join("\n"),
        })
    }
}
