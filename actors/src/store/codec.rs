//! The stored form of a packet lifecycle record: a version byte, then the record as a protobuf message (prost,
//! already a dependency for the chains' messages). JSON, which records were written in before, costs a text
//! rendering of every field on every write; this is a few varints and the raw bytes. A record written as JSON
//! (it starts with `{`, never with the version byte) still reads, so a database of an earlier relayd resumes.
//!
//! The state and the last change come first (fields 1 and 2): the index reads only those, decoding
//! [`StoredHead`] and skipping the rest.

use prost::Message;
use relayd_messages::{
    ChainId, ChannelId, CorrelationId, Height, Packet, PacketKey, PacketState, PortId, Sequence,
    SkipReason,
};

use super::summary::RecordHead;
use super::{PacketRecord, StoreError, Transition};

/// The first byte of a record in this encoding (JSON text starts with `{` or whitespace, never with it).
const VERSION_1: u8 = 1;

/// A record as protobuf fields. Numbers are stable: they are what the database holds.
#[derive(Clone, PartialEq, Message)]
struct StoredRecord {
    #[prost(uint32, tag = "1")]
    state: u32,
    #[prost(uint64, tag = "2")]
    updated_ms: u64,
    #[prost(string, tag = "3")]
    src_chain: String,
    #[prost(string, tag = "4")]
    src_port: String,
    #[prost(string, tag = "5")]
    src_channel: String,
    #[prost(uint64, tag = "6")]
    sequence: u64,
    #[prost(string, tag = "7")]
    dst_chain: String,
    #[prost(string, tag = "8")]
    dst_port: String,
    #[prost(string, tag = "9")]
    dst_channel: String,
    #[prost(bytes = "vec", tag = "10")]
    data: Vec<u8>,
    #[prost(message, optional, tag = "11")]
    timeout_height: Option<StoredHeight>,
    #[prost(uint64, tag = "12")]
    timeout_timestamp_ns: u64,
    #[prost(uint64, tag = "13")]
    correlation: u64,
    #[prost(uint64, tag = "14")]
    send_height: u64,
    #[prost(bytes = "vec", optional, tag = "15")]
    ack: Option<Vec<u8>>,
    #[prost(string, repeated, tag = "16")]
    tx_hashes: Vec<String>,
    #[prost(uint32, tag = "17")]
    attempts: u32,
    #[prost(string, optional, tag = "18")]
    last_error: Option<String>,
    #[prost(uint64, tag = "19")]
    created_ms: u64,
    #[prost(message, repeated, tag = "20")]
    history: Vec<StoredTransition>,
    #[prost(uint32, optional, tag = "21")]
    skip_reason: Option<u32>,
    /// Always true, and encoded last: a record cut short (which protobuf alone would read as one with
    /// fields left out) is told from a whole one.
    #[prost(bool, tag = "31")]
    whole: bool,
}

/// The leading fields of [`StoredRecord`], all the index needs.
#[derive(Clone, PartialEq, Message)]
struct StoredHead {
    #[prost(uint32, tag = "1")]
    state: u32,
    #[prost(uint64, tag = "2")]
    updated_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
struct StoredHeight {
    #[prost(uint64, tag = "1")]
    revision_number: u64,
    #[prost(uint64, tag = "2")]
    revision_height: u64,
}

#[derive(Clone, PartialEq, Message)]
struct StoredTransition {
    #[prost(uint32, tag = "1")]
    state: u32,
    #[prost(uint64, tag = "2")]
    at_ms: u64,
    #[prost(string, optional, tag = "3")]
    tx_hash: Option<String>,
    #[prost(string, optional, tag = "4")]
    error: Option<String>,
}

/// A state's stored number; 0 is left unused, so a missing field never reads as a state.
fn state_code(state: PacketState) -> u32 {
    match state {
        PacketState::Detected => 1,
        PacketState::ProofGenerated => 2,
        PacketState::Submitted => 3,
        PacketState::Confirmed => 4,
        PacketState::Acknowledged => 5,
        PacketState::TimedOut => 6,
        PacketState::Failed => 7,
        PacketState::Skipped => 8,
    }
}

fn state_of(code: u32) -> Option<PacketState> {
    PacketState::ALL
        .into_iter()
        .find(|s| state_code(*s) == code)
}

fn skip_code(reason: SkipReason) -> u32 {
    match reason {
        SkipReason::MemoTooLarge => 1,
        SkipReason::ReceiverTooLarge => 2,
    }
}

fn skip_of(code: u32) -> Option<SkipReason> {
    [SkipReason::MemoTooLarge, SkipReason::ReceiverTooLarge]
        .into_iter()
        .find(|r| skip_code(*r) == code)
}

/// `record` in the stored encoding.
pub fn encode_record(record: &PacketRecord) -> Vec<u8> {
    let p = &record.packet;
    let stored = StoredRecord {
        state: state_code(record.state),
        updated_ms: record.updated_ms,
        src_chain: record.key.src_chain.as_str().to_owned(),
        src_port: record.key.src_port.as_str().to_owned(),
        src_channel: record.key.src_channel.as_str().to_owned(),
        sequence: record.key.sequence.0,
        dst_chain: record.dst_chain.clone(),
        dst_port: p.destination_port.as_str().to_owned(),
        dst_channel: p.destination_channel.as_str().to_owned(),
        data: p.data.clone(),
        timeout_height: p.timeout_height.map(|h| StoredHeight {
            revision_number: h.revision_number,
            revision_height: h.revision_height,
        }),
        timeout_timestamp_ns: p.timeout_timestamp_ns,
        correlation: record.correlation.0,
        send_height: record.send_height,
        ack: record.ack.clone(),
        tx_hashes: record.tx_hashes.clone(),
        attempts: record.attempts,
        last_error: record.last_error.clone(),
        created_ms: record.created_ms,
        history: record
            .history
            .iter()
            .map(|t| StoredTransition {
                state: state_code(t.state),
                at_ms: t.at_ms,
                tx_hash: t.tx_hash.clone(),
                error: t.error.clone(),
            })
            .collect(),
        skip_reason: record.skip_reason.map(skip_code),
        whole: true,
    };
    let mut out = Vec::with_capacity(1 + stored.encoded_len());
    out.push(VERSION_1);
    stored.encode_raw(&mut out);
    out
}

fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Reads a record in either encoding; `key` names it in errors.
pub fn decode_record(key: &str, bytes: &[u8]) -> Result<PacketRecord, StoreError> {
    let Some(body) = bytes.strip_prefix(&[VERSION_1]) else {
        return super::decode(key, bytes);
    };
    let s = StoredRecord::decode(body).map_err(|e| corrupt(key, e.to_string()))?;
    if !s.whole {
        return Err(corrupt(key, "cut short"));
    }
    let id = |e: relayd_messages::IdError| corrupt(key, e.to_string());
    let state = |code| state_of(code).ok_or_else(|| corrupt(key, format!("state {code}")));
    let src_port = PortId::new(s.src_port).map_err(id)?;
    let src_channel = ChannelId::new(s.src_channel).map_err(id)?;
    let history = s
        .history
        .into_iter()
        .map(|t| {
            Ok(Transition {
                state: state(t.state)?,
                at_ms: t.at_ms,
                tx_hash: t.tx_hash,
                error: t.error,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(PacketRecord {
        packet: Packet {
            sequence: Sequence(s.sequence),
            source_port: src_port.clone(),
            source_channel: src_channel.clone(),
            destination_port: PortId::new(s.dst_port).map_err(id)?,
            destination_channel: ChannelId::new(s.dst_channel).map_err(id)?,
            data: s.data,
            timeout_height: s
                .timeout_height
                .map(|h| Height::new(h.revision_number, h.revision_height)),
            timeout_timestamp_ns: s.timeout_timestamp_ns,
        },
        key: PacketKey {
            src_chain: ChainId::new(s.src_chain).map_err(id)?,
            src_port,
            src_channel,
            sequence: Sequence(s.sequence),
        },
        dst_chain: s.dst_chain,
        correlation: CorrelationId(s.correlation),
        state: state(s.state)?,
        send_height: s.send_height,
        ack: s.ack,
        tx_hashes: s.tx_hashes,
        attempts: s.attempts,
        last_error: s.last_error,
        created_ms: s.created_ms,
        updated_ms: s.updated_ms,
        history,
        skip_reason: s
            .skip_reason
            .map(|c| skip_of(c).ok_or_else(|| corrupt(key, format!("skip reason {c}"))))
            .transpose()?,
    })
}

/// Reads the state and last change of a record in either encoding, without the rest.
pub fn decode_head(key: &str, bytes: &[u8]) -> Result<RecordHead, StoreError> {
    let Some(body) = bytes.strip_prefix(&[VERSION_1]) else {
        return super::decode(key, bytes);
    };
    let h = StoredHead::decode(body).map_err(|e| corrupt(key, e.to_string()))?;
    Ok(RecordHead {
        state: state_of(h.state).ok_or_else(|| corrupt(key, format!("state {}", h.state)))?,
        updated_ms: h.updated_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> PacketRecord {
        let key = PacketKey {
            src_chain: ChainId::new("ibc-0").unwrap(),
            src_port: PortId::new("transfer").unwrap(),
            src_channel: ChannelId::new("channel-3").unwrap(),
            sequence: Sequence(42),
        };
        PacketRecord {
            packet: Packet {
                sequence: key.sequence,
                source_port: key.src_port.clone(),
                source_channel: key.src_channel.clone(),
                destination_port: PortId::new("transfer").unwrap(),
                destination_channel: ChannelId::new("channel-9").unwrap(),
                data: b"{\"amount\":\"1\"}".to_vec(),
                timeout_height: Some(Height::new(1, 500)),
                timeout_timestamp_ns: 77,
            },
            key,
            dst_chain: "ibc-1".into(),
            correlation: CorrelationId(9),
            state: PacketState::Confirmed,
            send_height: 12,
            ack: Some(vec![1, 2, 3]),
            tx_hashes: vec!["AB".into(), "CD".into()],
            attempts: 2,
            last_error: Some("out of gas".into()),
            created_ms: 1_000,
            updated_ms: 2_000,
            history: vec![
                Transition {
                    state: PacketState::Detected,
                    at_ms: 1_000,
                    tx_hash: None,
                    error: None,
                },
                Transition {
                    state: PacketState::Confirmed,
                    at_ms: 2_000,
                    tx_hash: Some("CD".into()),
                    error: Some("retried".into()),
                },
            ],
            skip_reason: Some(SkipReason::ReceiverTooLarge),
        }
    }

    #[test]
    fn a_record_reads_back_whole_and_its_head_alone() {
        let r = record();
        let bytes = encode_record(&r);
        assert_eq!(bytes[0], VERSION_1);
        assert_eq!(decode_record("k", &bytes).unwrap(), r);
        let head = decode_head("k", &bytes).unwrap();
        assert_eq!(head.state, PacketState::Confirmed);
        assert_eq!(head.updated_ms, 2_000);
        let json = serde_json::to_vec(&r).unwrap();
        assert!(
            bytes.len() < json.len() / 2,
            "{} bytes against JSON's {}",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn records_written_as_json_still_read() {
        let mut r = record();
        r.skip_reason = None;
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(decode_record("k", &json).unwrap(), r);
        assert_eq!(
            decode_head("k", &json).unwrap().state,
            PacketState::Confirmed
        );
    }

    #[test]
    fn every_state_and_reason_has_its_own_number() {
        for s in PacketState::ALL {
            assert_eq!(state_of(state_code(s)), Some(s));
        }
        assert_eq!(state_of(0), None);
        for r in [SkipReason::MemoTooLarge, SkipReason::ReceiverTooLarge] {
            assert_eq!(skip_of(skip_code(r)), Some(r));
        }
    }

    #[test]
    fn damaged_records_are_reported_not_misread() {
        let bytes = encode_record(&record());
        for cut in 1..bytes.len() {
            assert!(decode_record("k", &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_state = bytes.clone();
        bad_state[2] = 99;
        assert!(decode_record("k", &bad_state).is_err());
        assert!(decode_head("k", &bad_state).is_err());
    }
}
