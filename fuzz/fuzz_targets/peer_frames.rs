//! Arbitrary bytes into a peer stream as the accepting peer reads it: the length-delimited
//! codec, then each frame opened by a plain session and by a keyed one (whose MAC nothing
//! random can pass), and the handshake's nonce parser.
#![no_main]

use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use raft_elector::peer::auth::PeerAuth;
use raft_elector::peer::frames::{self, Ends, FrameError, Session};
use raft_elector::peer::server::stream::codec;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = frames::parse_nonce(text);
    }
    let auth = PeerAuth::new(b"fuzz-secret-0123456789", Duration::from_secs(30)).expect("secret");
    let nonce = [7u8; frames::NONCE_LEN];
    let ends = Ends { election: "fuzz", client: "b", server: "a", client_nonce: &nonce, server_nonce: &nonce };
    let mut plain = Session::plain();
    let mut keyed = Session::server(Some(&auth), &ends);
    let mut codec = codec();
    let mut buf = BytesMut::from(data);
    for _ in 0..64 {
        let frame = match codec.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        assert!(frame.len() <= frames::MAX_FRAME);
        if let Ok((head, body)) = plain.open(&frame) {
            // What opens seals again into a frame that opens to the same.
            let again = Session::plain().seal(&head, &body);
            assert_eq!(Session::plain().open(&again), Ok((head, body)));
        }
        match keyed.open(&frame) {
            Err(FrameError::BadMac | FrameError::Short(_)) => {}
            other => panic!("a random frame passed the MAC: {other:?}"),
        }
    }
});
