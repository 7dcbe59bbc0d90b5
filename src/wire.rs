//! The binary encoding of peer RPC bodies and of what the store persists: bincode 2 through
//! serde, with a size limit and a check that nothing trails the value.
//!
//! bincode is not self-describing, so every persisted record is prefixed by a format byte
//! ([`PERSIST_FORMAT`]) and peers exchange a protocol version in a header.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest peer RPC body accepted. The elector's log holds only blank and membership entries
/// and its snapshot is a few hundred bytes, so 1 MiB is ample.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Format byte in front of every persisted record.
pub const PERSIST_FORMAT: u8 = 1;

/// Format byte of a snapshot's data that carries the job ledger; format [`PERSIST_FORMAT`]
/// is the applied state alone, as releases before the ledger wrote it.
pub const SNAPSHOT_FORMAT_LEDGER: u8 = 2;
/// Format byte of a snapshot's data that carries the job ledger and its token floor (after
/// a batch of claims); releases before batches do not read it.
pub const SNAPSHOT_FORMAT_TOKENS: u8 = 3;

/// Largest stored record (a snapshot with the job ledger: at most
/// [`crate::ledger::MAX_JOBS`] × [`crate::ledger::MAX_HISTORY`] grants). Snapshots travel
/// between peers in chunks well under [`MAX_MESSAGE`].
pub const MAX_RECORD: usize = 256 << 20;

/// A body that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {0} bytes exceeds the limit of {MAX_MESSAGE}")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(#[from] bincode::error::DecodeError),
    #[error("{0} unexpected bytes after the message")]
    Trailing(usize),
    #[error("empty record")]
    Empty,
    #[error("record format {0} is not supported by this version (expected {PERSIST_FORMAT})")]
    Format(u8),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE>()
}

/// Encodes a value.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec only fails when serde reports an error, which the openraft and
    // elector types never do; an empty body would then be refused by the receiver.
    bincode::serde::encode_to_vec(value, config()).unwrap_or_default()
}

/// How many bytes [`encode`] makes of a value, without making them.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(value, &mut size, bincode::config::standard()) {
        Ok(()) => size.bytes_written,
        Err(_) => usize::MAX,
    }
}

/// Decodes a value, refusing oversized input, lying lengths and trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, config())?;
    if used != bytes.len() {
        return Err(DecodeError::Trailing(bytes.len() - used));
    }
    Ok(value)
}

fn record_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD>()
}

/// Encodes a large record (a snapshot) for disk: `format`, then the value.
pub fn encode_large_record<T: Serialize>(format: u8, value: &T) -> Vec<u8> {
    let mut out = vec![format];
    // As in `encode`: the elector's types never make serde fail.
    out.extend(bincode::serde::encode_to_vec(value, record_config()).unwrap_or_default());
    out
}

/// Decodes the value of a large record after its format byte, exactly.
pub fn decode_large<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_RECORD {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, record_config())?;
    if used != bytes.len() {
        return Err(DecodeError::Trailing(bytes.len() - used));
    }
    Ok(value)
}

/// Decodes a large record of format [`PERSIST_FORMAT`].
pub fn decode_large_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&PERSIST_FORMAT, rest)) => decode_large(rest),
        Some((&other, _)) => Err(DecodeError::Format(other)),
    }
}

/// Encodes a record for disk: the format byte, then the value.
pub fn encode_record<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![PERSIST_FORMAT];
    out.extend(encode(value));
    out
}

/// Decodes a record written by [`encode_record`].
pub fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&PERSIST_FORMAT, rest)) => decode(rest),
        Some((&other, _)) => Err(DecodeError::Format(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_trailing_bytes() {
        let v = (7u64, String::from("web-0"));
        let mut bytes = encode(&v);
        assert_eq!(decode::<(u64, String)>(&bytes).unwrap(), v);
        bytes.push(0);
        assert!(matches!(
            decode::<(u64, String)>(&bytes),
            Err(DecodeError::Trailing(1))
        ));
    }

    #[test]
    fn refuses_lying_lengths() {
        // A string whose length prefix claims far more bytes than follow.
        let bytes = [251u8, 0xff, 0xff, b'a'];
        assert!(decode::<String>(&bytes).is_err());
    }

    #[test]
    fn records_carry_their_format() {
        let rec = encode_record(&5u32);
        assert_eq!(decode_record::<u32>(&rec).unwrap(), 5);
        assert!(matches!(
            decode_record::<u32>(&[9, 5]),
            Err(DecodeError::Format(9))
        ));
        assert!(matches!(decode_record::<u32>(&[]), Err(DecodeError::Empty)));
    }
}
