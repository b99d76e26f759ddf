//! Packet lifecycle records and their index. Every write of records (`batch`) updates, in the same sled transaction,
//! its channel's summary (counts by state), the pending index (unfinished packets) and the retention index
//! (finished records by finish time), so a crash never leaves them disagreeing and nothing that reports on
//! the packets has to read every record.

use std::ops::Bound;

use relayd_messages::PacketKey;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::Transactional;

use super::batch::PacketBatch;
use super::codec::{decode_head, decode_record};
use super::summary::{
    chain_prefix, finished_key, is_compactable, packet_key, split_finished_key, ChannelKey,
    ChannelSummary,
};
use super::{decode, encode, PacketRecord, StateStore, StoreError};

/// The `meta` key saying the index was built from the records (a database written before it existed gets it
/// built once, at open).
const INDEX_BUILT: &[u8] = b"packet_index_v1";

/// What a scan of the records reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketScan<'a> {
    /// Only this source chain's records.
    pub chain: Option<&'a str>,
    /// Start after this packet (the previous page's last).
    pub after: Option<&'a PacketKey>,
    /// Only unfinished packets (read through the pending index).
    pub pending_only: bool,
}

impl StateStore {
    /// Writes a packet's lifecycle record, and its channel's counts and indexes with it (a batch of one; see
    /// [`StateStore::write_batch`]).
    pub fn put_packet(&self, record: &PacketRecord) -> Result<(), StoreError> {
        let mut batch = PacketBatch::new();
        batch.put(record);
        self.write_batch(&batch)
    }

    /// A packet's lifecycle record.
    pub fn packet(&self, key: &PacketKey) -> Result<Option<PacketRecord>, StoreError> {
        if let Some(waiting) = self.waiting(key) {
            return waiting.map(Some);
        }
        self.trees()
            .packets
            .get(packet_key(key))?
            .map(|v| decode_record(&key.to_string(), &v))
            .transpose()
    }

    /// Every lifecycle record kept, in key order (chain, port, channel, sequence). This reads them all: the
    /// admin API pages with [`StateStore::scan_packets`] and counts with [`StateStore::summaries`] instead.
    pub fn packets(&self) -> impl Iterator<Item = Result<PacketRecord, StoreError>> + '_ {
        self.scan_packets(PacketScan::default())
    }

    /// The records `scan` selects, in key order, read lazily: a caller takes what it needs.
    pub fn scan_packets(
        &self,
        scan: PacketScan<'_>,
    ) -> Box<dyn Iterator<Item = Result<PacketRecord, StoreError>> + '_> {
        if let Err(e) = self.settle() {
            return Box::new(std::iter::once(Err(e)));
        }
        let t = self.trees();
        let start = match (scan.after, scan.chain) {
            (Some(after), _) => Bound::Excluded(packet_key(after)),
            (None, Some(chain)) => Bound::Included(chain_prefix(chain)),
            (None, None) => Bound::Unbounded,
        };
        let prefix = scan.chain.map(chain_prefix);
        let tree = if scan.pending_only {
            &t.pending
        } else {
            &t.packets
        };
        let entries = tree
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take_while(move |item| match (item, &prefix) {
                (Ok((k, _)), Some(p)) => k.starts_with(p),
                _ => true,
            });
        let pending_only = scan.pending_only;
        Box::new(entries.filter_map(move |item| {
            let (k, v) = match item {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let name = String::from_utf8_lossy(&k).into_owned();
            if !pending_only {
                return Some(decode_record(&name, &v));
            }
            // The index holds keys only; a record finished since the index was read is skipped.
            match t.packets.get(&k) {
                Ok(Some(v)) => Some(decode_record(&name, &v)),
                Ok(None) => None,
                Err(e) => Some(Err(e.into())),
            }
        }))
    }

    /// Records whose packets are not finished: what a restart resumes. Reads the pending index only.
    pub fn unfinished_packets(&self) -> Result<Vec<PacketRecord>, StoreError> {
        self.scan_packets(PacketScan {
            pending_only: true,
            ..PacketScan::default()
        })
        .filter(|r| r.as_ref().map_or(true, |r| !r.is_final()))
        .collect()
    }

    /// Every source channel's counts, kept current by [`StateStore::put_packet`] and compaction.
    pub fn summaries(&self) -> Result<Vec<(ChannelKey, ChannelSummary)>, StoreError> {
        self.settle()?;
        self.trees()
            .summary
            .iter()
            .map(|item| {
                let (k, v) = item?;
                let name = String::from_utf8_lossy(&k).into_owned();
                let channel = ChannelKey::from_prefix(&k).ok_or_else(|| StoreError::Corrupt {
                    key: format!("summary/{name}"),
                    reason: "not a channel key".into(),
                })?;
                Ok((channel, decode(&format!("summary/{name}"), &v)?))
            })
            .collect()
    }

    /// The lowest unfinished sequence of `channel`.
    pub fn oldest_pending(&self, channel: &ChannelKey) -> Result<Option<u64>, StoreError> {
        self.settle()?;
        let prefix = channel.prefix();
        let Some(item) = self.trees().pending.scan_prefix(&prefix).next() else {
            return Ok(None);
        };
        let (k, _) = item?;
        let seq: Option<[u8; 8]> = k.get(prefix.len()..).and_then(|s| s.try_into().ok());
        Ok(seq.map(u64::from_be_bytes))
    }

    /// Removes up to `max` acknowledged or timed-out records that finished before `cutoff_ms`; their channel's
    /// counts keep them. Returns how many were removed (fewer than `max`: none left to remove).
    pub fn compact(&self, cutoff_ms: u64, max: usize) -> Result<usize, StoreError> {
        self.settle()?;
        let t = self.trees();
        let expired: Vec<sled::IVec> = t
            .finished
            .range(..finished_key(cutoff_ms, &[]))
            .keys()
            .take(max)
            .collect::<Result<_, _>>()?;
        for entry in &expired {
            let Some((_, key)) = split_finished_key(entry) else {
                t.finished.remove(entry)?;
                continue;
            };
            let channel = &key[..key.len().saturating_sub(8)];
            (&t.packets, &t.summary, &t.finished)
                .transaction(|(packets, summary, finished)| {
                    finished.remove(entry)?;
                    let Some(v) = packets.get(key)? else {
                        return Ok(());
                    };
                    let head = decode_head(&String::from_utf8_lossy(key), &v)
                        .map_err(ConflictableTransactionError::Abort)?;
                    // Only the record this entry was written for: one changed since has its own entry.
                    if is_compactable(head.state)
                        && finished_key(head.updated_ms, key).as_slice() == entry.as_ref()
                    {
                        packets.remove(key)?;
                        let mut s = read_summary(summary, channel)?;
                        s.compacted(head.state);
                        write_summary(summary, channel, &s)?;
                    }
                    Ok(())
                })
                .map_err(abort_or_db)?;
        }
        Ok(expired.len())
    }

    /// Builds the index from the records if this database has none yet (written before it existed, or by a
    /// build that was interrupted: the build starts over).
    pub(super) fn ensure_index(&self) -> Result<(), StoreError> {
        let t = self.trees();
        if t.meta.contains_key(INDEX_BUILT)? {
            return Ok(());
        }
        t.summary.clear()?;
        t.pending.clear()?;
        t.finished.clear()?;
        let mut summaries = std::collections::BTreeMap::<Vec<u8>, ChannelSummary>::new();
        for item in t.packets.iter() {
            let (k, v) = item?;
            let head = decode_head(&String::from_utf8_lossy(&k), &v)?;
            let channel = k[..k.len().saturating_sub(8)].to_vec();
            summaries
                .entry(channel)
                .or_default()
                .moved(None, head.state);
            if !head.state.is_final() {
                t.pending.insert(&k, sled::IVec::default())?;
            }
            if is_compactable(head.state) {
                t.finished
                    .insert(finished_key(head.updated_ms, &k), sled::IVec::default())?;
            }
        }
        for (channel, s) in summaries {
            t.summary
                .insert(channel.as_slice(), encode("summary", &s)?)?;
        }
        t.meta.insert(INDEX_BUILT, sled::IVec::default())?;
        t.meta.flush()?;
        Ok(())
    }
}

pub(super) fn read_summary(
    summary: &TransactionalTree,
    channel: &[u8],
) -> ConflictableTransactionResult<ChannelSummary, StoreError> {
    match summary.get(channel)? {
        Some(v) => decode(&String::from_utf8_lossy(channel), &v)
            .map_err(ConflictableTransactionError::Abort),
        None => Ok(ChannelSummary::default()),
    }
}

pub(super) fn write_summary(
    summary: &TransactionalTree,
    channel: &[u8],
    s: &ChannelSummary,
) -> ConflictableTransactionResult<(), StoreError> {
    let bytes = encode("summary", s).map_err(ConflictableTransactionError::Abort)?;
    summary.insert(channel, bytes)?;
    Ok(())
}

pub(super) fn abort_or_db(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Db(e),
    }
}
