//! Ordered channels' lanes: ICS-04 receives an ordered channel's packets strictly in sequence, so the
//! coordinator lets one packet per lane be received at a time and keeps the rest waiting in order.

use std::collections::BTreeMap;

use relayd_messages::{ChainId, PacketKey, PacketState};

use super::CoordinatorState;
use crate::store::PacketRecord;

/// One ordered channel direction: ICS-04 receives its packets strictly in sequence, so one packet at a time is
/// worked on until it is received, and the rest wait in sequence order.
#[derive(Debug, Default)]
pub(super) struct OrderedLane {
    pub(super) active: Option<u64>,
    pub(super) waiting: BTreeMap<u64, (PacketRecord, u32)>,
}

pub(super) type Lane = (ChainId, String, String);

pub(super) fn lane_of(key: &PacketKey) -> Lane {
    (
        key.src_chain.clone(),
        key.src_port.to_string(),
        key.src_channel.to_string(),
    )
}

impl<H, K> CoordinatorState<H, K> {
    /// The packet `key` of an ordered route no longer holds its lane (received, finished, or stopped): the
    /// lowest waiting sequence goes next, returned to be started.
    pub fn release_lane(&mut self, key: &PacketKey) -> Option<(PacketRecord, u32)> {
        // Called for every packet received or finished; most relays have no ordered channel.
        if self.ordered.is_empty() {
            return None;
        }
        let lane = self.ordered.get_mut(&lane_of(key))?;
        if lane.active != Some(key.sequence.0) {
            return None;
        }
        lane.active = None;
        lane.waiting.pop_first().map(|(_, next)| next)
    }

    /// A packet's lifecycle changed: once received (or done) the next packet of its ordered lane may go.
    pub fn lifecycle_changed(
        &mut self,
        key: &PacketKey,
        state: PacketState,
        is_final: bool,
    ) -> Option<(PacketRecord, u32)> {
        if state == PacketState::Confirmed || is_final {
            return self.release_lane(key);
        }
        None
    }
}
