//! Lifecycle records written together: the coordinator gathers every record change one observed block causes
//! and writes them in one sled transaction, with their channels' counts summed in memory, the pending and
//! retention indexes updated alongside, and the intake entry of the packets it sent (`intake`). A block costs one transaction instead of one per packet, and a crash
//! leaves all of the block's records or none of them.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use relayd_messages::PacketKey;
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::codec::{decode_head, decode_record, encode_record};
use super::packets::{abort_or_db, read_summary, write_summary};
use super::summary::{finished_key, is_compactable, packet_key, ChannelSummary, RecordHead};
use super::{PacketRecord, StateStore, StoreError, Trees};

/// Record changes not yet written, by store key, each already encoded (the last change of a packet wins), and
/// the intake entries added (`Some`) or removed (`None`) with them.
#[derive(Debug, Default, Clone)]
pub struct PacketBatch {
    records: BTreeMap<Vec<u8>, (Vec<u8>, RecordHead)>,
    intake: BTreeMap<u64, Option<Vec<u8>>>,
    /// The chain and height whose events this batch finishes, written with it.
    checkpoint: Option<(String, u64)>,
}

impl PacketBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `record`'s packet's record.
    pub fn put(&mut self, record: &PacketRecord) {
        let head = RecordHead {
            state: record.state,
            updated_ms: record.updated_ms,
        };
        self.records
            .insert(packet_key(&record.key), (encode_record(record), head));
    }

    /// The record of `key` this batch holds, if any.
    pub fn get(&self, key: &PacketKey) -> Option<Result<PacketRecord, StoreError>> {
        self.records
            .get(&packet_key(key))
            .map(|(bytes, _)| decode_record(&key.to_string(), bytes))
    }

    /// Takes in the changes of `newer` (a later batch): its records replace these of the same packets, its
    /// intake changes and checkpoint follow these.
    pub(super) fn absorb(&mut self, newer: &PacketBatch) {
        for (key, record) in &newer.records {
            self.records.insert(key.clone(), record.clone());
        }
        for (entry, change) in &newer.intake {
            match change {
                Some(bytes) => {
                    self.intake.insert(*entry, Some(bytes.clone()));
                }
                None => self.drop_intake(*entry),
            }
        }
        if newer.checkpoint.is_some() {
            self.checkpoint.clone_from(&newer.checkpoint);
        }
    }

    /// Adds intake entry `entry` (encoded by [`super::encode_intake`]).
    pub fn put_intake(&mut self, entry: u64, bytes: Vec<u8>) {
        self.intake.insert(entry, Some(bytes));
    }

    /// Removes intake entry `entry`, all of its packets admitted. One this batch adds is not written at all.
    pub fn drop_intake(&mut self, entry: u64) {
        if let Some(Some(_)) = self.intake.get(&entry) {
            self.intake.remove(&entry);
        } else {
            self.intake.insert(entry, None);
        }
    }

    /// Moves `chain`'s checkpoint to `height` with this batch: the block's records and entry, and the mark that its
    /// events are handled, are written in one transaction.
    pub fn set_checkpoint(&mut self, chain: &str, height: u64) {
        self.checkpoint = Some((chain.to_owned(), height));
    }

    /// Takes the intake entries this batch adds (to keep them in memory when the batch could not be written).
    pub fn take_intake(&mut self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut self.intake)
            .into_iter()
            .filter_map(|(entry, bytes)| Some((entry, bytes?)))
            .collect()
    }

    /// The bytes of intake entry `entry` if this batch adds it.
    pub fn intake(&self, entry: u64) -> Option<&[u8]> {
        self.intake.get(&entry)?.as_deref()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no record and no intake change.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.intake.is_empty()
    }
}

impl StateStore {
    /// A packet's record as it will be once `batch` is written: the batch's if it holds one, else the store's.
    pub fn packet_in(
        &self,
        batch: &PacketBatch,
        key: &PacketKey,
    ) -> Result<Option<PacketRecord>, StoreError> {
        match batch.get(key) {
            Some(r) => r.map(Some),
            None => self.packet(key),
        }
    }

    /// Writes every record of `batch` in one transaction, with the counts of their channels and the pending
    /// and retention indexes. On error nothing of it is written. The writes waiting to be written (`soon`) go
    /// in the same transaction, before it: a record `batch` holds replaces a waiting one, and an intake entry
    /// `batch` removes never leaves before the waiting records made from it.
    pub fn write_batch(&self, batch: &PacketBatch) -> Result<(), StoreError> {
        let mut soon = self.soon();
        if !soon.is_empty() {
            let mut all = soon.clone();
            all.absorb(batch);
            commit(self.trees(), &all)?;
            *soon = PacketBatch::new();
            return Ok(());
        }
        if batch.records.is_empty() {
            // No record changes, so no counts or indexes to keep in step: plain writes, which cost a fraction of
            // a transaction. sled recovers a prefix of its writes, so the entries always land before the
            // checkpoint that passes their block.
            let intake = &self.trees().intake;
            for (entry, bytes) in &batch.intake {
                match bytes {
                    Some(bytes) => intake.insert(entry.to_be_bytes(), bytes.as_slice())?,
                    None => intake.remove(entry.to_be_bytes())?,
                };
            }
            return match &batch.checkpoint {
                Some((chain, height)) => self.set_checkpoint(chain, *height),
                None => Ok(()),
            };
        }
        commit(self.trees(), batch)
    }
}

/// Writes `batch` in one transaction (see [`StateStore::write_batch`]).
pub(super) fn commit(t: &Trees, batch: &PacketBatch) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    (
        &t.packets,
        &t.summary,
        &t.pending,
        &t.finished,
        &t.intake,
        &t.checkpoints,
    )
        .transaction(
            |(packets, summary, pending, finished, intake, checkpoints)| {
                if let Some((chain, height)) = &batch.checkpoint {
                    checkpoints.insert(chain.as_bytes(), &height.to_be_bytes())?;
                }
                for (entry, bytes) in &batch.intake {
                    match bytes {
                        Some(bytes) => intake.insert(&entry.to_be_bytes(), bytes.as_slice())?,
                        None => intake.remove(&entry.to_be_bytes())?,
                    };
                }
                // Each channel's counts are read once, changed in memory and written once.
                let mut sums: BTreeMap<&[u8], ChannelSummary> = BTreeMap::new();
                for (key, (bytes, new)) in &batch.records {
                    let old = packets.insert(key.as_slice(), bytes.as_slice())?;
                    // A record that no longer decodes is counted as new.
                    let old = old.and_then(|v| decode_head("", &v).ok());
                    if old.as_ref().map(|o| o.state) != Some(new.state) {
                        let channel = &key[..key.len().saturating_sub(8)];
                        let s = match sums.entry(channel) {
                            Entry::Occupied(e) => e.into_mut(),
                            Entry::Vacant(e) => e.insert(read_summary(summary, channel)?),
                        };
                        s.moved(old.as_ref().map(|o| o.state), new.state);
                    }
                    if new.state.is_final() {
                        pending.remove(key.as_slice())?;
                    } else {
                        pending.insert(key.as_slice(), sled::IVec::default())?;
                    }
                    if let Some(o) = old.as_ref().filter(|o| is_compactable(o.state)) {
                        finished.remove(finished_key(o.updated_ms, key))?;
                    }
                    if is_compactable(new.state) {
                        finished
                            .insert(finished_key(new.updated_ms, key), sled::IVec::default())?;
                    }
                }
                for (channel, s) in &sums {
                    write_summary(summary, channel, s)?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        )
        .map_err(abort_or_db)
}
