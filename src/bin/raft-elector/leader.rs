//! `raft-elector leader`: asks a running peer who leads.

use std::time::Duration;

use crate::cli::LeaderArgs;

/// What a running peer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderAnswer {
    /// A leader is known: its name and term, and the full JSON answer.
    Known {
        name: String,
        term: u64,
        json: serde_json::Value,
    },
    /// No leader is known right now (the peer's term is given).
    Unknown { term: u64, json: serde_json::Value },
}

/// Why the peer could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach raft-elector at {addr}: {source}")]
    Http {
        addr: String,
        source: reqwest::Error,
    },
    #[error("unexpected answer from {addr}: {detail}")]
    Answer { addr: String, detail: String },
}

/// Asks the peer whose application API is `args.http`.
pub async fn ask(args: &LeaderArgs) -> Result<LeaderAnswer, ClientError> {
    let addr = args.http.to_string();
    let http_err = |source| ClientError::Http {
        addr: addr.clone(),
        source,
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(args.timeout)
        .connect_timeout(args.timeout.min(Duration::from_secs(1)))
        .build()
        .map_err(http_err)?;
    let resp = client
        .get(format!("http://{addr}/v1/leader"))
        .send()
        .await
        .map_err(http_err)?;
    let status = resp.status();
    let json: serde_json::Value = resp.json().await.map_err(http_err)?;
    let name = json.get("name").and_then(|v| v.as_str());
    let term = json.get("term").and_then(|v| v.as_u64());
    match (status.as_u16(), name, term) {
        (200, Some(name), Some(term)) if !name.is_empty() => Ok(LeaderAnswer::Known {
            name: name.to_string(),
            term,
            json,
        }),
        (503, Some(""), Some(term)) => Ok(LeaderAnswer::Unknown { term, json }),
        _ => Err(ClientError::Answer {
            addr,
            detail: format!("HTTP {status}: {json}"),
        }),
    }
}
