//! Joins and leaves as the cluster sees them: a follower forwards a peer's request to its
//! leader once; the leader checks it and makes the change, one at a time, through openraft's
//! joint consensus, answering only once it is committed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ChangeMembershipError, ClientWriteError};
use openraft::ChangeMembers;

use super::plan::Change;
use crate::config::{self, Config};
use crate::leadership::Leadership;
use crate::members::{Members, Standing};
use crate::peer::client::{CallError, PeerClient};
use crate::peer::protocol::{JoinRequest, LeaveRequest, MembershipAnswer, PeerInfo};
use crate::raft::{node_id, NodeId, PeerNode, Raft, RaftStatus};

/// Between two tries to ask a joining or leaving peer about itself ([`Changes::probe`]).
const PROBE_PAUSE: Duration = Duration::from_millis(100);

/// How long the leader tries to make one requested change before answering "later".
const CHANGE_BUDGET: Duration = Duration::from_secs(3);

/// The membership changes this peer makes as leader, and the requests it forwards.
pub struct Changes {
    pub raft: Raft,
    pub config: Arc<Config>,
    pub client: PeerClient,
    /// A leader that is shutting down makes no change: it would race its own hand-off (the
    /// successor must hold every entry to win).
    leadership: Arc<Leadership>,
    /// Members known to be witnesses (from their joins and from probes).
    witnesses: Mutex<BTreeSet<NodeId>>,
    /// One change at a time from this peer.
    serial: tokio::sync::Mutex<()>,
}

fn refused(code: &str, reason: String) -> MembershipAnswer {
    MembershipAnswer::Refused {
        code: code.to_string(),
        reason,
    }
}

fn later(reason: impl Into<String>) -> MembershipAnswer {
    MembershipAnswer::Later {
        reason: reason.into(),
    }
}

impl Changes {
    pub fn new(
        raft: Raft,
        config: Arc<Config>,
        client: PeerClient,
        leadership: Arc<Leadership>,
    ) -> Self {
        let mut witnesses = BTreeSet::new();
        if config.membership.witness {
            witnesses.insert(config.me.id);
        }
        Changes {
            raft,
            config,
            client,
            leadership,
            witnesses: Mutex::new(witnesses),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// Records whether member `id` is a witness.
    pub fn note_witness(&self, id: NodeId, witness: bool) {
        let mut w = self.witnesses.lock().unwrap_or_else(|p| p.into_inner());
        if witness {
            w.insert(id);
        } else {
            w.remove(&id);
        }
    }

    /// The members known to be witnesses.
    pub fn witnesses(&self) -> BTreeSet<NodeId> {
        self.witnesses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn members(&self) -> Members {
        Members::from_metrics(&self.raft.metrics().borrow())
    }

    /// Where to forward a request this peer cannot handle: its leader, unless that is itself.
    fn leader_node(&self) -> Option<PeerNode> {
        let m = self.raft.metrics().borrow().clone();
        let leader = m.current_leader.filter(|id| *id != self.config.me.id)?;
        m.membership_config.membership().get_node(&leader).cloned()
    }

    fn leading(&self) -> bool {
        RaftStatus::of(&self.raft).reported_leader(self.config.me.id)
    }

    /// A join request, sent by `from`.
    pub async fn join(&self, req: JoinRequest, from: String) -> MembershipAnswer {
        if !self.config.may_speak(&req.name) {
            return refused(
                "not_sibling",
                format!(
                    "{:?} is not a pod of StatefulSet {:?} nor a configured peer",
                    req.name,
                    self.config.membership.statefulset.as_deref().unwrap_or("?")
                ),
            );
        }
        if config::parse_peers(&format!("{}={}", req.name, req.addr)).is_err() {
            return refused(
                "address",
                format!("{:?} is not a peer address (HOST:PORT)", req.addr),
            );
        }
        let id = node_id(&req.name);
        let members = self.members();
        let forwarded = from != req.name;
        if forwarded && members.standing(node_id(&from)) == Standing::Outside {
            // Not refused for good: the forwarder may be a member that left a moment ago, or
            // one this leader does not know yet. The joiner asks another peer.
            return later(format!(
                "{from:?} is no member here: only the peer itself or a member may ask for {:?} to join",
                req.name
            ));
        }
        if !self.leading() {
            return self
                .forward(forwarded, |client, leader| async move {
                    client.join(&leader, &req, CHANGE_BUDGET).await
                })
                .await;
        }
        self.note_witness(id, req.witness);
        if let Some(node) = members.nodes.get(&id) {
            if node.addr != req.addr {
                return refused(
                    "conflict",
                    format!(
                        "member {:?} is at {}, not {}: remove it first",
                        req.name, node.addr, req.addr
                    ),
                );
            }
            return MembershipAnswer::Done {
                standing: members.standing(id),
                index: members.index.unwrap_or(0),
            };
        }
        let node = PeerNode {
            name: req.name.clone(),
            addr: req.addr.clone(),
        };
        if let Some(why) = self.not_joining(&node).await {
            tracing::debug!(peer = %req.name, why = %why, "join not applied");
            return later(why);
        }
        let answer = self
            .change(ChangeMembers::AddNodes([(id, node)].into()), true)
            .await;
        if let MembershipAnswer::Done { index, .. } = answer {
            tracing::info!(peer = %req.name, addr = %req.addr, witness = req.witness, index, "added a learner");
            return MembershipAnswer::Done {
                standing: Standing::Learner,
                index,
            };
        }
        answer
    }

    /// Why a join request for `node` must not be applied now, if so. A join may arrive late,
    /// after its sender left: the sender asked while it was still outside the membership as it
    /// knew it (or had no answer yet), then was stopped, handed over and left, and its join
    /// reached the new leader after the leave (the nemesis over TLS, 2026-12-04: the peer that
    /// left was back as a learner 11 ms later, and stayed one after it exited). So the leader
    /// asks the joiner first: only a peer that answers under its own name and is not shutting
    /// down is added. One that cannot be reached asks again (it retries until it is a member).
    async fn not_joining(&self, node: &PeerNode) -> Option<String> {
        match self.probe(node).await {
            Ok(info) if info.peer != node.name => Some(format!(
                "{} answers as {:?}, not as {:?}",
                node.addr, info.peer, node.name
            )),
            Ok(info) if info.leaving => Some(format!(
                "{:?} is shutting down: a join it sent earlier is not applied",
                node.name
            )),
            Ok(_) => None,
            Err(e) => Some(format!(
                "cannot reach {:?} at {} to confirm its join: {}",
                node.name,
                node.addr,
                crate::errors::chain(&e)
            )),
        }
    }

    /// What `node` says about itself ([`PeerInfo`]), asked within five election timeouts. A
    /// call that fails is tried again after a short pause while that time lasts: one failure
    /// is not proof that the peer is gone (in one run of the late-leave test on a loaded
    /// machine the leader removed the restarted peer 12 ms after it had started, so its one
    /// probe failed at once, on a connection of the peer's earlier run, it seems). A peer that
    /// really exited refuses every try, and costs the requester those pauses only.
    async fn probe(&self, node: &PeerNode) -> Result<PeerInfo, CallError> {
        let deadline = Instant::now() + self.config.timing.election_max * 5;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self.client.info(node, left).await;
            if answer.is_ok() || Instant::now() + PROBE_PAUSE >= deadline {
                return answer;
            }
            tokio::time::sleep(PROBE_PAUSE).await;
        }
    }

    /// A leave request, sent by `from`.
    pub async fn leave(&self, req: LeaveRequest, from: String) -> MembershipAnswer {
        let id = node_id(&req.name);
        let members = self.members();
        let forwarded = from != req.name;
        if forwarded && members.standing(node_id(&from)) == Standing::Outside {
            return later(format!(
                "{from:?} is no member here: only the peer itself or a member may ask for {:?} to leave",
                req.name
            ));
        }
        if !self.leading() {
            return self
                .forward(forwarded, |client, leader| async move {
                    client.leave(&leader, &req, CHANGE_BUDGET).await
                })
                .await;
        }
        if id == self.config.me.id {
            return later("the leader itself is leaving: it hands leadership over first");
        }
        let (change, what) = match members.standing(id) {
            Standing::Outside => {
                return MembershipAnswer::Done {
                    standing: Standing::Outside,
                    index: members.index.unwrap_or(0),
                }
            }
            Standing::Voter if members.voters().len() == 1 => {
                return refused("last_voter", format!("{:?} is the last voter", req.name))
            }
            Standing::Voter => (ChangeMembers::RemoveVoters([id].into()), "voter"),
            Standing::Learner => (ChangeMembers::RemoveNodes([id].into()), "learner"),
        };
        // A leave request may arrive late (held by a partition, retransmitted once it heals),
        // after its sender gave up, exited and was started again: removing the peer then would
        // throw out a running member. The peer that really leaves is shutting down and says
        // so; one that answers it is not is another run of it. (No answer: it exited, or
        // cannot be reached; it asked to leave, so it leaves.) A running peer under load may
        // answer late, as the partition's held bytes arrive all at once: it gets five
        // election timeouts (a CI run removed a running peer whose answer took longer than
        // one); a peer that exited refuses the connection at once.
        if let Some(node) = members.nodes.get(&id) {
            if let Ok(info) = self.probe(node).await {
                if info.peer == req.name && !info.leaving {
                    return refused(
                        "stale",
                        format!(
                            "{:?} is running and not shutting down: this leave request was sent by an earlier run of it",
                            req.name
                        ),
                    );
                }
            }
        }
        let answer = self.change(change, false).await;
        if let MembershipAnswer::Done { index, .. } = answer {
            tracing::info!(peer = %req.name, index, "removed a {what} that left");
            self.note_witness(id, false);
            return MembershipAnswer::Done {
                standing: Standing::Outside,
                index,
            };
        }
        answer
    }

    /// Sends a request this peer cannot handle to its leader, once: a request that was
    /// already forwarded is not forwarded again.
    async fn forward<F, Fut>(&self, forwarded: bool, send: F) -> MembershipAnswer
    where
        F: FnOnce(PeerClient, PeerNode) -> Fut,
        Fut: std::future::Future<Output = Result<MembershipAnswer, crate::peer::client::CallError>>,
    {
        if forwarded {
            return later("this peer is not the leader (any more)");
        }
        let Some(leader) = self.leader_node() else {
            return later("no leader is known");
        };
        match send(self.client.clone(), leader.clone()).await {
            Ok(answer) => answer,
            Err(e) => later(format!(
                "cannot reach the leader {}: {}",
                leader.name,
                crate::errors::chain(&e)
            )),
        }
    }

    /// A change the leader's controller decided.
    pub async fn apply(&self, change: &Change) -> MembershipAnswer {
        let (what, retain, ids) = match change {
            Change::Promote(ids) => (ChangeMembers::AddVoterIds(ids.clone()), true, ids),
            Change::Demote(ids) => (ChangeMembers::RemoveVoters(ids.clone()), true, ids),
            Change::RemoveSilent(ids) => (ChangeMembers::RemoveVoters(ids.clone()), false, ids),
            Change::Finish(ids) => (ChangeMembers::ReplaceAllVoters(ids.clone()), false, ids),
        };
        let members = self.members();
        let names: Vec<&str> = ids.iter().filter_map(|id| members.name_of(*id)).collect();
        let answer = self.change(what, retain).await;
        match (&answer, change) {
            (MembershipAnswer::Done { index, .. }, Change::Promote(_)) => {
                tracing::info!(peers = ?names, index, "promoted learners to voters")
            }
            (MembershipAnswer::Done { index, .. }, Change::Demote(_)) => {
                tracing::info!(peers = ?names, index, "demoted voters to learners (over --max-voters)")
            }
            (MembershipAnswer::Done { index, .. }, Change::RemoveSilent(_)) => {
                tracing::warn!(peers = ?names, index, "removed voters unreachable for longer than --remove-unreachable-after")
            }
            (MembershipAnswer::Done { index, .. }, Change::Finish(_)) => {
                tracing::info!(voters = ?names, index, "finished a joint membership change left half-way")
            }
            (other, _) => tracing::debug!(answer = ?other, "membership change not made"),
        }
        answer
    }

    /// Makes one change and waits until it is committed, retrying while another change is in
    /// progress, for at most [`CHANGE_BUDGET`].
    async fn change(
        &self,
        what: ChangeMembers<NodeId, PeerNode>,
        retain: bool,
    ) -> MembershipAnswer {
        if self.leadership.relinquished() {
            return later("the leader is shutting down: ask its successor");
        }
        let deadline = Instant::now() + CHANGE_BUDGET;
        let Ok(_serial) = tokio::time::timeout_at(deadline.into(), self.serial.lock()).await else {
            return later("another membership change is still in progress");
        };
        loop {
            // Only a leader a quorum acknowledged within its lease writes a membership: one
            // deposed meanwhile (a newer term on its way) must not start a change. openraft
            // 0.9 also asserts, in debug builds, that a membership entry is appended only in
            // the Leader state, which a write racing a step-down broke (a nemesis run).
            let status = RaftStatus::of(&self.raft);
            if !status.reported_leader(self.config.me.id)
                || !self.leadership.may_claim(status.term, Instant::now())
            {
                return later("this peer is not a leader a quorum acknowledged just now");
            }
            // A leader on its way out of the membership (a joint change that removes it, or
            // its final configuration appended) makes no other change: openraft 0.9 would
            // append it outside the Leader state, which its debug build asserts against (the
            // nemesis, finding 7: a leader restored at start-up with its own removal half-way
            // handled a leave). Finishing that removal is the one change it still makes.
            let members = self.members();
            let finishing = matches!(&what, ChangeMembers::ReplaceAllVoters(ids) if members.configs.last() == Some(ids));
            if members.removing(self.config.me.id) && !finishing {
                return later(
                    "this leader is being removed from the membership: ask its successor",
                );
            }
            let attempt = tokio::time::timeout_at(
                deadline.into(),
                self.raft.change_membership(what.clone(), retain),
            )
            .await;
            let err = match attempt {
                Err(_) => return later("the change was not committed in time"),
                Ok(Ok(resp)) => {
                    return MembershipAnswer::Done {
                        standing: Standing::Outside,
                        index: resp.log_id.index,
                    }
                }
                Ok(Err(e)) => e,
            };
            match err.api_error() {
                Some(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                )) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(ClientWriteError::ForwardToLeader(_)) => {
                    return later("this peer lost the leadership during the change")
                }
                Some(other) => return refused("invalid", other.to_string()),
                None => return later(format!("Raft is stopping: {err}")),
            }
        }
    }
}
