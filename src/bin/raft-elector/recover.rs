//! `raft-elector recover`: the way out when a majority of the voters is gone for good (like
//! etcd's `--force-new-cluster`). On a STOPPED peer's data directory, it replaces the stored
//! membership by exactly the peers named, all voters, under a new term.
//!
//! Before writing, with the database open (so that no peer can start on it meanwhile), it
//! asks every other member of the stored membership and of the new one for its status, and
//! refuses, changing nothing, when a quorum of the stored voters (this peer counted) answers,
//! when any peer answers but cannot be read, or when one is ahead of this peer (a newer term
//! or a longer log). See `docs/DESIGN.md`, "Recovery".

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use raft_elector::config::{self, ConfigError, Peer};
use raft_elector::peer::auth::{AuthError, PeerAuth};
use raft_elector::peer::client::{ClientOptions, PeerClient};
use raft_elector::peer::protocol::PeerStatus;
use raft_elector::peer::tls::PeerTls;
use raft_elector::raft::{vote_for, vote_term, LogId, NodeId, PeerNode, StoredMembership};
use raft_elector::store::{ForceReport, Recovery, RecoveryError, Stored};

use crate::cli::RecoverArgs;

/// Why nothing was recovered.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("refusing to change anything without --force-new-membership. `recover` replaces the Raft membership stored in {0} \
             by exactly the peers given with --peers (or --replicas), all voters, under a new term, so that they can elect \
             without the voters that are gone. Use it only when a majority of the voters is lost for good, with this peer \
             stopped, on one survivor (the one with the newest log), and wipe the data of every voter left out before it ever \
             starts again: voters left out that come back with their old data could elect a second leader. It \
             asks the other members first and refuses while a majority of them answers. See docs/DESIGN.md, \"Recovery\"")]
    NotConfirmed(PathBuf),
    #[error("invalid arguments: {0}")]
    Config(#[from] ConfigError),
    #[error("invalid peer secret: {0}")]
    Auth(#[from] AuthError),
    #[error("peer TLS: {0}")]
    Tls(#[from] raft_elector::peer::tls::TlsError),
    #[error("cannot build the peer client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("nothing was changed: {0}")]
    Store(#[from] RecoveryError),
    #[error("refusing to recover, nothing was changed: the majority is still there ({reachable} answer with this peer); \
             use the normal scale-down/leave instead, or stop them first if they are really to be left out")]
    QuorumReachable { reachable: String },
    #[error("refusing to recover, nothing was changed: {peer} answers but its status cannot be read ({reason}); \
             pass the election's peer secret (and its --peer-tls-* files if it speaks TLS), or stop it if it is to be left out")]
    Unreadable { peer: String, reason: String },
    #[error("refusing to recover, nothing was changed: {peer} is at term {theirs}, newer than this peer's stored vote (term {mine}); \
             it may know a newer membership: recover from it (or a peer as recent), not from this one")]
    NewerTerm {
        peer: String,
        theirs: u64,
        mine: u64,
    },
    #[error("refusing to recover, nothing was changed: {peer} has a longer log (last index {theirs}, this peer {mine}); \
             recover on {peer} instead (naming it in --peers)")]
    LongerLog {
        peer: String,
        theirs: u64,
        mine: String,
    },
}

/// What asking one other peer gave.
#[derive(Debug, Clone)]
pub enum Outcome {
    Status(PeerStatus),
    /// It answered, but not with a readable status (refused, or undecodable).
    Unreadable(String),
    /// No answer: it is not running, or not reachable.
    Unreachable(String),
}

/// One other peer asked, and what it gave.
#[derive(Debug, Clone)]
pub struct Probe {
    pub id: NodeId,
    pub node: PeerNode,
    pub outcome: Outcome,
}

pub async fn run(args: RecoverArgs) -> Result<(), RecoverError> {
    if !args.force_new_membership {
        return Err(RecoverError::NotConfirmed(args.data_dir));
    }
    config::validate_election(&args.election)?;
    let id = match &args.id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .ok_or(ConfigError::MissingId)?,
    };
    // The new voters: those listed, and with --replicas the derived pods too.
    let listed = args.peers.as_deref().map(config::parse_peers).transpose()?;
    let members = match args.replicas {
        Some(n) => {
            let domain = args
                .peer_domain
                .as_deref()
                .ok_or(ConfigError::ReplicasWithoutDomain)?;
            let mut peers = config::statefulset_peers(&id, n, domain, args.peer_port)?;
            peers.extend(listed.unwrap_or_default());
            config::merge_peers(peers)?
        }
        None => listed.ok_or(ConfigError::NoPeers)?,
    };
    let me = config::find_me(&members, &id)?;
    let auth = match args.secret()? {
        Some(secret) => Some(Arc::new(PeerAuth::new(&secret, Duration::from_secs(30))?)),
        None => None,
    };
    // A handful of one-off questions: HTTP each, or over TLS streams when the election
    // speaks TLS (it then accepts nothing else).
    let tls = match args.peer_tls.files(true)? {
        Some(files) => Some(Arc::new(PeerTls::load(files)?)),
        None => None,
    };
    let client = PeerClient::new(ClientOptions {
        election: args.election.clone(),
        me: me.name.clone(),
        connect_timeout: args.timeout,
        auth,
        stream_stall: tls.as_ref().map(|_| args.timeout),
        tls,
    })?;

    // Held open (and locked) from here until the membership is written or refused.
    let recovery = Recovery::open(&args.data_dir, &args.election, &me.name)?;
    let stored = recovery.stored().clone();
    println!(
        "{} (peer {} of election {}):",
        args.data_dir.display(),
        me.name,
        args.election
    );
    println!("  stored membership: {}", describe(&stored.membership));
    println!("  stored vote: {}", describe_vote(&stored));
    println!(
        "  new membership: voters {}",
        names(members.iter().map(|p| p.name.as_str()))
    );

    let probes = ask_others(&client, &stored, &members, me.id, args.timeout).await;
    for p in &probes {
        println!("  {}", describe_probe(p));
    }
    judge(me.id, &stored, &probes)?;

    let report = recovery.force(members.iter().map(|p| (p.id, p.node())).collect())?;
    print_report(&args, &me, &members, &report);
    Ok(())
}

/// Asks every other member of the stored and of the new membership, at once; the new list's
/// address wins for a peer in both.
async fn ask_others(
    client: &PeerClient,
    stored: &Stored,
    members: &[Peer],
    me: NodeId,
    timeout: Duration,
) -> Vec<Probe> {
    let mut targets: BTreeMap<NodeId, PeerNode> = stored
        .membership
        .membership()
        .nodes()
        .map(|(id, node)| (*id, node.clone()))
        .collect();
    targets.extend(members.iter().map(|p| (p.id, p.node())));
    targets.remove(&me);
    let asks = targets.into_iter().map(|(id, node)| async move {
        let outcome = match client.status(&node, timeout).await {
            Ok(status) => Outcome::Status(status),
            // A peer port that accepts the connection and then closes it (it speaks TLS, and
            // this run was given no TLS files) is a peer that runs: never "unreachable".
            Err(e) if e.nothing_listens() => Outcome::Unreachable(e.to_string()),
            Err(e) => Outcome::Unreadable(e.to_string()),
        };
        Probe { id, node, outcome }
    });
    futures::future::join_all(asks).await
}

/// Refuses when forcing could split the election: see the module documentation.
pub fn judge(me: NodeId, stored: &Stored, probes: &[Probe]) -> Result<(), RecoverError> {
    let answered = |id: &NodeId| {
        *id == me
            || probes
                .iter()
                .any(|p| p.id == *id && !matches!(p.outcome, Outcome::Unreachable(_)))
    };
    let membership = stored.membership.membership();
    let configs = membership.get_joint_config();
    let quorum = configs
        .iter()
        .all(|voters| voters.iter().filter(|id| answered(id)).count() * 2 > voters.len());
    if quorum {
        let reachable = configs
            .iter()
            .flatten()
            .filter(|id| answered(id))
            .map(|id| name_of(&stored.membership, probes, *id))
            .collect::<std::collections::BTreeSet<_>>();
        return Err(RecoverError::QuorumReachable {
            reachable: reachable.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    let mine = stored.vote.as_ref().map_or(0, vote_term);
    let my_last = stored.last_log_id.map(|id| id.index);
    for p in probes {
        match &p.outcome {
            Outcome::Unreachable(_) => {}
            Outcome::Unreadable(reason) => {
                return Err(RecoverError::Unreadable {
                    peer: p.node.to_string(),
                    reason: reason.clone(),
                })
            }
            Outcome::Status(s) if s.term > mine => {
                return Err(RecoverError::NewerTerm {
                    peer: p.node.to_string(),
                    theirs: s.term,
                    mine,
                })
            }
            Outcome::Status(s) => {
                if let Some(theirs) = s.last_log_index.filter(|&i| Some(i) > my_last) {
                    return Err(RecoverError::LongerLog {
                        peer: p.node.name.clone(),
                        theirs,
                        mine: my_last.map_or("none".into(), |i| i.to_string()),
                    });
                }
            }
        }
    }
    Ok(())
}

fn name_of(m: &StoredMembership, probes: &[Probe], id: NodeId) -> String {
    m.membership()
        .get_node(&id)
        .map(|n| n.name.clone())
        .or_else(|| {
            probes
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.node.name.clone())
        })
        .unwrap_or_else(|| id.to_string())
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<&str> = names.collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

fn at(id: &Option<LogId>) -> String {
    match id {
        Some(id) => format!("log index {}, term {}", id.index, id.leader_id.term),
        None => "no log id".into(),
    }
}

fn describe(m: &StoredMembership) -> String {
    let members = m.membership();
    let name = |id: NodeId| {
        members
            .get_node(&id)
            .map_or_else(|| id.to_string(), |n| n.to_string())
    };
    let configs: Vec<String> = members
        .get_joint_config()
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|id| name(*id)).collect();
            names.sort_unstable();
            names.join(", ")
        })
        .collect();
    let mut learners: Vec<String> = members.learner_ids().map(name).collect();
    learners.sort_unstable();
    let mut text = format!("voters {}", configs.join(" / "));
    if configs.len() > 1 {
        text.push_str(" (joint)");
    }
    if !learners.is_empty() {
        text.push_str(&format!(", learners {}", learners.join(", ")));
    }
    format!("{text} ({})", at(m.log_id()))
}

fn describe_vote(stored: &Stored) -> String {
    match &stored.vote {
        None => "none".into(),
        Some(v) => format!(
            "term {}{}{}",
            vote_term(v),
            vote_for(v).map_or(String::new(), |id| format!(
                ", for {}",
                name_of(&stored.membership, &[], id)
            )),
            if v.is_committed() { ", committed" } else { "" }
        ),
    }
}

fn describe_probe(p: &Probe) -> String {
    match &p.outcome {
        Outcome::Status(s) => format!(
            "{}: answers, term {}, last log index {}",
            p.node,
            s.term,
            s.last_log_index
                .map_or("none".into(), |i: u64| i.to_string())
        ),
        Outcome::Unreadable(why) => format!("{}: answers, unreadable: {why}", p.node),
        Outcome::Unreachable(why) => format!("{}: no answer ({why})", p.node),
    }
}

fn print_report(args: &RecoverArgs, me: &Peer, members: &[Peer], report: &ForceReport) {
    println!("FORCED A NEW MEMBERSHIP in {}:", args.data_dir.display());
    println!("  old membership: {}", describe(&report.old));
    println!("  new membership: {}", describe(&report.new));
    println!(
        "  new term: {}, vote committed for {}",
        report.term(),
        me.name
    );
    if let Some(upto) = report.purged_to {
        println!(
            "  (the log lagged behind the installed snapshot and was purged up to it: {})",
            at(&Some(upto))
        );
    }
    let list: Vec<String> = members
        .iter()
        .map(|p| format!("{}={}", p.name, p.addr))
        .collect();
    println!(
        "Next: start {} with --peers {} (every member named there with the same list); it leads term {} \
         once a majority of them reaches it. Wipe the data of every voter left out before it ever starts again.",
        me.name,
        list.join(","),
        report.term()
    );
}

#[cfg(test)]
mod tests;
