//! Which route and builder an event observed on a chain concerns: sends start builders, acks and packet ends
//! go to the live builder, handshake events name the handshake, and closed destination ends are remembered.

use relayd_messages::{
    ChainId, ChannelAttributes, ConnectionAttributes, HandshakeState, IbcEvent, PacketKey,
    PacketSeen, RelayObject, Route,
};

use super::{key_of, CoordinatorState};
use crate::coordinator::decisions::Routed;

impl<H, K> CoordinatorState<H, K> {
    /// What an event observed on `chain` asks of the coordinator (channel closes also mark the destination
    /// closed; see [`Self::destination_closed`]).
    pub fn route(
        &self,
        chain: &ChainId,
        event: &IbcEvent,
        tx_hash: Option<&String>,
    ) -> Option<Routed> {
        use HandshakeState as S;
        match event {
            IbcEvent::SendPacket(packet) => {
                let route = self.routes.from_source(
                    chain,
                    packet.source_port.as_str(),
                    packet.source_channel.as_str(),
                )?;
                if !(self.filter)(
                    chain,
                    packet.source_port.as_str(),
                    packet.source_channel.as_str(),
                ) {
                    return None;
                }
                let key = key_of(chain, packet);
                if self.builders.contains_key(&key) || !self.in_scope(&key) {
                    return None;
                }
                Some(Routed::Sent {
                    dst: route.dst.clone(),
                    key,
                })
            }
            IbcEvent::WriteAcknowledgement { packet, .. } => {
                let route = self.routes.to_destination(
                    chain,
                    packet.destination_port.as_str(),
                    packet.destination_channel.as_str(),
                )?;
                if !(self.filter)(
                    &route.src,
                    route.src_port.as_str(),
                    route.src_channel.as_str(),
                ) {
                    return None;
                }
                let key = key_of(&route.src, packet);
                if !self.in_scope(&key) {
                    return None;
                }
                let live = self.builders.contains_key(&key);
                Some(Routed::AckWritten {
                    dst: route.dst.clone(),
                    key,
                    live,
                })
            }
            IbcEvent::AcknowledgePacket(p) | IbcEvent::TimeoutPacket(p) => {
                let key = key_of(chain, p);
                let tx_hash = tx_hash.cloned();
                let seen = match event {
                    IbcEvent::AcknowledgePacket(_) => PacketSeen::AckProcessed { tx_hash },
                    _ => PacketSeen::TimeoutProcessed { tx_hash },
                };
                let live = self.builders.contains_key(&key);
                Some(Routed::Finished { key, seen, live })
            }
            IbcEvent::ConnectionOpenInit(a) => Some(connection_event(chain, a, S::OpenInit)),
            IbcEvent::ConnectionOpenTry(a) => Some(connection_event(chain, a, S::OpenTry)),
            IbcEvent::ConnectionOpenAck(a) => Some(connection_event(chain, a, S::OpenAck)),
            IbcEvent::ConnectionOpenConfirm(a) => Some(connection_event(chain, a, S::OpenConfirm)),
            IbcEvent::ChannelOpenInit(a) => Some(channel_event(chain, a, S::OpenInit)),
            IbcEvent::ChannelOpenTry(a) => Some(channel_event(chain, a, S::OpenTry)),
            IbcEvent::ChannelOpenAck(a) => Some(channel_event(chain, a, S::OpenAck)),
            IbcEvent::ChannelOpenConfirm(a) => Some(channel_event(chain, a, S::OpenConfirm)),
            IbcEvent::ChannelCloseInit(a) => Some(channel_event(chain, a, S::CloseInit)),
            IbcEvent::ChannelCloseConfirm(a) => Some(channel_event(chain, a, S::CloseConfirm)),
            // An ordered channel timed out: this end is closed as by a close init, and the counterparty is
            // confirmed closed the same way.
            IbcEvent::ChannelClosed(a) => Some(channel_event(chain, a, S::CloseInit)),
            _ => None,
        }
    }

    /// A channel end closed on `chain` (close init, close confirm, or closed by an ordered timeout). When it is
    /// the destination of a route, it is remembered and the live builders sending to it are returned: they time
    /// their packets out on close. `None` when no route ends there.
    pub fn destination_closed(
        &mut self,
        chain: &ChainId,
        a: &ChannelAttributes,
    ) -> Option<Vec<PacketKey>> {
        let (port, channel) = (a.port_id.to_string(), a.channel_id.to_string());
        let closes = |r: &Route| r.dst == *chain && r.dst_port == port && r.dst_channel == channel;
        if !self.routes.all().any(&closes) {
            return None;
        }
        self.closed
            .insert((chain.clone(), port.clone(), channel.clone()));
        Some(
            self.builders
                .keys()
                .filter(|key| self.routes.of(key).is_some_and(&closes))
                .cloned()
                .collect(),
        )
    }
}

fn connection_event(chain: &ChainId, a: &ConnectionAttributes, state: HandshakeState) -> Routed {
    Routed::Handshake {
        object: RelayObject::Connection {
            chain: chain.clone(),
            connection: a.connection_id.clone(),
        },
        state,
    }
}

fn channel_event(chain: &ChainId, a: &ChannelAttributes, state: HandshakeState) -> Routed {
    Routed::Handshake {
        object: RelayObject::Channel {
            chain: chain.clone(),
            port: a.port_id.clone(),
            channel: a.channel_id.clone(),
        },
        state,
    }
}
