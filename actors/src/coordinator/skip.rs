//! Packets the ICS-20 caps (`caps`) skip: their record is written as `skipped`, with the typed reason and a
//! sentence saying which cap, and the lifecycle subscribers (the admin API's event stream and metrics) hear of
//! it. No builder starts, and since the record is final neither a restart nor clearing relays it.

use relayd_messages::{LifecycleChanged, PacketState, RelayObject};
use tracing::info;

use super::caps::Skip;
use super::RelayCoordinator;
use crate::store::{now_ms, PacketRecord, Transition};

impl RelayCoordinator {
    /// Records `record`'s packet as skipped for `skip`.
    pub(super) fn skip(&mut self, mut record: PacketRecord, skip: Skip) {
        let now = now_ms();
        info!(packet = %record.key, reason = %skip.reason, detail = %skip.detail, "packet not relayed");
        // The data is what is too large: the record keeps the sizes (in the detail), not the bytes, so spam
        // does not fill the state database either.
        record.packet.data = Vec::new();
        record.state = PacketState::Skipped;
        record.skip_reason = Some(skip.reason);
        record.last_error = Some(skip.detail.clone());
        record.updated_ms = now;
        record.history.push(Transition {
            state: PacketState::Skipped,
            at_ms: now,
            tx_hash: None,
            error: Some(skip.detail.clone()),
        });
        self.put(&record);
        self.notify(LifecycleChanged {
            object: RelayObject::Packet(record.key.clone()),
            generation: 0,
            correlation: record.correlation,
            state: PacketState::Skipped.as_str().to_owned(),
            tx_hash: None,
            error: Some(skip.detail),
            is_final: true,
        });
    }
}
