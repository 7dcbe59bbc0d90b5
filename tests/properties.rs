//! Property tests: peer RPC encoding round trips and refuses damaged input without panicking;
//! peer-list and StatefulSet-name parsing accept what they should and never panic.

use std::collections::BTreeSet;

use openraft::{EntryPayload, LogId, Membership};
use proptest::prelude::*;
use raft_elector::config;
use raft_elector::peer::protocol::{PeerStatus, PreVoteRequest};
use raft_elector::raft::{
    node_id, AppendRequest, AppendResponse, Command, Entry, PeerNode, Vote, VoteRequest,
    VoteResponse,
};
use raft_elector::wire;

fn log_id() -> impl Strategy<Value = Option<LogId<u64>>> {
    proptest::option::of(
        (any::<u64>(), any::<u64>(), any::<u64>())
            .prop_map(|(t, n, i)| LogId::new(openraft::CommittedLeaderId::new(t, n), i)),
    )
}

fn vote() -> impl Strategy<Value = Vote> {
    (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(t, n, c)| {
        if c {
            Vote::new_committed(t, n)
        } else {
            Vote::new(t, n)
        }
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    let payload = prop_oneof![
        Just(EntryPayload::Blank),
        Just(EntryPayload::Normal(Command::Noop)),
        proptest::collection::btree_map(
            any::<u64>(),
            ("[a-z0-9-]{1,12}", "[a-z0-9.-]{1,20}:[0-9]{1,5}"),
            1..5
        )
        .prop_map(|m| {
            let ids: BTreeSet<u64> = m.keys().copied().collect();
            let nodes = m
                .into_iter()
                .map(|(id, (name, addr))| (id, PeerNode { name, addr }))
                .collect::<std::collections::BTreeMap<_, _>>();
            EntryPayload::Membership(Membership::new(vec![ids], nodes))
        }),
    ];
    (any::<u64>(), any::<u64>(), any::<u64>(), payload).prop_map(|(t, n, i, payload)| Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(t, n), i),
        payload,
    })
}

fn append() -> impl Strategy<Value = AppendRequest> {
    (
        vote(),
        log_id(),
        log_id(),
        proptest::collection::vec(entry(), 0..5),
    )
        .prop_map(
            |(vote, prev_log_id, leader_commit, entries)| AppendRequest {
                vote,
                prev_log_id,
                leader_commit,
                entries,
            },
        )
}

/// Every strict prefix and every one-byte extension of an encoding is refused, cleanly.
fn refuses_damage<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        assert!(
            wire::decode::<T>(&bytes[..cut]).is_err(),
            "a {cut}-byte prefix of {} decoded",
            bytes.len()
        );
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(
        wire::decode::<T>(&longer).is_err(),
        "trailing byte accepted"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn append_requests_round_trip(req in append()) {
        let bytes = wire::encode(&req);
        let back: AppendRequest = wire::decode(&bytes).expect("decode");
        prop_assert_eq!(format!("{back:?}"), format!("{req:?}"));
        refuses_damage::<AppendRequest>(&bytes);
    }

    #[test]
    fn votes_and_answers_round_trip(v in vote(), last in log_id(), granted in any::<bool>()) {
        let req = VoteRequest::new(v, last);
        prop_assert_eq!(wire::decode::<VoteRequest>(&wire::encode(&req)).expect("decode"), req.clone());
        refuses_damage::<VoteRequest>(&wire::encode(&req));
        let resp = VoteResponse::new(v, last, granted);
        prop_assert_eq!(wire::decode::<VoteResponse>(&wire::encode(&resp)).expect("decode"), resp);
        for resp in [AppendResponse::Success, AppendResponse::Conflict, AppendResponse::PartialSuccess(last), AppendResponse::HigherVote(v)] {
            prop_assert_eq!(wire::decode::<AppendResponse>(&wire::encode(&resp)).expect("decode"), resp);
        }
        let pre = PreVoteRequest { last_log_id: last };
        prop_assert_eq!(wire::decode::<PreVoteRequest>(&wire::encode(&pre)).expect("decode"), pre);
    }

    #[test]
    fn status_round_trips(election in "[a-z]{1,10}", peer in "[a-z0-9-]{1,10}", digest in any::<u64>(), initialized in any::<bool>(), term in any::<u64>(), last in proptest::option::of(any::<u64>())) {
        let s = PeerStatus { election, peer, members_digest: digest, initialized, term, last_log_index: last };
        prop_assert_eq!(wire::decode::<PeerStatus>(&wire::encode(&s)).expect("decode"), s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = wire::decode::<AppendRequest>(&bytes);
        let _ = wire::decode::<VoteRequest>(&bytes);
        let _ = wire::decode::<VoteResponse>(&bytes);
        let _ = wire::decode::<AppendResponse>(&bytes);
        let _ = wire::decode::<PeerStatus>(&bytes);
        let _ = wire::decode_record::<Vote>(&bytes);
        let _ = wire::decode_record::<Entry>(&bytes);
    }

    #[test]
    fn valid_peer_lists_parse(entries in proptest::collection::btree_map("[a-z][a-z0-9-]{0,15}", ("[a-z][a-z0-9]{0,10}(\\.[a-z][a-z0-9]{0,10}){0,3}", 1u16..), 1..8)) {
        let list = entries.iter().map(|(n, (h, p))| format!("{n}={h}:{p}")).collect::<Vec<_>>().join(",");
        let peers = config::parse_peers(&list).expect("valid list");
        let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
        let expected: Vec<&str> = entries.keys().map(String::as_str).collect();
        prop_assert_eq!(names, expected);
        for p in &peers {
            let (h, port) = &entries[&p.name];
            prop_assert_eq!(&p.addr, &format!("{h}:{port}"));
            prop_assert_eq!(p.id, node_id(&p.name));
        }
        // Order and spacing do not matter.
        let shuffled = entries.iter().rev().map(|(n, (h, p))| format!(" {n} = {h}:{p} ")).collect::<Vec<_>>().join(",");
        prop_assert_eq!(config::parse_peers(&shuffled).expect("valid list"), peers);
    }

    #[test]
    fn arbitrary_peer_lists_never_panic(list in ".{0,200}") {
        if let Ok(peers) = config::parse_peers(&list) {
            prop_assert!(!peers.is_empty());
            let names: BTreeSet<&str> = peers.iter().map(|p| p.name.as_str()).collect();
            prop_assert_eq!(names.len(), peers.len(), "duplicates accepted");
        }
    }

    #[test]
    fn statefulset_names_derive_every_peer(base in "[a-z][a-z0-9-]{0,20}[a-z0-9]", replicas in 1u32..=99, pick in any::<u32>(), port in 1u16..) {
        let ordinal = pick % replicas;
        let id = format!("{base}-{ordinal}");
        let peers = config::statefulset_peers(&id, replicas, "svc.ns.svc.cluster.local", port).expect("derive");
        prop_assert_eq!(peers.len(), replicas as usize);
        let addr = format!("{id}.svc.ns.svc.cluster.local:{port}");
        prop_assert!(peers.iter().any(|p| p.name == id && p.addr == addr));
        // A pod of a higher ordinal (a scale-up) derives the same first cluster, without itself.
        let beyond = format!("{base}-{replicas}");
        let first = config::statefulset_peers(&beyond, replicas, "svc.ns.svc.cluster.local", port).expect("derive");
        prop_assert_eq!(&first, &peers);
        prop_assert!(!first.iter().any(|p| p.name == beyond));
    }

    #[test]
    fn arbitrary_statefulset_ids_never_panic(id in ".{0,40}", replicas in 0u32..200) {
        let _ = config::statefulset_peers(&id, replicas, "d", 4041);
    }
}
