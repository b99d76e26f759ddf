//! Record writes that may wait a moment: a packet builder's state changes are gathered and written together, one
//! transaction every [`SOON_WAIT`] (or every [`SOON_MAX`] records) instead of one per change, which was a third
//! of relayd's CPU in a backlog (`docs/benchmarks.md`, "Where relayd's CPU goes"). Reads see the waiting writes,
//! scans write them first, a direct write of the same packet supersedes them, and closing the database writes
//! them. A crash loses the writes still waiting (at most [`SOON_WAIT`] of them) besides what sled had not yet
//! flushed (it flushes every 500 ms): a builder restarted from an older state proves again from the chain, where
//! every step is idempotent.

use std::sync::{Arc, MutexGuard, Weak};
use std::time::Duration;

use relayd_messages::PacketKey;

use super::batch::commit;
use super::handles::Shared;
use super::{PacketBatch, PacketRecord, StateStore, StoreError};

/// The longest a waiting write waits.
pub const SOON_WAIT: Duration = Duration::from_millis(20);
/// Waiting writes beyond which the next one writes them all at once.
pub const SOON_MAX: usize = 256;

impl StateStore {
    /// The writes waiting; held, no other packet write runs.
    pub(super) fn soon(&self) -> MutexGuard<'_, PacketBatch> {
        self.inner.soon()
    }

    /// Writes `record` within [`SOON_WAIT`], together with the other waiting writes; reads see it at once.
    pub fn put_packet_soon(&self, record: &PacketRecord) -> Result<(), StoreError> {
        let mut soon = self.soon();
        soon.put(record);
        if soon.len() >= SOON_MAX {
            return write_out(self.trees(), &mut soon);
        }
        Ok(())
    }

    /// Adds the changes of `batch` to the waiting writes (written within [`SOON_WAIT`], in order with them).
    pub fn write_soon(&self, batch: &PacketBatch) -> Result<(), StoreError> {
        let mut soon = self.soon();
        soon.absorb(batch);
        if soon.len() >= SOON_MAX {
            return write_out(self.trees(), &mut soon);
        }
        Ok(())
    }

    /// Writes every waiting write now.
    pub fn settle(&self) -> Result<(), StoreError> {
        write_out(self.trees(), &mut self.soon())
    }

    /// The waiting write of `key`, if one waits.
    pub(super) fn waiting(&self, key: &PacketKey) -> Option<Result<PacketRecord, StoreError>> {
        self.soon().get(key)
    }
}

/// Writes `soon` out, under its lock, so no read falls between the batch leaving memory and reaching the trees.
fn write_out(trees: &super::Trees, soon: &mut PacketBatch) -> Result<(), StoreError> {
    if soon.is_empty() {
        return Ok(());
    }
    let batch = std::mem::take(soon);
    let written = commit(trees, &batch);
    if written.is_err() {
        // Kept for the next attempt; a newer write of a packet meanwhile replaces its entry.
        *soon = batch;
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
            let written = write_out(&shared.trees, &mut shared.soon());
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
