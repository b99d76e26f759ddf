//! A minimal IBC application on port `ping`, so the devnet can judge what ICS-20 cannot exercise: ordered
//! channels and channels that close. Any account sends a ping (`MsgSendPing`, arbitrary bytes) on a ping
//! channel; the receiving end acknowledges it with `pong:` plus the bytes. Channels of either ordering open with
//! version `ping-1` and may be closed by either end (ibc-go's mock application allows the same).

use ibc::core::channel::handler::{send_packet_execute, send_packet_validate};
use ibc::core::channel::types::acknowledgement::Acknowledgement;
use ibc::core::channel::types::channel::{Counterparty, Order};
use ibc::core::channel::types::error::ChannelError;
use ibc::core::channel::types::packet::Packet;
use ibc::core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc::core::channel::types::Version;
use ibc::core::client::types::Height;
use ibc::core::host::types::identifiers::{ChannelId, ConnectionId, PortId, Sequence};
use ibc::core::host::types::path::{ChannelEndPath, SeqSendPath};
use ibc::core::host::ValidationContext;
use ibc::core::primitives::{Signer, Timestamp};
use ibc::core::router::module::Module;
use ibc::core::router::types::module::ModuleExtras;

use super::JournaledStore;
use crate::host::DevnetHost;

/// The port the ping application is bound to.
pub const PORT: &str = "ping";
/// The only channel version it speaks.
pub const VERSION: &str = "ping-1";
/// The module id it is routed under.
pub const MODULE_ID: &str = "ping";
/// Type URL of [`MsgSendPing`].
pub const MSG_SEND_PING_TYPE_URL: &str = "/relayd.devnet.v1.MsgSendPing";
/// What every acknowledgement starts with.
pub const ACK_PREFIX: &[u8] = b"pong:";

/// Sends one ping packet (the devnet's own message; a real chain has its own applications).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MsgSendPing {
    /// The sending port (`ping`).
    #[prost(string, tag = "1")]
    pub source_port: String,
    /// The sending channel.
    #[prost(string, tag = "2")]
    pub source_channel: String,
    /// The packet data.
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
    /// Timeout height's revision number on the destination (0 with height 0: none).
    #[prost(uint64, tag = "4")]
    pub timeout_revision_number: u64,
    /// Timeout height on the destination (0: none).
    #[prost(uint64, tag = "5")]
    pub timeout_revision_height: u64,
    /// Timeout timestamp on the destination, ns since the epoch (0: none).
    #[prost(uint64, tag = "6")]
    pub timeout_timestamp: u64,
    /// The sending account (signs the transaction).
    #[prost(string, tag = "7")]
    pub sender: String,
}

/// The ping application: stateless; everything it does is in the IBC store.
#[derive(Debug, Default)]
pub struct PingModule;

fn check_version(version: &Version) -> Result<Version, ChannelError> {
    if version.as_str().is_empty() || version.as_str() == VERSION {
        Ok(Version::new(VERSION.to_owned()))
    } else {
        Err(ChannelError::UnsupportedVersion {
            expected: Version::new(VERSION.to_owned()),
            actual: version.clone(),
        })
    }
}

/// Builds and sends the packet `msg` asks for, through ibc-rs's own send-packet handler.
pub fn send_ping(
    ibc: &mut DevnetHost<'_, JournaledStore>,
    msg: &MsgSendPing,
) -> Result<Packet, String> {
    let port: PortId = msg.source_port.parse().map_err(|e| format!("{e}"))?;
    let channel: ChannelId = msg.source_channel.parse().map_err(|e| format!("{e}"))?;
    if port.as_str() != PORT {
        return Err(format!("port {port} is not bound to the ping application"));
    }
    let end = ibc
        .channel_end(&ChannelEndPath::new(&port, &channel))
        .map_err(|e| e.to_string())?;
    let seq: Sequence = ibc
        .get_next_sequence_send(&SeqSendPath::new(&port, &channel))
        .map_err(|e| e.to_string())?;
    let timeout_height_on_b = if msg.timeout_revision_height == 0 {
        TimeoutHeight::Never
    } else {
        TimeoutHeight::At(
            Height::new(msg.timeout_revision_number, msg.timeout_revision_height)
                .map_err(|e| e.to_string())?,
        )
    };
    let timeout_timestamp_on_b = if msg.timeout_timestamp == 0 {
        TimeoutTimestamp::Never
    } else {
        TimeoutTimestamp::At(Timestamp::from_nanoseconds(msg.timeout_timestamp))
    };
    let counterparty = end.counterparty();
    let packet = Packet {
        seq_on_a: seq,
        port_id_on_a: port,
        chan_id_on_a: channel,
        port_id_on_b: counterparty.port_id.clone(),
        chan_id_on_b: counterparty
            .channel_id
            .clone()
            .ok_or("the channel's counterparty has no channel id yet")?,
        data: msg.data.clone(),
        timeout_height_on_b,
        timeout_timestamp_on_b,
    };
    send_packet_validate(ibc, &packet).map_err(|e| e.to_string())?;
    send_packet_execute(ibc, packet.clone()).map_err(|e| e.to_string())?;
    Ok(packet)
}

impl Module for PingModule {
    fn on_chan_open_init_validate(
        &self,
        _order: Order,
        _connection_hops: &[ConnectionId],
        _port_id: &PortId,
        _channel_id: &ChannelId,
        _counterparty: &Counterparty,
        version: &Version,
    ) -> Result<Version, ChannelError> {
        check_version(version)
    }

    fn on_chan_open_init_execute(
        &mut self,
        _order: Order,
        _connection_hops: &[ConnectionId],
        _port_id: &PortId,
        _channel_id: &ChannelId,
        _counterparty: &Counterparty,
        version: &Version,
    ) -> Result<(ModuleExtras, Version), ChannelError> {
        Ok((ModuleExtras::empty(), check_version(version)?))
    }

    fn on_chan_open_try_validate(
        &self,
        _order: Order,
        _connection_hops: &[ConnectionId],
        _port_id: &PortId,
        _channel_id: &ChannelId,
        _counterparty: &Counterparty,
        counterparty_version: &Version,
    ) -> Result<Version, ChannelError> {
        check_version(counterparty_version)
    }

    fn on_chan_open_try_execute(
        &mut self,
        _order: Order,
        _connection_hops: &[ConnectionId],
        _port_id: &PortId,
        _channel_id: &ChannelId,
        _counterparty: &Counterparty,
        counterparty_version: &Version,
    ) -> Result<(ModuleExtras, Version), ChannelError> {
        Ok((ModuleExtras::empty(), check_version(counterparty_version)?))
    }

    fn on_chan_open_ack_validate(
        &self,
        _port_id: &PortId,
        _channel_id: &ChannelId,
        counterparty_version: &Version,
    ) -> Result<(), ChannelError> {
        check_version(counterparty_version).map(|_| ())
    }

    fn on_chan_open_ack_execute(
        &mut self,
        _port_id: &PortId,
        _channel_id: &ChannelId,
        _counterparty_version: &Version,
    ) -> Result<ModuleExtras, ChannelError> {
        Ok(ModuleExtras::empty())
    }

    fn on_chan_open_confirm_validate(
        &self,
        _port_id: &PortId,
        _channel_id: &ChannelId,
    ) -> Result<(), ChannelError> {
        Ok(())
    }

    fn on_chan_open_confirm_execute(
        &mut self,
        _port_id: &PortId,
        _channel_id: &ChannelId,
    ) -> Result<ModuleExtras, ChannelError> {
        Ok(ModuleExtras::empty())
    }

    fn on_recv_packet_execute(
        &mut self,
        packet: &Packet,
        _relayer: &Signer,
    ) -> (ModuleExtras, Option<Acknowledgement>) {
        let mut ack = ACK_PREFIX.to_vec();
        ack.extend_from_slice(&packet.data);
        // Never empty: it starts with the prefix.
        (ModuleExtras::empty(), Acknowledgement::try_from(ack).ok())
    }

    fn on_acknowledgement_packet_validate(
        &self,
        _packet: &Packet,
        acknowledgement: &Acknowledgement,
        _relayer: &Signer,
    ) -> Result<(), ChannelError> {
        if acknowledgement.as_bytes().starts_with(ACK_PREFIX) {
            Ok(())
        } else {
            Err(ChannelError::AppSpecific {
                description: "a ping acknowledgement starts with \"pong:\"".to_owned(),
            })
        }
    }

    fn on_acknowledgement_packet_execute(
        &mut self,
        _packet: &Packet,
        _acknowledgement: &Acknowledgement,
        _relayer: &Signer,
    ) -> (ModuleExtras, Result<(), ChannelError>) {
        (ModuleExtras::empty(), Ok(()))
    }

    fn on_timeout_packet_validate(
        &self,
        _packet: &Packet,
        _relayer: &Signer,
    ) -> Result<(), ChannelError> {
        Ok(())
    }

    fn on_timeout_packet_execute(
        &mut self,
        _packet: &Packet,
        _relayer: &Signer,
    ) -> (ModuleExtras, Result<(), ChannelError>) {
        (ModuleExtras::empty(), Ok(()))
    }
}
