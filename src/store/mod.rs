//! Durable state in sled: the Raft log and vote ([`LogStore`]) and the applied state with its
//! snapshot ([`StateMachine`]), in one database under `--data-dir`.
//!
//! sled's `flush` ends in `sync_file_range`, which does not make a grown file's size or its
//! metadata durable. Every write that Raft relies on (the vote before it is acknowledged, log
//! entries before they are reported flushed, the purge point, snapshots) is therefore
//! followed by `Db::sync`: sled's flush, then `fdatasync` on sled's data file. The applied
//! state is not synced on its own: it rides on the next sync, and what a crash loses of it is
//! applied again from the log (`state_machine`). Elections write little (one blank entry and
//! one vote; heartbeats write nothing); claims cost one sync per log entry on each peer, and
//! concurrent claims share an entry.
//!
//! The database also records which election and which peer it belongs to, so a data directory
//! mounted into the wrong pod or cluster is refused instead of being adopted.
//!
//! [`Recovery`] is the one writer outside Raft: `raft-elector recover` forcing a new membership
//! onto a stopped peer's data after a majority of the voters was lost for good.

mod log_store;
mod recovery;
mod state_machine;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use log_store::LogStore;
pub use recovery::{force_membership, ForceReport, Recovery, RecoveryError, Stored};
use serde::{Deserialize, Serialize};
pub use state_machine::{LedgerHandle, StateMachine};

use crate::wire::{self, DecodeError};

/// Why the data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("the database in {path} is in use by another process: stop the raft-elector peer running on this --data-dir first")]
    Locked { path: PathBuf },
    #[error("cannot open the database in {path}: {source}; check its permissions and free space, stop any other raft-elector using it, or if it is damaged move it aside to rejoin the cluster with empty state")]
    Open { path: PathBuf, source: sled::Error },
    #[error("cannot read the database in {path}: {source}")]
    Read { path: PathBuf, source: sled::Error },
    #[error("cannot write to the database in {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("damaged record {key:?} in {path}: {source}; move the directory aside to rejoin the cluster with empty state")]
    Damaged {
        path: PathBuf,
        key: String,
        source: DecodeError,
    },
    #[error("the database in {path} lost its records although this directory was in use (see raft-elector.json); \
             it is damaged: move the directory aside to rejoin the cluster with empty state")]
    Lost { path: PathBuf },
    #[error("unreadable identity file {path}: {error}; fix or remove it")]
    BadMarker { path: PathBuf, error: String },
    #[error("data directory {path} belongs to election {found:?}, not {expected:?}; use another --data-dir")]
    ForeignElection {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("data directory {path} belongs to peer {found:?}, not {expected:?}; each peer needs its own --data-dir")]
    ForeignPeer {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// Whom a data directory belongs to; written once, checked at every start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    election: String,
    peer: String,
}

const IDENTITY: &[u8] = b"identity";

/// The shared sled database and the handle used to make its writes durable.
#[derive(Clone)]
pub(crate) struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    db: sled::Db,
    /// Raft log entries keyed by big-endian index, so key order is log order.
    logs: sled::Tree,
    /// Vote, purge point, committed id, identity.
    meta: sled::Tree,
    /// Applied state and the current snapshot.
    sm: sled::Tree,
    /// sled's data file, kept open to `fdatasync` it after a flush.
    data_file: File,
    path: PathBuf,
}

impl Db {
    fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Makes every write so far durable: sled's flush, then a real `fdatasync`.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.inner.db.flush().map_err(io::Error::other)?;
        self.inner.data_file.sync_data()
    }

    fn get<T: serde::de::DeserializeOwned>(
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<T>, io::Error> {
        match tree.get(key).map_err(io::Error::other)? {
            None => Ok(None),
            Some(bytes) => wire::decode_record(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("record {:?}: {e}", String::from_utf8_lossy(key)),
                )
            }),
        }
    }
}

/// What [`open`] found in the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Nothing was ever persisted: no vote, no log, no snapshot. Only such a peer may take
    /// part in bootstrapping a new cluster.
    pub fresh: bool,
}

/// Opens (or creates) the database in `dir` for `peer` of `election`.
pub fn open(
    dir: &Path,
    election: &str,
    peer: &str,
) -> Result<(LogStore, StateMachine, Opened), StoreError> {
    let store = open_db(dir, election, peer)?;
    let path = dir.to_path_buf();
    let read_err = |source| StoreError::Read {
        path: path.clone(),
        source,
    };
    let fresh = store.inner.logs.is_empty()
        && store
            .inner
            .meta
            .get(log_store::VOTE_KEY)
            .map_err(read_err)?
            .is_none()
        && store
            .inner
            .sm
            .get(state_machine::SNAPSHOT_KEY)
            .map_err(read_err)?
            .is_none();
    let sm = StateMachine::load(store.clone())?;
    let log = LogStore::new(store);
    // Read every record Raft will need now, so that a damaged one stops the peer here with
    // its name and path instead of somewhere inside Raft's start-up.
    log.validate().map_err(|(key, e)| damaged(&path, key, e))?;
    Ok((log, sm, Opened { fresh }))
}

/// How long opening waits for a lock its previous owner is still releasing.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Opens (or creates) the sled database in `dir` and checks (or records) whom it belongs to.
fn open_db(dir: &Path, election: &str, peer: &str) -> Result<Db, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.to_path_buf();
    let open_err = |source: sled::Error| match &source {
        // sled takes an exclusive lock on its file: another process (a running peer) holds it.
        sled::Error::Io(e) if e.to_string().contains("could not acquire lock") => {
            StoreError::Locked { path: path.clone() }
        }
        _ => StoreError::Open {
            path: path.clone(),
            source,
        },
    };
    let config = sled::Config::new()
        .path(dir)
        // The elector's data is tiny; a small cache keeps the resident size small.
        .cache_capacity(2 * 1024 * 1024)
        .mode(sled::Mode::LowSpace)
        // Every write that matters is synced explicitly (see `Db::sync`); sled's background
        // flusher would only add an fsync every 500 ms to an idle peer's disk.
        .flush_every_ms(None);
    // sled releases its file lock only when its last thread lets the database go, a moment
    // after the owner dropped it (seen: `recover` run twice in a row): a lock still held after
    // LOCK_WAIT belongs to another process.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let db = loop {
        match config.open().map_err(open_err) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other?,
        }
    };
    let tree = |name: &str| db.open_tree(name).map_err(open_err);
    let (logs, meta, sm) = (tree("logs")?, tree("meta")?, tree("sm")?);
    let write_err = |source| StoreError::Write {
        path: path.clone(),
        source,
    };
    let data_file = File::open(dir.join("db")).map_err(write_err)?;
    // The directory entry of a new database must be durable too.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)?;

    let store = Db {
        inner: Arc::new(DbInner {
            db,
            logs,
            meta,
            sm,
            data_file,
            path: path.clone(),
        }),
    };
    check_identity(&store, election, peer)?;
    Ok(store)
}

/// The identity file next to sled's files: written once, it survives sled losing its records,
/// which would otherwise make a damaged directory look fresh (and bootstrap a new cluster).
const MARKER: &str = "raft-elector.json";

fn read_marker(path: &Path) -> Result<Option<Identity>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::BadMarker {
                path: path.to_path_buf(),
                error: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_marker(dir: &Path, identity: &Identity) -> io::Result<()> {
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let mut text = serde_json::to_vec_pretty(identity).map_err(io::Error::other)?;
    text.push(b'\n');
    std::fs::write(&tmp, text)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(MARKER))?;
    File::open(dir)?.sync_all()
}

fn check_identity(store: &Db, election: &str, peer: &str) -> Result<(), StoreError> {
    let path = store.path().to_path_buf();
    let wanted = Identity {
        election: election.to_string(),
        peer: peer.to_string(),
    };
    let in_db: Option<Identity> = match store.inner.meta.get(IDENTITY) {
        Err(source) => return Err(StoreError::Read { path, source }),
        Ok(None) => None,
        Ok(Some(bytes)) => {
            Some(wire::decode_record(&bytes).map_err(|e| damaged(&path, "identity", e))?)
        }
    };
    let marker = read_marker(&path.join(MARKER))?;
    for found in [&in_db, &marker].into_iter().flatten() {
        if found.election != wanted.election {
            return Err(StoreError::ForeignElection {
                path,
                found: found.election.clone(),
                expected: wanted.election,
            });
        }
        if found.peer != wanted.peer {
            return Err(StoreError::ForeignPeer {
                path,
                found: found.peer.clone(),
                expected: wanted.peer,
            });
        }
    }
    if marker.is_some() && in_db.is_none() {
        return Err(StoreError::Lost { path });
    }
    let write_err = |source| StoreError::Write {
        path: path.clone(),
        source,
    };
    if in_db.is_none() {
        store
            .inner
            .meta
            .insert(IDENTITY, wire::encode_record(&wanted))
            .map_err(|e| write_err(io::Error::other(e)))?;
        store.sync().map_err(write_err)?;
    }
    if marker.is_none() {
        write_marker(&path, &wanted).map_err(write_err)?;
    }
    Ok(())
}

/// Turns a decode failure of a stored record into a clear store error.
fn damaged(path: &Path, key: &str, source: DecodeError) -> StoreError {
    StoreError::Damaged {
        path: path.to_path_buf(),
        key: key.to_string(),
        source,
    }
}
