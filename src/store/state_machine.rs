//! The applied state and its snapshots ([`RaftStateMachine`]).
//!
//! An elector's state machine holds nothing but what Raft itself needs: the last applied log
//! id and the last applied membership. Keeping the membership here is what lets the log be
//! purged: after a purge, openraft rebuilds the membership from this state.

use std::io::Cursor;

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};

use super::{damaged, Db, StoreError};
use crate::raft::{
    Applied, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::wire;

const STATE_KEY: &[u8] = b"applied";
pub(super) const SNAPSHOT_KEY: &[u8] = b"snapshot";

/// What has been applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
}

/// A stored snapshot: its metadata and its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine. Cloning is cheap; clones share the database (the snapshot builder is a
/// clone taken at the moment a snapshot is asked for).
#[derive(Clone)]
pub struct StateMachine {
    db: Db,
    state: AppliedState,
    /// Distinguishes snapshots built at the same log id.
    builds: u64,
}

fn any<E: std::error::Error + 'static>(e: E) -> AnyError {
    AnyError::new(&e)
}

impl StateMachine {
    pub(super) fn load(db: Db) -> Result<Self, StoreError> {
        let state = match db.inner.sm.get(STATE_KEY) {
            Err(source) => {
                return Err(StoreError::Read {
                    path: db.path().to_path_buf(),
                    source,
                })
            }
            Ok(None) => AppliedState::default(),
            Ok(Some(bytes)) => {
                wire::decode_record(&bytes).map_err(|e| damaged(db.path(), "applied", e))?
            }
        };
        if let Ok(Some(bytes)) = db.inner.sm.get(SNAPSHOT_KEY) {
            wire::decode_record::<StoredSnapshot>(&bytes)
                .map_err(|e| damaged(db.path(), "snapshot", e))?;
        }
        Ok(StateMachine {
            db,
            state,
            builds: 0,
        })
    }

    /// The last applied log id and membership, as loaded.
    pub(super) fn applied(&self) -> (Option<LogId>, &StoredMembership) {
        (self.state.last_applied, &self.state.last_membership)
    }

    /// The metadata of the stored snapshot, if any (checked readable by [`Self::load`]).
    pub(super) fn snapshot_meta(&self) -> Result<Option<SnapshotMeta>, StoreError> {
        match self.db.inner.sm.get(SNAPSHOT_KEY) {
            Err(source) => Err(StoreError::Read {
                path: self.db.path().to_path_buf(),
                source,
            }),
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => wire::decode_record::<StoredSnapshot>(&bytes)
                .map(|s| Some(s.meta))
                .map_err(|e| damaged(self.db.path(), "snapshot", e)),
        }
    }

    fn persist_state(&self) -> Result<(), StorageError> {
        let write = |e| StorageIOError::write_state_machine(e);
        self.db
            .inner
            .sm
            .insert(STATE_KEY, wire::encode_record(&self.state))
            .map_err(|e| write(any(e)))?;
        self.db.sync().map_err(|e| write(any(e)))?;
        Ok(())
    }

    fn stored_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        Db::get(&self.db.inner.sm, SNAPSHOT_KEY)
            .map_err(|e| StorageIOError::read_snapshot(None, any(e)).into())
    }

    fn save_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StorageError> {
        let write = |e| StorageIOError::write_snapshot(Some(snapshot.meta.signature()), e);
        self.db
            .inner
            .sm
            .insert(SNAPSHOT_KEY, wire::encode_record(snapshot))
            .map_err(|e| write(any(e)))?;
        self.db.sync().map_err(|e| write(any(e)))?;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        self.builds += 1;
        let snapshot_id = match &self.state.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.builds),
            None => format!("none-{}", self.builds),
        };
        let meta = SnapshotMeta {
            last_log_id: self.state.last_applied,
            last_membership: self.state.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: wire::encode_record(&self.state),
        };
        self.save_snapshot(&stored)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.state.last_applied, self.state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            self.state.last_applied = Some(entry.log_id);
            if let EntryPayload::Membership(m) = entry.payload {
                self.state.last_membership = StoredMembership::new(Some(entry.log_id), m);
            }
            replies.push(Applied);
        }
        self.persist_state()?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        // The metadata carries everything the state holds; the bytes are kept as received.
        self.state = AppliedState {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        self.save_snapshot(&stored)?;
        self.persist_state()
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.stored_snapshot()?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
