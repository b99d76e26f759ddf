//! Writes that may wait a moment: a packet builder's state changes, and the coordinator's blocks (their records,
//! intake entries and checkpoints), are gathered and written together by a writer thread, one transaction every
//! [`SOON_WAIT`] (or once [`SOON_MAX`] changes wait) instead of one per change, which was a third of
//! relayd's CPU in a backlog (`docs/benchmarks.md`, "Where relayd's CPU goes"); and neither the builders nor the
//! coordinator waits for the disk. Reads see the waiting writes, scans write them first, a direct write of the
//! same packet supersedes them, and closing the database writes them. A crash loses the writes still waiting (at
//! most [`SOON_WAIT`] of them) besides what sled had not yet flushed (it flushes every 500 ms), never part of one
//! transaction: a block whose checkpoint was lost is read again, and a builder restarted from an older state
//! proves again from the chain, where every step is idempotent.

use std::sync::{Arc, MutexGuard, Weak};
use std::time::Duration;

use relayd_messages::PacketKey;

use super::batch::write;
use super::handles::Shared;
use super::{PacketBatch, PacketRecord, StateStore, StoreError};

/// The longest a waiting write waits.
pub const SOON_WAIT: Duration = Duration::from_millis(20);
/// Waiting writes (records and intake entries) beyond which the next one writes them all at once, on the caller's
/// thread: what waits in memory stays bounded when the writer thread falls behind.
pub const SOON_MAX: usize = 256;

impl StateStore {
    /// The writes waiting, locked.
    pub(super) fn soon(&self) -> MutexGuard<'_, PacketBatch> {
        self.inner.soon()
    }

    /// Writes `record` within [`SOON_WAIT`], together with the other waiting writes; reads see it at once.
    pub fn put_packet_soon(&self, record: &PacketRecord) -> Result<(), StoreError> {
        let mut batch = PacketBatch::new();
        batch.put(record);
        self.write_soon(batch)
    }

    /// Adds the changes of `batch` to the waiting writes: written within [`SOON_WAIT`] by the writer thread, in
    /// order with them and in one transaction with those waiting then; reads see them at once. If the writes
    /// waiting reach [`SOON_MAX`], the caller writes them now; if that fails they stay waiting.
    pub fn write_soon(&self, batch: PacketBatch) -> Result<(), StoreError> {
        let full = {
            let mut soon = self.soon();
            soon.absorb(batch);
            soon.weight() >= SOON_MAX
        };
        if full {
            return write_out(&self.inner, None);
        }
        Ok(())
    }

    /// Writes every waiting write now.
    pub fn settle(&self) -> Result<(), StoreError> {
        write_out(&self.inner, None)
    }

    /// The waiting write of `key`, if one waits (or is being written).
    pub(super) fn waiting(&self, key: &PacketKey) -> Option<Result<PacketRecord, StoreError>> {
        self.in_waiting(|batch| batch.get(key))
    }

    /// What the waiting writes (or those being written) do to intake entry `entry`: `Some(Some(bytes))` add it,
    /// `Some(None)` remove it, `None` leave it.
    pub(super) fn waiting_intake(&self, entry: u64) -> Option<Option<Vec<u8>>> {
        self.in_waiting(|batch| batch.intake(entry).map(|c| c.map(<[u8]>::to_vec)))
    }

    /// The checkpoint the waiting writes (or those being written) move `chain` to, if they move it.
    pub(super) fn waiting_checkpoint(&self, chain: &str) -> Option<u64> {
        self.in_waiting(|batch| batch.checkpoint(chain))
    }

    /// What `look` finds in the waiting writes, else in those being written (newer first).
    fn in_waiting<T>(&self, look: impl Fn(&PacketBatch) -> Option<T>) -> Option<T> {
        if let Some(found) = look(&self.soon()) {
            return Some(found);
        }
        let writing = self.inner.writing().clone()?;
        look(&writing)
    }
}

/// Writes the waiting writes and then `extra` (if any), in one transaction. While they are written they move
/// from the waiting batch to `writing`, where reads still find them, so the waiting batch is locked only for the
/// moment of taking it: a caller adding a write does not wait for the disk. The writer's turn keeps batches in
/// the order they were taken. If the write fails, nothing of `extra` is written and the waiting writes go back
/// in front of those made meanwhile, for the next attempt.
pub(super) fn write_out(shared: &Shared, extra: Option<&PacketBatch>) -> Result<(), StoreError> {
    let _turn = shared.writer();
    let waiting = {
        let mut soon = shared.soon();
        if soon.is_empty() {
            None
        } else {
            let waiting = Arc::new(std::mem::take(&mut *soon));
            *shared.writing() = Some(Arc::clone(&waiting));
            Some(waiting)
        }
    };
    let written = match (&waiting, extra) {
        (None, None) => return Ok(()),
        (None, Some(extra)) => write(&shared.trees, extra),
        (Some(waiting), None) => write(&shared.trees, waiting),
        (Some(waiting), Some(extra)) => {
            let mut all = PacketBatch::clone(waiting);
            all.absorb(extra.clone());
            write(&shared.trees, &all)
        }
    };
    if let Some(waiting) = waiting {
        if written.is_err() {
            let mut soon = shared.soon();
            let mut back = PacketBatch::clone(&waiting);
            back.absorb(std::mem::take(&mut *soon));
            *soon = back;
        }
        // Cleared only after the trees hold them (or the waiting batch again does).
        *shared.writing() = None;
    }
    written
}

/// Writes the database's waiting writes every [`SOON_WAIT`] while it is open; ends when it closes.
pub(super) fn start_flusher(shared: &Arc<Shared>) {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let spawned = std::thread::Builder::new()
        .name("relayd-store".into())
        .spawn(move || loop {
            std::thread::sleep(SOON_WAIT);
            let Some(shared) = weak.upgrade() else {
                return;
            };
            let written = write_out(&shared, None);
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot write the waiting lifecycle records; trying again");
            }
        });
    if let Err(e) = spawned {
        // Without the thread, waiting writes are written when SOON_MAX gather, on a scan, or on close.
        tracing::warn!(error = %e, "cannot start the state database's writer thread");
    }
}

#[cfg(test)]
mod tests;
