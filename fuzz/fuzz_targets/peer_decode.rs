//! Arbitrary bytes into every decoder a peer applies to what arrives from the network or disk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_elector::peer::protocol::{PeerStatus, PreVoteRequest};
use raft_elector::raft::{
    AppendRequest, AppendResponse, Entry, LogId, SnapshotRequest, Vote, VoteRequest, VoteResponse,
};
use raft_elector::wire;

fuzz_target!(|data: &[u8]| {
    // Peer RPC bodies and answers.
    if let Ok(req) = wire::decode::<AppendRequest>(data) {
        // What decodes re-encodes to something that decodes to the same value. (Not always to
        // the same bytes: bincode accepts non-canonical varints, found by this target; harmless,
        // as values are compared after decoding and MACs cover the bytes as sent.)
        let again: AppendRequest = wire::decode(&wire::encode(&req)).expect("re-encoded value decodes");
        assert_eq!(format!("{again:?}"), format!("{req:?}"));
    }
    let _ = wire::decode::<VoteRequest>(data);
    let _ = wire::decode::<SnapshotRequest>(data);
    let _ = wire::decode::<PreVoteRequest>(data);
    let _ = wire::decode::<AppendResponse>(data);
    let _ = wire::decode::<VoteResponse>(data);
    let _ = wire::decode::<PeerStatus>(data);
    // Records read back from disk.
    let _ = wire::decode_record::<Vote>(data);
    let _ = wire::decode_record::<Entry>(data);
    let _ = wire::decode_record::<Option<LogId>>(data);
});
