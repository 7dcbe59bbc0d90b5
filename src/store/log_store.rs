//! The Raft log and vote on sled ([`RaftLogStorage`]).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, OptionalSend, RaftLogReader, StorageIOError};

use super::Db;
use crate::raft::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::wire;

pub(super) const VOTE_KEY: &[u8] = b"vote";
pub(super) const PURGED_KEY: &[u8] = b"last_purged";
pub(super) const COMMITTED_KEY: &[u8] = b"committed";

/// The Raft log and vote. Cloning is cheap; clones share the database.
#[derive(Clone)]
pub struct LogStore {
    db: Db,
}

pub(super) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn io_err<E: std::error::Error + 'static>(e: E) -> AnyError {
    AnyError::new(&e)
}

impl LogStore {
    pub(super) fn new(db: Db) -> Self {
        LogStore { db }
    }

    fn last_purged(&self) -> Result<Option<LogId>, StorageError> {
        Db::get(&self.db.inner.meta, PURGED_KEY)
            .map_err(|e| StorageIOError::read_logs(io_err(e)).into())
    }

    /// Decodes the vote, the purge point, the committed id and the last log entry.
    pub(super) fn validate(&self) -> Result<(), (&'static str, wire::DecodeError)> {
        let meta = &self.db.inner.meta;
        let check = |key: &'static [u8],
                     name: &'static str,
                     f: fn(&[u8]) -> Result<(), wire::DecodeError>| {
            match meta.get(key) {
                Ok(Some(bytes)) => f(&bytes).map_err(|e| (name, e)),
                _ => Ok(()),
            }
        };
        check(VOTE_KEY, "vote", |b| {
            wire::decode_record::<Vote>(b).map(drop)
        })?;
        check(PURGED_KEY, "last_purged", |b| {
            wire::decode_record::<LogId>(b).map(drop)
        })?;
        check(COMMITTED_KEY, "committed", |b| {
            wire::decode_record::<Option<LogId>>(b).map(drop)
        })?;
        if let Ok(Some((_, last))) = self.db.inner.logs.last() {
            wire::decode_record::<Entry>(&last).map_err(|e| ("last log entry", e))?;
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.db.sync()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => Bound::Included(index_key(i)),
            Bound::Excluded(&i) => Bound::Excluded(index_key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(index_key(i)),
            Bound::Excluded(&i) => Bound::Excluded(index_key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut entries = Vec::new();
        for item in self.db.inner.logs.range::<[u8; 8], _>((start, end)) {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(io_err(e)))?;
            let entry: Entry = wire::decode_record(&value).map_err(|e| {
                let index = key
                    .as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .unwrap_or_default();
                StorageIOError::read_log_at_index(index, io_err(e))
            })?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.last_purged()?;
        let last = match self
            .db
            .inner
            .logs
            .last()
            .map_err(|e| StorageIOError::read_logs(io_err(e)))?
        {
            None => None,
            Some((_, value)) => {
                let entry: Entry = wire::decode_record(&value)
                    .map_err(|e| StorageIOError::read_logs(io_err(e)))?;
                Some(entry.log_id)
            }
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        // The vote must be on disk before it is acknowledged: a vote lost in a crash would let
        // this peer vote twice in one term.
        self.db
            .inner
            .meta
            .insert(VOTE_KEY, wire::encode_record(vote))
            .map_err(|e| StorageIOError::write_vote(io_err(e)))?;
        self.sync()
            .map_err(|e| StorageIOError::write_vote(io_err(e)))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Db::get(&self.db.inner.meta, VOTE_KEY)
            .map_err(|e| StorageIOError::read_vote(io_err(e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Only an optimisation for restarts (re-apply without waiting for the leader), so it
        // rides on the next sync instead of forcing one.
        self.db
            .inner
            .meta
            .insert(COMMITTED_KEY, wire::encode_record(&committed))
            .map_err(|e| StorageIOError::write(io_err(e)))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = Db::get(&self.db.inner.meta, COMMITTED_KEY)
            .map_err(|e| StorageIOError::read(io_err(e)))?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&index_key(entry.log_id.index), wire::encode_record(&entry));
        }
        self.db
            .inner
            .logs
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        // Report the outcome of the sync through the callback, as openraft expects; an error
        // there stops the Raft core.
        callback.log_io_completed(self.sync());
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let logs = &self.db.inner.logs;
        let mut batch = sled::Batch::default();
        for key in logs.range(index_key(log_id.index)..).keys() {
            batch.remove(key.map_err(|e| StorageIOError::write_logs(io_err(e)))?);
        }
        logs.apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        self.sync()
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point durably before deleting, so that a crash in between leaves a
        // consistent (if slightly larger) log.
        self.db
            .inner
            .meta
            .insert(PURGED_KEY, wire::encode_record(&log_id))
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        self.sync()
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        let logs = &self.db.inner.logs;
        let mut batch = sled::Batch::default();
        for key in logs.range(..=index_key(log_id.index)).keys() {
            batch.remove(key.map_err(|e| StorageIOError::write_logs(io_err(e)))?);
        }
        logs.apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        Ok(())
    }
}
