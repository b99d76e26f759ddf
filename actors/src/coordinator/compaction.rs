//! Compaction of finished packet records. The coordinator writes the records, so it also removes the ones
//! past their retention, in bounded passes that never hold its Arbiter for long; the per-channel counts keep
//! the removed packets (see `store/packets.rs`).

use std::time::Duration;

use actix::{AsyncContext, Context};
use tracing::{debug, warn};

use super::actor::RelayCoordinator;
use crate::store::now_ms;

/// Most records removed by one pass.
const BATCH: usize = 1_000;
/// Time between passes (shorter when the retention is).
const EVERY: Duration = Duration::from_secs(60);
/// Time before the next pass when one removed a full batch (more are waiting).
const AGAIN: Duration = Duration::from_secs(1);

impl RelayCoordinator {
    /// Removes the records of packets acknowledged or timed out more than `retention` ago.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Runs a compaction pass after `after`, and keeps running them.
    pub(super) fn schedule_compaction(&self, ctx: &mut Context<Self>, after: Duration) {
        let Some(retention) = self.retention else {
            return;
        };
        ctx.run_later(after, move |act, ctx| {
            let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
            let cutoff = now_ms().saturating_sub(retention_ms);
            let next = match act.store.compact(cutoff, BATCH) {
                Ok(n) if n >= BATCH => AGAIN,
                Ok(n) => {
                    if n > 0 {
                        debug!(records = n, "finished packet records compacted");
                    }
                    EVERY.min(retention)
                }
                Err(e) => {
                    warn!(error = %e, "cannot compact finished packet records");
                    EVERY.min(retention)
                }
            };
            act.schedule_compaction(ctx, next);
        });
    }
}
