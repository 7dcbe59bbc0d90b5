//! The answer of `GET /v1/leader` (and of `raft-elector leader --json`), as the application API
//! promises it: every field required, no other field accepted. A change of that JSON contract
//! makes every question of every suite fail to parse, instead of passing unnoticed.

use serde::Deserialize;

/// A peer's Raft role as the API names it (informational; `is_leader` is what counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    Candidate,
    Leader,
    Learner,
    Stopped,
}

/// What `GET /v1/leader` answered. About the peer asked: its name (`id`), `election` and
/// `role`. Its answer: the leader's `name` (empty when it knows none for sure), the `term` of
/// that leadership (else its current term), whether it `is_leader` (checked against its lease),
/// and for how long, at most, all this stays true (`valid_ms`); the number of `voters` of
/// the membership in force as it knows it; with `--app-health`, `app_healthy`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub id: String,
    pub election: String,
    pub role: Role,
    pub name: String,
    pub term: u64,
    pub is_leader: bool,
    pub valid_ms: u64,
    pub voters: u64,
    /// With `--app-health`: whether the peer's application is healthy.
    #[serde(default)]
    pub app_healthy: Option<bool>,
}

impl Answer {
    /// Parses an answer; `None` for anything that breaks the contract.
    pub fn parse(body: &[u8]) -> Option<Answer> {
        serde_json::from_slice(body).ok()
    }

    /// Parses an answer of this release or, failing that, one of the previous release
    /// ([`crate::release`]), whose contract had no `voters` (then 0): for a cluster in a
    /// rolling upgrade only.
    pub fn parse_either_release(body: &[u8]) -> Option<Answer> {
        Answer::parse(body).or_else(|| {
            let p: PreviousAnswer = serde_json::from_slice(body).ok()?;
            Some(Answer {
                id: p.id,
                election: p.election,
                role: p.role,
                name: p.name,
                term: p.term,
                is_leader: p.is_leader,
                valid_ms: p.valid_ms,
                voters: 0,
                app_healthy: None,
            })
        })
    }
}

/// The contract of the previous release: every field of [`Answer`] but `voters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviousAnswer {
    id: String,
    election: String,
    role: Role,
    name: String,
    term: u64,
    is_leader: bool,
    valid_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: &str = r#"{"name":"web-1","term":7,"is_leader":true,"id":"web-1","election":"jobs","role":"leader","valid_ms":150,"voters":3}"#;

    #[test]
    fn reads_every_field_of_the_contract() {
        let a = Answer::parse(LEADER.as_bytes()).expect("parses");
        assert_eq!(
            a,
            Answer {
                id: "web-1".into(),
                election: "jobs".into(),
                role: Role::Leader,
                name: "web-1".into(),
                term: 7,
                is_leader: true,
                valid_ms: 150,
                voters: 3,
                app_healthy: None,
            }
        );
    }

    #[test]
    fn the_previous_release_contract_is_read_only_when_asked_for() {
        let previous = LEADER.replace(r#","voters":3"#, "");
        assert_eq!(Answer::parse(previous.as_bytes()), None);
        let a = Answer::parse_either_release(previous.as_bytes()).expect("parses");
        assert_eq!((a.name.as_str(), a.term, a.voters), ("web-1", 7, 0));
        let current = Answer::parse_either_release(LEADER.as_bytes()).expect("parses");
        assert_eq!(current.voters, 3);
        let extra = previous.replace(r#""valid_ms":150"#, r#""valid_ms":150,"x":1"#);
        assert_eq!(Answer::parse_either_release(extra.as_bytes()), None);
    }

    #[test]
    fn a_missing_an_extra_or_a_mistyped_field_breaks_the_contract() {
        let missing = LEADER.replace(r#","valid_ms":150"#, "");
        let extra = LEADER.replace(r#""valid_ms":150"#, r#""valid_ms":150,"x":1"#);
        let role = LEADER.replace(r#""leader""#, r#""boss""#);
        let term = LEADER.replace(r#""term":7"#, r#""term":"7""#);
        for body in [missing, extra, role, term] {
            assert_eq!(Answer::parse(body.as_bytes()), None, "{body}");
        }
    }
}
