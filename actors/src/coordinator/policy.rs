//! What a configuration reload changes in a running coordinator: the channel filters, the ICS-20 caps and the
//! clearing intervals at once, and the routes of paths added or removed. Builders already running keep going;
//! the new rules apply to what the coordinator decides from then on.

use std::collections::HashMap;

use actix::{Handler, Message};
use relayd_config::PacketFilter;
use relayd_messages::{ChainId, Route};
use tracing::info;

use super::caps::Ics20Caps;
use super::state::ChannelFilter;
use super::RelayCoordinator;

/// The filter that relays a source channel when its chain's `packet_filter` allows it (chains without one
/// relay everything).
pub fn channel_filter(filters: HashMap<ChainId, PacketFilter>) -> ChannelFilter {
    Box::new(move |chain: &ChainId, port: &str, channel: &str| {
        filters.get(chain).is_none_or(|f| f.allows(port, channel))
    })
}

/// Replaces the relaying rules a reload can change.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ApplyPolicy {
    /// Each chain's `packet_filter`.
    pub filters: HashMap<ChainId, PacketFilter>,
    /// The ICS-20 caps.
    pub caps: Ics20Caps,
    /// Each chain's `clear_interval`.
    pub clear_intervals: HashMap<ChainId, u64>,
}

/// Stops relaying the routes of removed paths.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RemoveRoutes(pub Vec<Route>);

impl Handler<ApplyPolicy> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: ApplyPolicy, _: &mut Self::Context) {
        self.meter.handled();
        info!(
            max_memo = msg.caps.max_memo,
            max_receiver = msg.caps.max_receiver,
            "relaying rules applied"
        );
        self.state.set_filter(channel_filter(msg.filters));
        self.state.set_caps(msg.caps);
        self.state.set_clear_intervals(msg.clear_intervals);
    }
}

impl Handler<RemoveRoutes> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: RemoveRoutes, _: &mut Self::Context) {
        self.meter.handled();
        self.state.remove_routes(&msg.0);
    }
}
