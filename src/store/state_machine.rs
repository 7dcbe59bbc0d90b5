//! The applied state and its snapshots ([`RaftStateMachine`]).
//!
//! The state machine holds what Raft itself needs, the last applied log id and the last
//! applied membership (keeping the membership here is what lets the log be purged: after a
//! purge, openraft rebuilds the membership from this state), and the job ledger
//! ([`crate::ledger`]). Each grant is its own record (`j/<job>\0<slot>`), each job's mark of
//! forgotten slots another (`m/<job>`), written in one atomic batch with the applied state, so
//! an apply costs the size of what it changed, not of the ledger.
//!
//! A snapshot's data is format 2 (the applied state and the ledger), or format 3 (the same
//! and the token floor, [`Ledger::token_floor`]) while the floor is above the last index the
//! ledger applied, where only a batch of claims puts it; format 1 (the applied state alone) is
//! what releases before the ledger wrote, and installs as an empty ledger: those releases
//! never appended a claim.

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};

use super::{damaged, Db, StoreError};
use crate::ledger::{Changed, Grant, Ledger};
use crate::raft::Command;
use crate::raft::{
    Applied, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::wire;

/// The ledger as the state machine last applied it, for readers (the application API).
#[derive(Clone, Default)]
pub struct LedgerHandle(Arc<RwLock<Ledger>>);

impl LedgerHandle {
    /// Runs `f` over the ledger.
    pub fn read<T>(&self, f: impl FnOnce(&Ledger) -> T) -> T {
        f(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ledger> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

const GRANT_PREFIX: &[u8] = b"j/";
const MARK_PREFIX: &[u8] = b"m/";

fn grant_key(job: &str, slot: &str) -> Vec<u8> {
    let mut k = GRANT_PREFIX.to_vec();
    k.extend_from_slice(job.as_bytes());
    k.push(0);
    k.extend_from_slice(slot.as_bytes());
    k
}

fn mark_key(job: &str) -> Vec<u8> {
    let mut k = MARK_PREFIX.to_vec();
    k.extend_from_slice(job.as_bytes());
    k
}

const STATE_KEY: &[u8] = b"applied";
/// The last token handed out ([`Ledger::token_floor`]); absent in data of releases before
/// batches of claims, where it is 0.
const FLOOR_KEY: &[u8] = b"token_floor";
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
    ledger: LedgerHandle,
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
            wire::decode_large_record::<StoredSnapshot>(&bytes)
                .map_err(|e| damaged(db.path(), "snapshot", e))?;
        }
        let mut ledger = load_ledger(&db)?;
        ledger.applied_index = state.last_applied.map_or(0, |id| id.index);
        Ok(StateMachine {
            db,
            state,
            ledger: LedgerHandle(Arc::new(RwLock::new(ledger))),
            builds: 0,
        })
    }

    /// A reader of the ledger this state machine applies.
    pub fn ledger(&self) -> LedgerHandle {
        self.ledger.clone()
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
            Ok(Some(bytes)) => wire::decode_large_record::<StoredSnapshot>(&bytes)
                .map(|s| Some(s.meta))
                .map_err(|e| damaged(self.db.path(), "snapshot", e)),
        }
    }

    /// Writes the applied state and what the ledger changed in one atomic batch, then syncs.
    fn persist(&self, changed: &Changed) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for g in &changed.written {
            batch.insert(grant_key(&g.job, &g.slot), wire::encode_record(g));
        }
        for (job, slot) in &changed.forgotten {
            batch.remove(grant_key(job, slot));
        }
        self.ledger.read(|l| {
            for job in &changed.marks {
                if let Some(mark) = l.jobs.get(job).and_then(|j| j.forgotten_up_to.as_ref()) {
                    batch.insert(mark_key(job), wire::encode_record(mark));
                }
            }
        });
        let floor = self.ledger.read(|l| l.token_floor);
        self.commit(batch, floor)
    }

    /// Adds the applied state and the token floor to `batch` and writes it atomically.
    ///
    /// Not synced: everything applied is in the log, which is (every append is synced before
    /// it is reported flushed), and sled recovers a prefix of its writes after a crash, so a
    /// lost apply is applied again from the log after a restart, to the same result. The
    /// log behind the applied state is purged only after a snapshot, and saving the
    /// snapshot syncs (docs/DESIGN.md, "Durability").
    fn commit(&self, mut batch: sled::Batch, floor: u64) -> Result<(), StorageError> {
        let write = |e| StorageIOError::write_state_machine(e);
        batch.insert(STATE_KEY, wire::encode_record(&self.state));
        batch.insert(FLOOR_KEY, wire::encode_record(&floor));
        self.db
            .inner
            .sm
            .apply_batch(batch)
            .map_err(|e| write(any(e)))?;
        Ok(())
    }

    /// Replaces the whole ledger and writes the applied state, in one atomic batch (a
    /// snapshot was installed), then syncs: the log before the snapshot may be gone.
    fn replace_ledger(&self, ledger: Ledger) -> Result<(), StorageError> {
        let write = |e| StorageIOError::write_state_machine(e);
        let mut batch = sled::Batch::default();
        for prefix in [GRANT_PREFIX, MARK_PREFIX] {
            for key in self.db.inner.sm.scan_prefix(prefix).keys() {
                batch.remove(key.map_err(|e| write(any(e)))?);
            }
        }
        for job in ledger.jobs.values() {
            for g in job.slots.values() {
                batch.insert(grant_key(&g.job, &g.slot), wire::encode_record(g));
            }
        }
        for (name, job) in &ledger.jobs {
            if let Some(mark) = &job.forgotten_up_to {
                batch.insert(mark_key(name), wire::encode_record(mark));
            }
        }
        self.commit(batch, ledger.token_floor)?;
        self.db.sync().map_err(|e| write(any(e)))?;
        *self.ledger.write() = ledger;
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
            .insert(
                SNAPSHOT_KEY,
                wire::encode_large_record(wire::PERSIST_FORMAT, snapshot),
            )
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
        // The ledger is shared with the state machine, which goes on applying while this
        // builds: it may hold a few entries past `last_applied`, which a peer installing the
        // snapshot applies again, to no effect.
        let data = self.ledger.read(|l| {
            if !l.floor_matters() {
                // Every later entry's index is above the floor: it no longer matters, and
                // the snapshot stays one releases before batches can install.
                wire::encode_large_record(wire::SNAPSHOT_FORMAT_LEDGER, &(&self.state, l))
            } else {
                let with_floor = (&self.state, l, l.token_floor);
                wire::encode_large_record(wire::SNAPSHOT_FORMAT_TOKENS, &with_floor)
            }
        });
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
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
        let mut changed = Changed::default();
        for entry in entries {
            self.state.last_applied = Some(entry.log_id);
            let (index, term) = (entry.log_id.index, entry.log_id.leader_id.term);
            // Each entry's effect and the index it was applied at change together, under one
            // lock: a snapshot being built reads them together (`Ledger::floor_matters`).
            let mut ledger = self.ledger.write();
            let reply = match entry.payload {
                EntryPayload::Membership(m) => {
                    self.state.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    Applied::Nothing
                }
                EntryPayload::Normal(Command::Claim(c)) => {
                    Applied::Claim(ledger.claim(&c, index, term, &mut changed))
                }
                EntryPayload::Normal(Command::Claims(claims)) => Applied::Claims(
                    claims
                        .iter()
                        .map(|c| ledger.claim(c, index, term, &mut changed))
                        .collect(),
                ),
                EntryPayload::Normal(Command::Done(d)) => {
                    Applied::Done(ledger.done(&d, &mut changed))
                }
                EntryPayload::Normal(Command::Missed(m)) => {
                    Applied::Missed(ledger.missed(&m, index, term, &mut changed))
                }
                EntryPayload::Normal(Command::Noop) | EntryPayload::Blank => Applied::Nothing,
            };
            ledger.applied_index = index;
            drop(ledger);
            replies.push(reply);
        }
        self.persist(&changed)?;
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
        // The metadata carries the applied state; the data the ledger (format 2) or nothing
        // more (format 1, from a release before the ledger). The bytes are kept as received.
        let data = snapshot.into_inner();
        let ledger = match data.split_first() {
            Some((&wire::SNAPSHOT_FORMAT_LEDGER, rest)) => {
                let (_, ledger): (AppliedState, Ledger) = wire::decode_large(rest)
                    .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
                ledger
            }
            Some((&wire::SNAPSHOT_FORMAT_TOKENS, rest)) => {
                let (_, mut ledger, floor): (AppliedState, Ledger, u64) = wire::decode_large(rest)
                    .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
                ledger.token_floor = floor;
                ledger
            }
            // A peer of an earlier release built it (or it is empty): it never applied a
            // claim. Installing it over grants would forget them (and grant those slots
            // again): refused, the peer stops with this error rather than lose a grant
            // (docs/DESIGN.md, "Job ledger").
            Some((&wire::PERSIST_FORMAT, _)) | None if self.ledger.read(|l| !l.jobs.is_empty()) => {
                let e = AnyError::error(
                    "a snapshot without the job ledger (from a peer of a release before it) would replace job grants; downgrading a cluster that holds grants is not supported",
                );
                return Err(StorageIOError::read_snapshot(Some(meta.signature()), e).into());
            }
            Some((&wire::PERSIST_FORMAT, _)) | None => Ledger::default(),
            Some((&other, _)) => {
                let e = wire::DecodeError::Format(other);
                return Err(StorageIOError::read_snapshot(Some(meta.signature()), any(e)).into());
            }
        };
        let mut ledger = ledger;
        ledger.applied_index = meta.last_log_id.map_or(0, |id| id.index);
        self.state = AppliedState {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.save_snapshot(&stored)?;
        self.replace_ledger(ledger)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.stored_snapshot()?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Reads the ledger's records.
fn load_ledger(db: &Db) -> Result<Ledger, StoreError> {
    let read = |source| StoreError::Read {
        path: db.path().to_path_buf(),
        source,
    };
    let mut grants = Vec::new();
    for item in db.inner.sm.scan_prefix(GRANT_PREFIX) {
        let (_, value) = item.map_err(read)?;
        grants.push(
            wire::decode_record::<Grant>(&value).map_err(|e| damaged(db.path(), "job grant", e))?,
        );
    }
    let mut marks = Vec::new();
    for item in db.inner.sm.scan_prefix(MARK_PREFIX) {
        let (key, value) = item.map_err(read)?;
        let job = String::from_utf8_lossy(&key[MARK_PREFIX.len()..]).into_owned();
        marks.push((
            job,
            wire::decode_record::<String>(&value).map_err(|e| damaged(db.path(), "job mark", e))?,
        ));
    }
    let mut ledger = Ledger::from_parts(grants, marks);
    if let Some(bytes) = db.inner.sm.get(FLOOR_KEY).map_err(read)? {
        ledger.token_floor =
            wire::decode_record(&bytes).map_err(|e| damaged(db.path(), "token floor", e))?;
    }
    Ok(ledger)
}
