//! Relay objects: the things a PacketBuilder works on, each with a stable identity so that at most one
//! builder exists per object.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ChainId, ChannelId, ConnectionId, PortId, Sequence};

/// Identifies one packet for its whole life: the chain, port and channel it was sent from, and its sequence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PacketKey {
    /// The chain where the packet was sent.
    pub src_chain: ChainId,
    /// The sending port.
    pub src_port: PortId,
    /// The sending channel.
    pub src_channel: ChannelId,
    /// The packet's sequence on that channel.
    pub sequence: Sequence,
}

impl fmt::Display for PacketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.src_chain, self.src_port, self.src_channel, self.sequence
        )
    }
}

/// What a builder is responsible for. Handshake objects are named by the end on the chain that emitted the
/// event; packets by their source end.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RelayObject {
    /// One packet, from send to acknowledgement or timeout.
    Packet(PacketKey),
    /// A connection handshake.
    Connection {
        /// The chain holding this end of the connection.
        chain: ChainId,
        /// The connection's id on that chain.
        connection: ConnectionId,
    },
    /// A channel handshake or closing.
    Channel {
        /// The chain holding this end of the channel.
        chain: ChainId,
        /// The channel's port on that chain.
        port: PortId,
        /// The channel's id on that chain.
        channel: ChannelId,
    },
}

impl fmt::Display for RelayObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Packet(key) => write!(f, "packet:{key}"),
            Self::Connection { chain, connection } => write!(f, "connection:{chain}/{connection}"),
            Self::Channel {
                chain,
                port,
                channel,
            } => write!(f, "channel:{chain}/{port}/{channel}"),
        }
    }
}

/// How far a connection or channel handshake has come. The order is the handshake's: a builder for a higher
/// state replaces one for a lower state, and lower events are discarded (ADR-002 "Event Handler").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeState {
    /// `*_open_init` was executed on one end.
    OpenInit,
    /// `*_open_try` was executed on the other end.
    OpenTry,
    /// `*_open_ack` was executed on the initiating end.
    OpenAck,
    /// `*_open_confirm` was executed; the handshake is complete.
    OpenConfirm,
    /// `chan_close_init` was executed on one end of an open channel.
    CloseInit,
    /// `chan_close_confirm` was executed on the other end; the channel is closed on both.
    CloseConfirm,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seq: u64) -> PacketKey {
        PacketKey {
            src_chain: ChainId::new("ibc-0").unwrap(),
            src_port: PortId::new("transfer").unwrap(),
            src_channel: ChannelId::new("channel-0").unwrap(),
            sequence: Sequence(seq),
        }
    }

    #[test]
    fn handshake_states_follow_protocol_order() {
        use HandshakeState::*;
        assert!(OpenInit < OpenTry && OpenTry < OpenAck && OpenAck < OpenConfirm);
    }

    #[test]
    fn objects_print_their_identity() {
        assert_eq!(
            RelayObject::Packet(key(5)).to_string(),
            "packet:ibc-0/transfer/channel-0/5"
        );
        let chan = RelayObject::Channel {
            chain: ChainId::new("ibc-1").unwrap(),
            port: PortId::new("transfer").unwrap(),
            channel: ChannelId::new("channel-3").unwrap(),
        };
        assert_eq!(chan.to_string(), "channel:ibc-1/transfer/channel-3");
    }

    #[test]
    fn packet_keys_order_by_sequence_within_a_channel() {
        assert!(key(2) < key(10));
    }
}
