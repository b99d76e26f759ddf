//! Lifecycle records written together: every record change one observed block causes, with the intake entries of
//! the packets it sent (`intake`) and its checkpoint, is gathered into one batch and written in one sled
//! transaction, with the channels' counts summed in memory and the pending and retention indexes updated
//! alongside. A block costs one transaction instead of one per packet (and waiting batches, `soon`, share one),
//! and a crash leaves all of a transaction's changes or none of them.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use relayd_messages::PacketKey;
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::codec::{decode_head, decode_record, encode_record};
use super::packets::{abort_or_db, read_summary, write_summary};
use super::summary::{finished_key, is_compactable, packet_key, ChannelSummary, RecordHead};
use super::{PacketRecord, StateStore, StoreError, Trees};

/// Record changes not yet written, by store key, each already encoded (the last change of a packet wins), the
/// intake entries added (`Some`) or removed (`None`) with them, and the checkpoints they move.
#[derive(Debug, Default, Clone)]
pub struct PacketBatch {
    records: BTreeMap<Vec<u8>, (Vec<u8>, RecordHead)>,
    intake: BTreeMap<u64, Option<Vec<u8>>>,
    /// The height of each chain whose events this batch finishes, written with it.
    checkpoints: BTreeMap<String, u64>,
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
    /// intake changes and checkpoints follow these.
    pub(super) fn absorb(&mut self, newer: PacketBatch) {
        self.records.extend(newer.records);
        for (entry, change) in newer.intake {
            match change {
                Some(bytes) => {
                    self.intake.insert(entry, Some(bytes));
                }
                None => self.drop_intake(entry),
            }
        }
        self.checkpoints.extend(newer.checkpoints);
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
        self.checkpoints.insert(chain.to_owned(), height);
    }

    /// The checkpoint this batch moves `chain` to, if it moves it.
    pub(super) fn checkpoint(&self, chain: &str) -> Option<u64> {
        self.checkpoints.get(chain).copied()
    }

    /// What this batch does to intake entry `entry`: `Some(Some(bytes))` adds it, `Some(None)` removes it,
    /// `None` leaves it.
    pub fn intake(&self, entry: u64) -> Option<Option<&[u8]>> {
        self.intake.get(&entry).map(Option::as_deref)
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Records and intake changes held: what bounds how long writes may wait (`store::soon`).
    pub(super) fn weight(&self) -> usize {
        self.records.len() + self.intake.len()
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.intake.is_empty() && self.checkpoints.is_empty()
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
        super::soon::write_out(&self.inner, Some(batch))
    }
}

/// Writes `batch`: in one transaction when it changes records; as plain writes when it changes only intake
/// entries and checkpoints, which have no counts or indexes to keep in step and cost a fraction of a
/// transaction. sled recovers a prefix of its writes, and the entries are written first, so an entry always
/// lands before the checkpoint that passes its block.
pub(super) fn write(t: &Trees, batch: &PacketBatch) -> Result<(), StoreError> {
    if !batch.records.is_empty() {
        return commit(t, batch);
    }
    for (entry, bytes) in &batch.intake {
        match bytes {
            Some(bytes) => t.intake.insert(entry.to_be_bytes(), bytes.as_slice())?,
            None => t.intake.remove(entry.to_be_bytes())?,
        };
    }
    for (chain, height) in &batch.checkpoints {
        t.checkpoints
            .insert(chain.as_bytes(), &height.to_be_bytes())?;
    }
    Ok(())
}

/// Writes `batch` in one transaction (see [`StateStore::write_batch`]).
fn commit(t: &Trees, batch: &PacketBatch) -> Result<(), StoreError> {
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
                for (chain, height) in &batch.checkpoints {
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
