//! The actor's side of the bounded builder window (`window`) and the intake log (`store::intake`): packets waiting
//! for a slot start, oldest first, as running builders exit. A packet waiting by key starts from its record in the
//! store; a packet waiting in the log gets its record made from its entry as it is admitted, so a block of new
//! packets costs the coordinator one write however long the backlog is.

use relayd_messages::{ChainId, Packet};
use tracing::{info, warn};

use super::actor::CachedEntry;
use super::state::key_of;
use super::window::Admit;
use super::RelayCoordinator;
use crate::store::{decode_intake, encode_intake, PacketBatch};

/// The most packets one intake entry holds. sled keeps up to 16 entries in a leaf and rewrites the leaf as
/// entries come and go, so a block of thousands of new packets is written as several entries of a few tens of
/// KB, not one of megabytes.
pub(super) const INTAKE_ENTRY_PACKETS: usize = 64;

impl RelayCoordinator {
    /// Lets at most `max` packet builders run at once (`[global] max_builders`); the rest wait for a slot.
    pub fn with_max_builders(mut self, max: usize) -> Self {
        self.state.set_max_builders(max);
        self
    }

    /// Starts waiting packets while the window has free slots. A packet finished or halted meanwhile takes no
    /// slot: the next one is tried. Outside a block, the records it makes join the store's waiting writes.
    pub(super) fn admit_waiting(&mut self) {
        let own_batch = self.batch.is_none();
        if own_batch {
            self.batch = Some(PacketBatch::new());
        }
        while let Some(admit) = self.state.admit() {
            match admit {
                Admit::Packet(key, restarts) => match self.record(&key) {
                    Ok(Some(record)) if !record.is_final() => self.spawn(record, restarts),
                    Ok(_) => {}
                    Err(e) => {
                        warn!(packet = %key, error = %e, "cannot read a waiting packet's record; it is found again by clearing")
                    }
                },
                Admit::Logged { entry, index, last } => {
                    if let Some((chain, height, dst, packet)) = self.logged_packet(entry, index) {
                        let key = key_of(&chain, &packet);
                        // Passed over when its record was made another way meanwhile (an ack or its end seen).
                        if self.state.unlog(&key) {
                            self.relay_sent(key, dst, packet, height);
                        }
                    }
                    if last {
                        if let Some(batch) = &mut self.batch {
                            batch.drop_intake(entry);
                        }
                        self.intake_cache = None;
                    }
                }
            }
        }
        if own_batch {
            // Outside a block (a builder exited), the records made go with the builders' own waiting writes:
            // one transaction every few milliseconds rather than one per exit. An entry removed here is written
            // in order after the records made from it.
            self.write_batch();
        }
    }

    /// Hands the batch being gathered to the store's waiting writes and tells the lifecycle changes it held.
    /// Reads see its records, entries and checkpoint at once; the store's writer thread writes them, in one
    /// transaction and in order with the writes before them, within a few milliseconds, so the coordinator never
    /// waits for the disk. If they cannot be written they stay waiting (and readable) for the next attempt, and
    /// until then a restart reads their block again.
    pub(super) fn write_batch(&mut self) {
        let batch = self.batch.take().unwrap_or_default();
        let records = batch.len();
        if let Err(e) = self.store.write_soon(batch) {
            warn!(records, error = %e, "cannot write the lifecycle records yet; they wait for the next write");
        }
        self.notify_held();
    }

    /// Tells the lifecycle changes held while a batch was gathered (its records are written now).
    fn notify_held(&mut self) {
        for notice in std::mem::take(&mut self.held_notices) {
            self.notify(notice);
        }
    }

    /// Writes the packets the block at `height` of `chain` logged as intake entries of at most
    /// [`INTAKE_ENTRY_PACKETS`] (into the block's batch) and queues them behind what waits already.
    pub(super) fn close_intake(&mut self, chain: &ChainId, height: u64) {
        let logged = self.intake.take().unwrap_or_default();
        for chunk in logged.chunks(INTAKE_ENTRY_PACKETS) {
            let id = self.next_intake;
            self.next_intake += 1;
            let count = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            if let Some(batch) = &mut self.batch {
                batch.put_intake(id, encode_intake(chain, height, chunk));
            }
            self.state.queue_entry(id, count);
        }
    }

    /// Packet `index` of intake entry `entry`, with its source chain and send height; the entry is read once
    /// (from the batch being gathered if it is there, else from the store) and kept while it is admitted.
    fn logged_packet(&mut self, entry: u64, index: u32) -> Option<(ChainId, u64, ChainId, Packet)> {
        if self.intake_cache.as_ref().map(|c| c.id) != Some(entry) {
            let held = self.batch.as_ref().and_then(|b| b.intake(entry));
            let read = match held {
                Some(Some(bytes)) => decode_intake(entry, bytes).map(Some),
                Some(None) => Ok(None),
                None => self.store.intake(entry),
            };
            let packets = match read {
                Ok(Some(e)) => Some((e.chain, e.height, e.packets)),
                Ok(None) => {
                    warn!(
                        entry,
                        "an intake entry is missing; its packets are found again by clearing"
                    );
                    None
                }
                Err(e) => {
                    warn!(entry, error = %e, "cannot read an intake entry; its packets are found again by clearing");
                    None
                }
            };
            // An unreadable entry is cached empty: its other places are passed over without asking again.
            self.intake_cache = Some(CachedEntry {
                id: entry,
                packets: packets.map(|(chain, height, packets)| {
                    let packets = packets.into_iter().map(Some).collect();
                    (chain, height, packets)
                }),
            });
        }
        let (chain, height, packets) = self.intake_cache.as_mut()?.packets.as_mut()?;
        let (dst, packet) = packets.get_mut(index as usize)?.take()?;
        Some((chain.clone(), *height, dst, packet))
    }

    /// At start: the intake entries left by the last run wait again, their packets logged again, oldest first.
    /// The log is read once.
    pub(super) fn resume_intake(&mut self) {
        match self.store.next_intake_id() {
            Ok(next) => self.next_intake = next,
            Err(e) => warn!(error = %e, "cannot read the intake log's last entry"),
        }
        let (mut entries, mut packets) = (0usize, 0usize);
        for item in self.store.intake_log_entries() {
            match item {
                Ok((id, Ok(entry))) => {
                    for (_, packet) in &entry.packets {
                        if self.state.log(&key_of(&entry.chain, packet)) {
                            packets += 1;
                        }
                    }
                    let count = u32::try_from(entry.packets.len()).unwrap_or(u32::MAX);
                    self.state.queue_entry(id, count);
                    entries += 1;
                }
                Ok((id, Err(e))) => {
                    warn!(entry = id, error = %e, "cannot read an intake entry; its packets are found again by clearing")
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the intake log; its packets are found again by clearing");
                    break;
                }
            }
        }
        if entries > 0 {
            info!(
                entries,
                packets, "resuming packets observed but not yet started"
            );
        }
    }
}
