//! The start-up scan of ADR-002's config executor for handshakes: connections built on the clients a chain
//! is configured with, and the channels over them, that are not finished on both ends. Each becomes the same
//! request a handshake event would, so the coordinator's one-builder-per-handshake rule holds whether the scan or
//! a live event comes first.

use ibc_proto::ibc::core::channel::v1::IdentifiedChannel;
use ibc_proto::ibc::core::connection::v1::IdentifiedConnection;
use relayd_messages::{
    ChainId, ChannelId, ClientId, ConnectionId, HandshakeState, PortId, RelayObject,
};

/// What a scan of one chain asks the coordinator to look at: the end and how far it has come. An open end is
/// asked about as if it had just acknowledged (its counterparty may still need the confirmation); the builder
/// reads both ends and stops at once when nothing is left.
pub fn handshakes(
    chain: &ChainId,
    clients: &[ClientId],
    connections: &[IdentifiedConnection],
    channels: &[IdentifiedChannel],
) -> Vec<(RelayObject, HandshakeState)> {
    let ours: Vec<&IdentifiedConnection> = connections
        .iter()
        .filter(|c| clients.iter().any(|k| k.as_str() == c.client_id))
        .collect();
    let mut out = Vec::new();
    for c in &ours {
        let state = match c.state {
            1 => HandshakeState::OpenInit,
            2 => HandshakeState::OpenTry,
            3 => HandshakeState::OpenAck,
            _ => continue,
        };
        let Ok(connection) = ConnectionId::new(c.id.clone()) else {
            continue;
        };
        out.push((
            RelayObject::Connection {
                chain: chain.clone(),
                connection,
            },
            state,
        ));
    }
    for ch in channels {
        let over_ours = ch
            .connection_hops
            .first()
            .is_some_and(|hop| ours.iter().any(|c| &c.id == hop));
        if !over_ours {
            continue;
        }
        let state = match ch.state {
            1 => HandshakeState::OpenInit,
            2 => HandshakeState::OpenTry,
            3 => HandshakeState::OpenAck,
            4 => HandshakeState::CloseInit,
            _ => continue,
        };
        let (Ok(port), Ok(channel)) = (
            PortId::new(ch.port_id.clone()),
            ChannelId::new(ch.channel_id.clone()),
        ) else {
            continue;
        };
        out.push((
            RelayObject::Channel {
                chain: chain.clone(),
                port,
                channel,
            },
            state,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, client: &str, state: i32) -> IdentifiedConnection {
        IdentifiedConnection {
            id: id.into(),
            client_id: client.into(),
            state,
            ..Default::default()
        }
    }

    fn chan(id: &str, hop: &str, state: i32) -> IdentifiedChannel {
        IdentifiedChannel {
            port_id: "transfer".into(),
            channel_id: id.into(),
            connection_hops: vec![hop.into()],
            state,
            ..Default::default()
        }
    }

    #[test]
    fn only_our_clients_connections_and_their_channels_are_asked_about() {
        let chain = ChainId::new("ibc-0").unwrap();
        let clients = [ClientId::new("07-tendermint-0").unwrap()];
        let conns = [
            conn("connection-0", "07-tendermint-0", 3),
            conn("connection-1", "07-tendermint-0", 1),
            conn("connection-2", "07-tendermint-9", 1),
        ];
        let chans = [
            chan("channel-0", "connection-0", 2),
            chan("channel-1", "connection-2", 1),
            chan("channel-2", "connection-0", 4),
        ];
        let found = handshakes(&chain, &clients, &conns, &chans);
        let names: Vec<(String, HandshakeState)> =
            found.iter().map(|(o, s)| (o.to_string(), *s)).collect();
        assert_eq!(
            names,
            vec![
                (
                    "connection:ibc-0/connection-0".into(),
                    HandshakeState::OpenAck
                ),
                (
                    "connection:ibc-0/connection-1".into(),
                    HandshakeState::OpenInit
                ),
                (
                    "channel:ibc-0/transfer/channel-0".into(),
                    HandshakeState::OpenTry
                ),
                (
                    "channel:ibc-0/transfer/channel-2".into(),
                    HandshakeState::CloseInit
                ),
            ]
        );
    }
}
