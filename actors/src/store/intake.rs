//! The intake log: the packets one observed block sent, written as one entry in the block's transaction, so a
//! block of new packets costs one write however many it holds. Their lifecycle records are made later, as the
//! builder window admits them (one at a time, oldest entry first); an entry is removed once all of its packets
//! were admitted. After a restart the entries left are admitted again, and a packet whose record exists by then
//! is not made twice.
//!
//! An entry is a version byte, its packet count (4 bytes, big-endian, so the count is read without decoding the
//! rest) and a protobuf message. The packets are encoded by hand from borrowed fields (no copy of a port, channel
//! or payload per packet) and decoded with the derived [`StoredIntake`].

use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;
use relayd_messages::{ChainId, ChannelId, Height, Packet, PortId, Sequence};

use super::{StateStore, StoreError};

/// The first byte of an entry in this encoding.
const VERSION_1: u8 = 1;

/// One intake entry as read back: the source chain, the height of the block that sent the packets, and each
/// packet with its destination chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeEntry {
    /// The chain the packets were sent on.
    pub chain: ChainId,
    /// The block that sent them.
    pub height: u64,
    /// The packets, in the order they were sent, each with the chain it goes to.
    pub packets: Vec<(ChainId, Packet)>,
}

#[derive(Clone, PartialEq, Message)]
struct StoredIntake {
    #[prost(string, tag = "1")]
    chain: String,
    #[prost(uint64, tag = "2")]
    height: u64,
    #[prost(message, repeated, tag = "3")]
    packets: Vec<StoredIntakePacket>,
}

#[derive(Clone, PartialEq, Message)]
struct StoredIntakePacket {
    #[prost(string, tag = "1")]
    dst_chain: String,
    #[prost(uint64, tag = "2")]
    sequence: u64,
    #[prost(string, tag = "3")]
    src_port: String,
    #[prost(string, tag = "4")]
    src_channel: String,
    #[prost(string, tag = "5")]
    dst_port: String,
    #[prost(string, tag = "6")]
    dst_channel: String,
    #[prost(bytes = "vec", tag = "7")]
    data: Vec<u8>,
    #[prost(uint64, optional, tag = "8")]
    timeout_revision_number: Option<u64>,
    #[prost(uint64, optional, tag = "9")]
    timeout_revision_height: Option<u64>,
    #[prost(uint64, tag = "10")]
    timeout_timestamp_ns: u64,
}

fn put_bytes(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn put_u64(tag: u32, value: u64, out: &mut Vec<u8>) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(value, out);
}

/// The packet fields of [`StoredIntakePacket`], written into `out`.
fn encode_packet(dst: &ChainId, p: &Packet, out: &mut Vec<u8>) {
    put_bytes(1, dst.as_str().as_bytes(), out);
    put_u64(2, p.sequence.0, out);
    put_bytes(3, p.source_port.as_str().as_bytes(), out);
    put_bytes(4, p.source_channel.as_str().as_bytes(), out);
    put_bytes(5, p.destination_port.as_str().as_bytes(), out);
    put_bytes(6, p.destination_channel.as_str().as_bytes(), out);
    put_bytes(7, &p.data, out);
    if let Some(h) = p.timeout_height {
        put_u64(8, h.revision_number, out);
        put_u64(9, h.revision_height, out);
    }
    put_u64(10, p.timeout_timestamp_ns, out);
}

/// Encodes the packets `packets` that block `height` of `chain` sent, as one entry.
pub fn encode_intake(chain: &ChainId, height: u64, packets: &[(ChainId, Packet)]) -> Vec<u8> {
    let count = u32::try_from(packets.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(
        16 + packets
            .iter()
            .map(|(_, p)| 64 + p.data.len())
            .sum::<usize>(),
    );
    out.push(VERSION_1);
    out.extend_from_slice(&count.to_be_bytes());
    put_bytes(1, chain.as_str().as_bytes(), &mut out);
    put_u64(2, height, &mut out);
    let mut one = Vec::with_capacity(128);
    for (dst, p) in packets.iter().take(count as usize) {
        one.clear();
        encode_packet(dst, p, &mut one);
        put_bytes(3, &one, &mut out);
    }
    out
}

fn corrupt(entry: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: format!("intake/{entry}"),
        reason: reason.into(),
    }
}

/// The packet count of an entry, read from its header.
fn count_of(entry: u64, bytes: &[u8]) -> Result<u32, StoreError> {
    match bytes {
        [VERSION_1, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(corrupt(entry, "unknown encoding")),
    }
}

/// Decodes entry `entry` (named in errors).
pub fn decode_intake(entry: u64, bytes: &[u8]) -> Result<IntakeEntry, StoreError> {
    let count = count_of(entry, bytes)?;
    let s = StoredIntake::decode(&bytes[5..]).map_err(|e| corrupt(entry, e.to_string()))?;
    if s.packets.len() != count as usize {
        return Err(corrupt(
            entry,
            format!("{} packets where {count} were written", s.packets.len()),
        ));
    }
    let id = |e: relayd_messages::IdError| corrupt(entry, e.to_string());
    let packets = s
        .packets
        .into_iter()
        .map(|p| {
            let timeout_height = match (p.timeout_revision_number, p.timeout_revision_height) {
                (Some(n), Some(h)) => Some(Height::new(n, h)),
                _ => None,
            };
            Ok((
                ChainId::new(p.dst_chain).map_err(id)?,
                Packet {
                    sequence: Sequence(p.sequence),
                    source_port: PortId::new(p.src_port).map_err(id)?,
                    source_channel: ChannelId::new(p.src_channel).map_err(id)?,
                    destination_port: PortId::new(p.dst_port).map_err(id)?,
                    destination_channel: ChannelId::new(p.dst_channel).map_err(id)?,
                    data: p.data,
                    timeout_height,
                    timeout_timestamp_ns: p.timeout_timestamp_ns,
                },
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(IntakeEntry {
        chain: ChainId::new(s.chain).map_err(id)?,
        height: s.height,
        packets,
    })
}

impl StateStore {
    /// Intake entry `entry`, if it is still there.
    pub fn intake(&self, entry: u64) -> Result<Option<IntakeEntry>, StoreError> {
        if let Some(change) = self.waiting_intake(entry) {
            return change.map(|bytes| decode_intake(entry, &bytes)).transpose();
        }
        self.trees()
            .intake
            .get(entry.to_be_bytes())?
            .map(|v| decode_intake(entry, &v))
            .transpose()
    }

    /// Every intake entry left (id and packet count), oldest first.
    pub fn intake_entries(&self) -> Result<Vec<(u64, u32)>, StoreError> {
        self.settle()?;
        self.intake_log()
            .map(|item| {
                let (id, bytes) = item?;
                Ok((id, count_of(id, &bytes)?))
            })
            .collect()
    }

    /// Every intake entry left, oldest first, each decoded as it is reached (one read of the log).
    pub fn intake_log_entries(
        &self,
    ) -> impl Iterator<Item = Result<(u64, Result<IntakeEntry, StoreError>), StoreError>> + '_ {
        let settled = self.settle().err().map(Err);
        settled.into_iter().chain(
            self.intake_log()
                .map(|item| item.map(|(id, bytes)| (id, decode_intake(id, &bytes)))),
        )
    }

    /// The raw entries, oldest first.
    fn intake_log(&self) -> impl Iterator<Item = Result<(u64, sled::IVec), StoreError>> + '_ {
        self.trees().intake.iter().map(|item| {
            let (k, v) = item?;
            let id = <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt(0, "a key that is not an entry id"))?;
            Ok((id, v))
        })
    }

    /// The id the next intake entry takes: one past the newest left (entries are written in id order).
    pub fn next_intake_id(&self) -> Result<u64, StoreError> {
        self.settle()?;
        Ok(match self.trees().intake.last()? {
            Some((k, _)) => <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt(0, "a key that is not an entry id"))?
                .saturating_add(1),
            None => 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64, timeout_height: Option<Height>) -> Packet {
        Packet {
            sequence: Sequence(seq),
            source_port: PortId::new("transfer").unwrap(),
            source_channel: ChannelId::new("channel-3").unwrap(),
            destination_port: PortId::new("transfer").unwrap(),
            destination_channel: ChannelId::new("channel-9").unwrap(),
            data: format!("{{\"amount\":\"{seq}\"}}").into_bytes(),
            timeout_height,
            timeout_timestamp_ns: 1_700_000_000_000_000_000 + seq,
        }
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let chain = ChainId::new("ibc-0").unwrap();
        let dst = ChainId::new("ibc-1").unwrap();
        let packets = vec![
            (dst.clone(), packet(1, None)),
            (dst.clone(), packet(2, Some(Height::new(0, 77)))),
            (
                dst,
                Packet {
                    data: Vec::new(),
                    ..packet(3, Some(Height::new(4, 0)))
                },
            ),
        ];
        let bytes = encode_intake(&chain, 41, &packets);
        assert_eq!(count_of(5, &bytes).unwrap(), 3);
        let entry = decode_intake(5, &bytes).unwrap();
        assert_eq!(
            entry,
            IntakeEntry {
                chain,
                height: 41,
                packets
            }
        );
    }

    #[test]
    fn an_entry_cut_short_or_of_another_encoding_is_an_error_naming_it() {
        let chain = ChainId::new("ibc-0").unwrap();
        let dst = ChainId::new("ibc-1").unwrap();
        let bytes = encode_intake(
            &chain,
            1,
            &[(dst.clone(), packet(1, None)), (dst, packet(2, None))],
        );
        // Cut between the two packets: the count in the header tells.
        let first_end = bytes.len() - (bytes.len() - 5) / 2;
        for cut in [&bytes[..3], &bytes[..first_end]] {
            let e = decode_intake(9, cut).unwrap_err();
            assert!(e.to_string().contains("intake/9"), "{e}");
        }
        let e = decode_intake(9, b"{\"json\":1}").unwrap_err();
        assert!(e.to_string().contains("unknown encoding"), "{e}");
    }

    fn store() -> StateStore {
        StateStore::from_db(sled::Config::new().temporary(true).open().unwrap()).unwrap()
    }

    #[test]
    fn entries_are_written_with_the_blocks_records_and_checkpoint_and_dropped_when_admitted() {
        let store = store();
        let chain = ChainId::new("ibc-0").unwrap();
        let dst = ChainId::new("ibc-1").unwrap();
        assert_eq!(store.next_intake_id().unwrap(), 0);

        // A block with a record change, an entry and the checkpoint: one transaction.
        let mut batch = super::super::PacketBatch::new();
        batch.put(&super::super::tests::record("channel-3", 1, "detected", 5));
        let packets = vec![
            (dst.clone(), packet(2, None)),
            (dst.clone(), packet(3, None)),
        ];
        batch.put_intake(0, encode_intake(&chain, 8, &packets));
        batch.set_checkpoint("ibc-0", 8);
        store.write_batch(&batch).unwrap();
        assert_eq!(store.intake_entries().unwrap(), [(0, 2)]);
        assert_eq!(store.intake(0).unwrap().unwrap().packets, packets);
        assert_eq!(store.checkpoint("ibc-0").unwrap(), Some(8));
        assert_eq!(store.next_intake_id().unwrap(), 1);

        // A block with only an entry (every slot taken): plain writes, entry and checkpoint both there.
        let mut batch = super::super::PacketBatch::new();
        batch.put_intake(1, encode_intake(&chain, 9, &packets[..1]));
        batch.set_checkpoint("ibc-0", 9);
        store.write_batch(&batch).unwrap();
        assert_eq!(store.intake_entries().unwrap(), [(0, 2), (1, 1)]);
        assert_eq!(store.checkpoint("ibc-0").unwrap(), Some(9));

        // An entry added and fully admitted within one batch is never written; an older one is removed.
        let mut batch = super::super::PacketBatch::new();
        batch.put_intake(2, encode_intake(&chain, 10, &packets));
        batch.drop_intake(2);
        batch.drop_intake(0);
        assert_eq!(batch.intake(2), None);
        assert_eq!(batch.intake(0), Some(None));
        store.write_batch(&batch).unwrap();
        assert_eq!(store.intake_entries().unwrap(), [(1, 1)]);
        assert!(store.intake(0).unwrap().is_none());
        assert_eq!(store.next_intake_id().unwrap(), 2);
    }
}
