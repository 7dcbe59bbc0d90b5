//! Forcing a new membership onto a stopped peer's data (`raft-elector recover`): the way out
//! when a majority of the voters is gone for good, like etcd's `--force-new-cluster`.
//!
//! One membership entry is appended after the last log entry, under a term above every term
//! this directory has stored, as if this peer had been elected leader of that term and had at
//! once changed the membership; a committed vote for itself in that term records that
//! election. Both are written in one sled transaction, then synced. openraft loads them at the
//! next start: the last membership entry of the log is the effective membership, and the
//! committed vote brings the peer back as the leader of that term, which commits the entry
//! with the named members (alone, when it is the only one).
//!
//! Nothing here decides whether forcing is acceptable (no quorum of the old voters reachable,
//! no newer term anywhere): that is the caller's, which must hold the [`Recovery`] (and so
//! the database's lock) while it asks the other peers. See `docs/DESIGN.md`, "Recovery".

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use openraft::{CommittedLeaderId, EntryPayload};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::log_store::{index_key, COMMITTED_KEY, PURGED_KEY, VOTE_KEY};
use super::{damaged, open_db, Db, StateMachine, StoreError, MARKER};
use crate::raft::{vote_term, Entry, LogId, Membership, NodeId, PeerNode, StoredMembership, Vote};
use crate::wire;

/// Why a membership could not be forced.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("data directory {path} does not exist: nothing to recover; check --data-dir")]
    Missing { path: PathBuf },
    #[error(
        "{path} holds no raft-elector data (no {MARKER}): nothing to recover; check --data-dir"
    )]
    Empty { path: PathBuf },
    #[error("data directory {path} holds no membership (this peer never joined a cluster): nothing to recover; start it normally")]
    NeverJoined { path: PathBuf },
    #[error("the new membership must include this peer ({peer}): only a peer that is a member can start the new cluster")]
    SelfNotNamed { peer: String },
    #[error("cannot write to the database in {path}: {source}; nothing was changed")]
    Write { path: PathBuf, source: sled::Error },
    #[error("the database in {path} does not read back the membership just written; stop and inspect it before starting the peer")]
    NotReadBack { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a data directory holds, read before anything is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The stored vote.
    pub vote: Option<Vote>,
    /// The last log id: the last entry's, or the purge point when the log is empty.
    pub last_log_id: Option<LogId>,
    /// The last log id applied to the state machine (or installed with a snapshot).
    pub last_applied: Option<LogId>,
    /// The effective membership openraft would load: the last membership entry of the log, or
    /// the applied one (or the snapshot's) when the log holds none after it.
    pub membership: StoredMembership,
    /// The greatest term among the vote and every stored log id.
    pub term: u64,
}

/// What [`Recovery::force`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForceReport {
    /// The effective membership before.
    pub old: StoredMembership,
    /// The membership written, with the log id of its entry.
    pub new: StoredMembership,
    /// The vote before.
    pub old_vote: Option<Vote>,
    /// The vote written: committed, for this peer, in the new term.
    pub vote: Vote,
    /// Set when the log lagged behind an installed snapshot and was purged up to it first
    /// (what openraft does itself at start), so that the new entry follows without a hole.
    pub purged_to: Option<LogId>,
}

impl ForceReport {
    /// The new term.
    pub fn term(&self) -> u64 {
        vote_term(&self.vote)
    }
}

/// A stopped peer's data directory, open and locked for recovery.
pub struct Recovery {
    db: Db,
    me: String,
    stored: Stored,
}

impl Recovery {
    /// Opens the existing data directory of peer `me` of `election` and reads what it holds.
    /// Fails when the directory does not exist, holds no raft-elector data or no membership,
    /// belongs to another peer or election, or is in use (a peer is running on it).
    pub fn open(dir: &Path, election: &str, me: &str) -> Result<Recovery, RecoveryError> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(RecoveryError::Empty {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RecoveryError::Missing {
                    path: dir.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(StoreError::Create {
                    path: dir.to_path_buf(),
                    source,
                }
                .into())
            }
        }
        // Every directory a peer has used has the identity file; without it, opening would
        // create a database (changing the directory) only to find nothing in it.
        if !dir.join(MARKER).exists() {
            return Err(RecoveryError::Empty {
                path: dir.to_path_buf(),
            });
        }
        let db = open_db(dir, election, me)?;
        let stored = read(&db)?;
        if stored.membership.membership().voter_ids().next().is_none() {
            return Err(RecoveryError::NeverJoined {
                path: dir.to_path_buf(),
            });
        }
        Ok(Recovery {
            db,
            me: me.to_string(),
            stored,
        })
    }

    /// What the directory holds.
    pub fn stored(&self) -> &Stored {
        &self.stored
    }

    /// Writes a membership of exactly `members` (all voters; this peer must be one) under a
    /// new term, with a committed vote for this peer in it, and syncs. Consumes the recovery:
    /// the database is closed (and its lock released) when this returns.
    pub fn force(self, members: BTreeMap<NodeId, PeerNode>) -> Result<ForceReport, RecoveryError> {
        let me = crate::raft::node_id(&self.me);
        if !members.contains_key(&me) {
            return Err(RecoveryError::SelfNotNamed { peer: self.me });
        }
        let path = self.db.path().to_path_buf();
        let stored = &self.stored;
        let term = stored.term + 1;
        // A snapshot installed but the log not yet purged behind it: purge first, as openraft
        // would at start, so that the entry directly follows the applied state.
        let purged_to = (stored.last_applied > stored.last_log_id)
            .then_some(stored.last_applied)
            .flatten();
        let last = purged_to.or(stored.last_log_id);
        let index = last.map_or(0, |id| id.index + 1);
        let log_id = LogId::new(CommittedLeaderId::new(term, me), index);
        let voters: BTreeSet<NodeId> = members.keys().copied().collect();
        let membership = Membership::new(vec![voters], members);
        let entry = Entry {
            log_id,
            payload: EntryPayload::Membership(membership.clone()),
        };
        let vote = Vote::new_committed(term, me);

        let inner = &self.db.inner;
        let stale: Vec<sled::IVec> = match purged_to {
            None => Vec::new(),
            Some(upto) => inner
                .logs
                .range(..=index_key(upto.index))
                .keys()
                .collect::<Result<_, _>>()
                .map_err(|source| StoreError::Read {
                    path: path.clone(),
                    source,
                })?,
        };
        let written: Result<(), TransactionError<()>> =
            (&inner.meta, &inner.logs).transaction(|(meta, logs)| {
                if let Some(upto) = purged_to {
                    meta.insert(PURGED_KEY, wire::encode_record(&upto))?;
                    for key in &stale {
                        logs.remove(key)?;
                    }
                }
                logs.insert(&index_key(index), wire::encode_record(&entry))?;
                meta.insert(VOTE_KEY, wire::encode_record(&vote))?;
                Ok::<_, ConflictableTransactionError<()>>(())
            });
        written.map_err(|e| match e {
            TransactionError::Storage(source) => RecoveryError::Write {
                path: path.clone(),
                source,
            },
            TransactionError::Abort(()) => RecoveryError::NotReadBack { path: path.clone() },
        })?;
        self.db.sync().map_err(|source| StoreError::Write {
            path: path.clone(),
            source,
        })?;

        let after = read(&self.db)?;
        if after.membership.membership() != &membership || after.vote != Some(vote) {
            return Err(RecoveryError::NotReadBack { path });
        }
        Ok(ForceReport {
            old: self.stored.membership.clone(),
            new: after.membership,
            old_vote: self.stored.vote,
            vote,
            purged_to,
        })
    }
}

/// Opens the data directory and forces the membership at once, without asking anyone: see
/// [`Recovery`]. `raft-elector recover` holds the [`Recovery`] while it asks the other peers.
pub fn force_membership(
    dir: &Path,
    election: &str,
    me: &str,
    members: BTreeMap<NodeId, PeerNode>,
) -> Result<ForceReport, RecoveryError> {
    Recovery::open(dir, election, me)?.force(members)
}

/// Decodes one record of `tree`, naming it when it is damaged.
fn record<T: serde::de::DeserializeOwned>(
    db: &Db,
    tree: &sled::Tree,
    key: &[u8],
    name: &str,
) -> Result<Option<T>, StoreError> {
    match tree.get(key) {
        Err(source) => Err(StoreError::Read {
            path: db.path().to_path_buf(),
            source,
        }),
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => wire::decode_record(&bytes)
            .map(Some)
            .map_err(|e| damaged(db.path(), name, e)),
    }
}

/// Reads what openraft would load: the vote, the last log id and the effective membership.
fn read(db: &Db) -> Result<Stored, StoreError> {
    let inner = &db.inner;
    let vote: Option<Vote> = record(db, &inner.meta, VOTE_KEY, "vote")?;
    let purged: Option<LogId> = record(db, &inner.meta, PURGED_KEY, "last_purged")?;
    let committed: Option<LogId> =
        record::<Option<LogId>>(db, &inner.meta, COMMITTED_KEY, "committed")?.flatten();
    let sm = StateMachine::load(db.clone())?;
    let (last_applied, applied_membership) = sm.applied();
    let snapshot = sm.snapshot_meta()?;

    // The log, newest first, down to its last membership entry.
    let mut last_entry: Option<LogId> = None;
    let mut log_membership: Option<StoredMembership> = None;
    for item in inner.logs.iter().rev() {
        let (key, value) = item.map_err(|source| StoreError::Read {
            path: db.path().to_path_buf(),
            source,
        })?;
        let index = <[u8; 8]>::try_from(key.as_ref()).map_or(0, u64::from_be_bytes);
        let entry: Entry = wire::decode_record(&value)
            .map_err(|e| damaged(db.path(), &format!("log entry {index}"), e))?;
        last_entry = last_entry.or(Some(entry.log_id));
        if let EntryPayload::Membership(m) = entry.payload {
            log_membership = Some(StoredMembership::new(Some(entry.log_id), m));
            break;
        }
    }

    let mut candidates = vec![applied_membership.clone()];
    candidates.extend(snapshot.as_ref().map(|s| s.last_membership.clone()));
    candidates.extend(log_membership);
    let membership = candidates
        .into_iter()
        .max_by_key(|m| *m.log_id())
        .unwrap_or_default();

    let last_log_id = last_entry.or(purged);
    let term = [
        last_log_id,
        purged,
        committed,
        last_applied,
        snapshot.and_then(|s| s.last_log_id),
    ]
    .into_iter()
    .flatten()
    .map(|id| id.leader_id.term)
    .chain(vote.as_ref().map(vote_term))
    .max()
    .unwrap_or(0);
    Ok(Stored {
        vote,
        last_log_id,
        last_applied,
        membership,
        term,
    })
}

#[cfg(test)]
mod tests;
