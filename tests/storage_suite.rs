//! The sled store passes openraft's own storage test suite, on a real temporary directory.

use openraft::testing::{StoreBuilder, Suite};
use raft_elector::raft::{StorageError, TypeConfig};
use raft_elector::store::{self, LogStore, StateMachine};

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for SledBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm, opened) =
            store::open(&dir.path().join("data"), "suite", "peer-0").expect("open store");
        assert!(opened.fresh);
        Ok((dir, log, sm))
    }
}

#[test]
fn sled_store_passes_openraft_suite() {
    if let Err(e) = Suite::test_all(SledBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}

#[tokio::test]
async fn state_survives_reopening() {
    use openraft::storage::RaftLogStorage;
    use openraft::Vote;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    {
        let (mut log, _sm, _) = store::open(&path, "e", "p").expect("open");
        log.save_vote(&Vote::new_committed(7, 42))
            .await
            .expect("save vote");
    }
    let (mut log, sm, opened) = store::open(&path, "e", "p").expect("reopen");
    assert!(!opened.fresh);
    assert_eq!(
        log.read_vote().await.expect("read vote"),
        Some(Vote::new_committed(7, 42))
    );
    assert!(
        store::open(&path, "e", "p").is_err(),
        "a second open of a locked database must fail"
    );
    drop((log, sm));
    let err = store::open(&path, "other", "p")
        .err()
        .expect("foreign election refused")
        .to_string();
    assert!(err.contains("belongs to election \"e\""), "{err}");
}
