//! What a run records about the membership: the `/v1/members` answers of every peer, every
//! start and end of a peer process, and the peers the nemesis made join or leave on purpose
//! (its roster). The membership rules of the checker ([`crate::membership`]) read them.

use crate::history::{ms, History, Micros};

/// What a member is in a `/v1/members` answer (a witness counts as a voter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Voter,
    Learner,
}

/// One answer of `GET /v1/members`: the membership in force on the peer asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersSample {
    pub peer: usize,
    pub sent: Micros,
    pub received: Micros,
    /// The log index of the membership entry (`None` before the peer has a membership).
    pub index: Option<u64>,
    /// A joint change is under way (its voters are those of both halves).
    pub joint: bool,
    /// The index of the last entry the peer had applied: applied entries are committed.
    pub applied: Option<u64>,
    /// Every member, sorted ([`crate::history::UNKNOWN_PEER`] for a name that is no peer of the cluster).
    pub members: Vec<(usize, Role)>,
}

impl MembersSample {
    /// What `peer` is in this membership (`None`: not a member).
    pub fn role_of(&self, peer: usize) -> Option<Role> {
        self.members
            .iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, r)| *r)
    }

    /// The voters (both halves of a joint change).
    pub fn voters(&self) -> Vec<usize> {
        let voters = self.members.iter().filter(|(_, r)| *r == Role::Voter);
        voters.map(|(p, _)| *p).collect()
    }

    /// Every member, whatever its role.
    pub fn names(&self) -> Vec<usize> {
        self.members.iter().map(|(p, _)| *p).collect()
    }

    /// The same membership as `other` (index, members, roles, joint).
    pub fn same(&self, other: &MembersSample) -> bool {
        (self.index, self.joint, &self.members) == (other.index, other.joint, &other.members)
    }
}

/// A peer process the nemesis started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Started,
    /// kill -9: what it had not yet written to disk is lost.
    Killed,
    /// SIGTERM: it ends by itself, with everything written.
    Terminated,
}

/// When the nemesis started or ended a peer's process (before its command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifeEvent {
    pub peer: usize,
    pub at: Micros,
    pub what: Life,
}

/// A peer entering or leaving the cluster as the nemesis means it: a spare started to join,
/// a member stopped with SIGTERM to leave (or started again to rejoin). Peers without an
/// entry are members for the whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub peer: usize,
    pub at: Micros,
    pub member: bool,
}

impl History {
    /// Whether `peer` is a member as the nemesis means it at `t` (see [`Enrolment`]).
    pub fn enrolled(&self, peer: usize, t: Micros) -> bool {
        let mine = self.enrolments.iter().filter(|e| e.peer == peer);
        let mut state = true;
        for e in mine.take_while(|e| e.at <= t) {
            state = e.member;
        }
        state
    }

    /// The peers enrolled at `t`.
    pub fn roster(&self, t: Micros) -> Vec<usize> {
        (0..self.peers.len())
            .filter(|&p| self.enrolled(p, t))
            .collect()
    }

    /// A `/v1/members` answer as a readable line.
    pub fn show_members(&self, m: &MembersSample) -> String {
        let list: Vec<String> = m
            .members
            .iter()
            .map(|(p, r)| match r {
                Role::Voter => self.name(Some(*p)),
                Role::Learner => format!("{}(learner)", self.name(Some(*p))),
            })
            .collect();
        format!(
            "{} members [{} .. {}] index={} {}{{{}}}",
            self.name(Some(m.peer)),
            ms(m.sent),
            ms(m.received),
            m.index.map_or("none".to_string(), |i| i.to_string()),
            if m.joint { "joint " } else { "" },
            list.join(",")
        )
    }
}
