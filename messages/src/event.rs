//! IBC events as relayd reads them from chains: typed, with the identifiers already checked.
//!
//! The set is ADR-002's Appendix A plus write_acknowledgement, acknowledge_packet, timeout_packet and the
//! channel close events.

use serde::{Deserialize, Serialize};

use crate::{ChannelId, ClientId, ConnectionId, HandshakeState, Height, PortId, Sequence};

/// A packet as events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    /// Sequence on the source channel.
    pub sequence: Sequence,
    /// Sending port.
    pub source_port: PortId,
    /// Sending channel.
    pub source_channel: ChannelId,
    /// Receiving port.
    pub destination_port: PortId,
    /// Receiving channel.
    pub destination_channel: ChannelId,
    /// Application data (empty in acknowledge and timeout events, which do not carry it).
    pub data: Vec<u8>,
    /// Height on the destination after which the packet times out; `None` means no height timeout.
    pub timeout_height: Option<Height>,
    /// Destination time (ns since the epoch) after which the packet times out; 0 means none.
    pub timeout_timestamp_ns: u64,
}

/// The identifiers a connection handshake event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionAttributes {
    /// The connection on the emitting chain.
    pub connection_id: ConnectionId,
    /// The client it is built on.
    pub client_id: ClientId,
    /// The counterparty's connection, once known.
    pub counterparty_connection_id: Option<ConnectionId>,
    /// The counterparty's client.
    pub counterparty_client_id: ClientId,
}

/// The identifiers a channel handshake or close event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAttributes {
    /// The port on the emitting chain.
    pub port_id: PortId,
    /// The channel on the emitting chain.
    pub channel_id: ChannelId,
    /// The counterparty's port.
    pub counterparty_port_id: PortId,
    /// The counterparty's channel, once known.
    pub counterparty_channel_id: Option<ChannelId>,
    /// The connection the channel runs over.
    pub connection_id: ConnectionId,
}

/// One IBC event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IbcEvent {
    /// A client was created.
    CreateClient {
        /// The new client.
        client_id: ClientId,
        /// Its type, e.g. `07-tendermint`.
        client_type: String,
        /// Height of its first consensus state.
        consensus_height: Height,
    },
    /// A client was updated.
    UpdateClient {
        /// The client.
        client_id: ClientId,
        /// Its type.
        client_type: String,
        /// Heights of the consensus states added.
        consensus_heights: Vec<Height>,
        /// The header that was installed: protobuf `google.protobuf.Any` bytes, as ibc-rs and ibc-go before v7
        /// write it (hex) in the event's `header` attribute. `None` when the chain leaves it out (ibc-go v7+).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<Vec<u8>>,
    },
    /// `connection_open_init`.
    ConnectionOpenInit(ConnectionAttributes),
    /// `connection_open_try`.
    ConnectionOpenTry(ConnectionAttributes),
    /// `connection_open_ack`.
    ConnectionOpenAck(ConnectionAttributes),
    /// `connection_open_confirm`.
    ConnectionOpenConfirm(ConnectionAttributes),
    /// `channel_open_init`.
    ChannelOpenInit(ChannelAttributes),
    /// `channel_open_try`.
    ChannelOpenTry(ChannelAttributes),
    /// `channel_open_ack`.
    ChannelOpenAck(ChannelAttributes),
    /// `channel_open_confirm`.
    ChannelOpenConfirm(ChannelAttributes),
    /// `channel_close_init`.
    ChannelCloseInit(ChannelAttributes),
    /// `channel_close_confirm`.
    ChannelCloseConfirm(ChannelAttributes),
    /// An ordered channel's end closed by a packet timeout (ibc-go `channel_closed`, ibc-rs `channel_close`):
    /// its counterparty is still open and waits for a close confirmation.
    ChannelClosed(ChannelAttributes),
    /// A packet was sent.
    SendPacket(Packet),
    /// A packet was received.
    RecvPacket(Packet),
    /// A packet's acknowledgement was written on the receiving chain.
    WriteAcknowledgement {
        /// The packet.
        packet: Packet,
        /// The acknowledgement bytes.
        ack: Vec<u8>,
    },
    /// A packet's acknowledgement was processed on the sending chain.
    AcknowledgePacket(Packet),
    /// A packet timed out on the sending chain.
    TimeoutPacket(Packet),
}

impl IbcEvent {
    /// The event type as chains name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateClient { .. } => "create_client",
            Self::UpdateClient { .. } => "update_client",
            Self::ConnectionOpenInit(_) => "connection_open_init",
            Self::ConnectionOpenTry(_) => "connection_open_try",
            Self::ConnectionOpenAck(_) => "connection_open_ack",
            Self::ConnectionOpenConfirm(_) => "connection_open_confirm",
            Self::ChannelOpenInit(_) => "channel_open_init",
            Self::ChannelOpenTry(_) => "channel_open_try",
            Self::ChannelOpenAck(_) => "channel_open_ack",
            Self::ChannelOpenConfirm(_) => "channel_open_confirm",
            Self::ChannelCloseInit(_) => "channel_close_init",
            Self::ChannelCloseConfirm(_) => "channel_close_confirm",
            Self::ChannelClosed(_) => "channel_closed",
            Self::SendPacket(_) => "send_packet",
            Self::RecvPacket(_) => "recv_packet",
            Self::WriteAcknowledgement { .. } => "write_acknowledgement",
            Self::AcknowledgePacket(_) => "acknowledge_packet",
            Self::TimeoutPacket(_) => "timeout_packet",
        }
    }

    /// The handshake step an open event reports, for the coordinator's "highest state wins" rule.
    pub fn handshake_state(&self) -> Option<HandshakeState> {
        use HandshakeState::*;
        match self {
            Self::ConnectionOpenInit(_) | Self::ChannelOpenInit(_) => Some(OpenInit),
            Self::ConnectionOpenTry(_) | Self::ChannelOpenTry(_) => Some(OpenTry),
            Self::ConnectionOpenAck(_) | Self::ChannelOpenAck(_) => Some(OpenAck),
            Self::ConnectionOpenConfirm(_) | Self::ChannelOpenConfirm(_) => Some(OpenConfirm),
            _ => None,
        }
    }
}

/// An event with where it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedEvent {
    /// Block height that emitted it.
    pub height: u64,
    /// Hash of the transaction that emitted it (hex, upper case), if any.
    pub tx_hash: Option<String>,
    /// The event.
    pub event: IbcEvent,
}
