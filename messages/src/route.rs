//! A relayed direction of a channel, with the clients that judge its proofs: what the coordinator relays along
//! (resolved from chain state at start, or later by [`crate::AddRoutes`]).

use crate::{ChainId, ClientId};

/// One direction of a channel: packets sent on `src` to `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The sending chain.
    pub src: ChainId,
    /// Its port.
    pub src_port: String,
    /// Its channel.
    pub src_channel: String,
    /// The receiving chain.
    pub dst: ChainId,
    /// Its port.
    pub dst_port: String,
    /// Its channel.
    pub dst_channel: String,
    /// The client on `dst` that tracks `src` (judges receive proofs).
    pub dst_client: ClientId,
    /// The client on `src` that tracks `dst` (judges ack and timeout proofs).
    pub src_client: ClientId,
    /// Ordered channels deliver in sequence order.
    pub ordered: bool,
    /// The configured priority of the path (higher first when a chain's transactions are contended).
    pub priority: u8,
}

impl Route {
    /// `port/channel` of the receiving end when the channel is ordered: what a receive's
    /// [`crate::SubmitTx::ordered_channel`] names.
    pub fn dst_ordered_end(&self) -> Option<String> {
        self.ordered
            .then(|| format!("{}/{}", self.dst_port, self.dst_channel))
    }

    /// `port/channel` of the sending end when the channel is ordered: what an acknowledgement's or timeout's
    /// [`crate::SubmitTx::ordered_channel`] names.
    pub fn src_ordered_end(&self) -> Option<String> {
        self.ordered
            .then(|| format!("{}/{}", self.src_port, self.src_channel))
    }

    /// The key of packet `sequence` sent along this route (`None` if the route's ids are malformed).
    pub fn key(&self, sequence: u64) -> Option<crate::PacketKey> {
        Some(crate::PacketKey {
            src_chain: self.src.clone(),
            src_port: crate::PortId::new(self.src_port.clone()).ok()?,
            src_channel: crate::ChannelId::new(self.src_channel.clone()).ok()?,
            sequence: crate::Sequence(sequence),
        })
    }

    /// A request to clear every pending packet of this route (on start and every `clear_interval` blocks).
    pub fn clear_all(&self) -> crate::ClearPackets {
        crate::ClearPackets {
            correlation: crate::CorrelationId::fresh(),
            chain: self.src.clone(),
            port: self.src_port.clone(),
            channel: self.src_channel.clone(),
            sequences: None,
        }
    }

    /// The opposite direction of the same channel.
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst.clone(),
            src_port: self.dst_port.clone(),
            src_channel: self.dst_channel.clone(),
            dst: self.src.clone(),
            dst_port: self.src_port.clone(),
            dst_channel: self.src_channel.clone(),
            dst_client: self.src_client.clone(),
            src_client: self.dst_client.clone(),
            ordered: self.ordered,
            priority: self.priority,
        }
    }
}
