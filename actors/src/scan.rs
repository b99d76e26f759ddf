//! The start-up scan of ADR-002's config executor for handshakes: connections built on the clients a chain
//! is configured with, and the channels over them, that are not finished on both ends. Each becomes the same
//! request a handshake event would, so the coordinator's one-builder-per-handshake rule holds whether the scan or
//! a live event comes first.

use ibc_proto::ibc::core::channel::v1::IdentifiedChannel;
use ibc_proto::ibc::core::connection::v1::IdentifiedConnection;
use relayd_messages::{
    ChainId, ChannelId, ClientId, ConnectionId, HandshakeState, PortId, RelayObject,
};

/// The `OPEN` state of connections and channels in the chains' listings.
const OPEN: i32 = 3;

/// One chain's connections and channels as its node listed them.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// Every connection on the chain.
    pub connections: &'a [IdentifiedConnection],
    /// Every channel on the chain.
    pub channels: &'a [IdentifiedChannel],
}

/// Whether `o` (on another chain) is the counterparty `c` names, and names `c` back.
fn connection_pair(c: &IdentifiedConnection, o: &IdentifiedConnection) -> bool {
    let (Some(cp), Some(ocp)) = (&c.counterparty, &o.counterparty) else {
        return false;
    };
    o.id == cp.connection_id
        && o.client_id == cp.client_id
        && ocp.connection_id == c.id
        && ocp.client_id == c.client_id
}

/// Whether `o` (on another chain) is the counterparty `ch` names, names `ch` back, and runs over the
/// counterparty of `ch`'s connection (`their_connection`).
fn channel_pair(ch: &IdentifiedChannel, their_connection: &str, o: &IdentifiedChannel) -> bool {
    let (Some(cp), Some(ocp)) = (&ch.counterparty, &o.counterparty) else {
        return false;
    };
    o.port_id == cp.port_id
        && o.channel_id == cp.channel_id
        && ocp.port_id == ch.port_id
        && ocp.channel_id == ch.channel_id
        && o.connection_hops.first().map(String::as_str) == Some(their_connection)
}

/// Whether an open end is finished on both ends as far as the other scanned chains show: at least one end
/// there pairs with it and every one that does is open too. (Ids repeat across chains, so several may pair; one
/// that is not open keeps the end asked about.) An end whose counterparty chain was not scanned stays asked about.
fn finished<'a, T: 'a>(mut pairs: impl Iterator<Item = &'a T>, open: impl Fn(&T) -> bool) -> bool {
    let Some(first) = pairs.next() else {
        return false;
    };
    open(first) && pairs.all(open)
}

/// What a scan of one chain (`here`) asks the coordinator to look at: the end and how far it has come. An open
/// end is asked about as if it had just acknowledged (its counterparty may still need the confirmation), unless
/// `others` (the other scanned chains' listings) show its counterparty open too; the builder reads both ends
/// and stops at once when nothing is left.
pub fn handshakes(
    chain: &ChainId,
    clients: &[ClientId],
    here: Listing<'_>,
    others: &[Listing<'_>],
) -> Vec<(RelayObject, HandshakeState)> {
    let ours: Vec<&IdentifiedConnection> = here
        .connections
        .iter()
        .filter(|c| clients.iter().any(|k| k.as_str() == c.client_id))
        .collect();
    let other_connections = || others.iter().flat_map(|l| l.connections.iter());
    let other_channels = || others.iter().flat_map(|l| l.channels.iter());
    let mut out = Vec::new();
    for c in &ours {
        let state = match c.state {
            1 => HandshakeState::OpenInit,
            2 => HandshakeState::OpenTry,
            OPEN => {
                let pairs = other_connections().filter(|o| connection_pair(c, o));
                if finished(pairs, |o| o.state == OPEN) {
                    continue;
                }
                HandshakeState::OpenAck
            }
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
    for ch in here.channels {
        let Some(conn) = ch
            .connection_hops
            .first()
            .and_then(|hop| ours.iter().find(|c| &c.id == hop))
        else {
            continue;
        };
        let state = match ch.state {
            1 => HandshakeState::OpenInit,
            2 => HandshakeState::OpenTry,
            OPEN => {
                let their_connection = conn
                    .counterparty
                    .as_ref()
                    .map(|cp| cp.connection_id.as_str())
                    .unwrap_or_default();
                let pairs = other_channels().filter(|o| channel_pair(ch, their_connection, o));
                if finished(pairs, |o| o.state == OPEN) {
                    continue;
                }
                HandshakeState::OpenAck
            }
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
        let here = Listing {
            connections: &conns,
            channels: &chans,
        };
        let found = handshakes(&chain, &clients, here, &[]);
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

    fn paired_conn(
        id: &str,
        client: &str,
        their: (&str, &str),
        state: i32,
    ) -> IdentifiedConnection {
        use ibc_proto::ibc::core::connection::v1::Counterparty;
        IdentifiedConnection {
            counterparty: Some(Counterparty {
                client_id: their.0.into(),
                connection_id: their.1.into(),
                prefix: None,
            }),
            ..conn(id, client, state)
        }
    }

    fn paired_chan(id: &str, hop: &str, their: &str, state: i32) -> IdentifiedChannel {
        use ibc_proto::ibc::core::channel::v1::Counterparty;
        IdentifiedChannel {
            counterparty: Some(Counterparty {
                port_id: "transfer".into(),
                channel_id: their.into(),
            }),
            ..chan(id, hop, state)
        }
    }

    #[test]
    fn an_open_end_whose_counterparty_is_open_on_a_scanned_chain_is_not_asked_about() {
        let a = ChainId::new("ibc-0").unwrap();
        let clients = [ClientId::new("07-tendermint-0").unwrap()];
        // ibc-0: connection-0 (client 0) pairs with ibc-1's connection-3 (client 5); channels 0..3 over it.
        let a_conns = [paired_conn(
            "connection-0",
            "07-tendermint-0",
            ("07-tendermint-5", "connection-3"),
            OPEN,
        )];
        let a_chans = [
            paired_chan("channel-0", "connection-0", "channel-7", OPEN),
            paired_chan("channel-1", "connection-0", "channel-8", OPEN),
            paired_chan("channel-2", "connection-0", "channel-9", OPEN),
        ];
        let b_conns = [paired_conn(
            "connection-3",
            "07-tendermint-5",
            ("07-tendermint-0", "connection-0"),
            OPEN,
        )];
        let b_chans = [
            // Finished on both ends.
            paired_chan("channel-7", "connection-3", "channel-0", OPEN),
            // Still waiting for its confirmation.
            paired_chan("channel-8", "connection-3", "channel-1", 2),
        ];
        let here = Listing {
            connections: &a_conns,
            channels: &a_chans,
        };
        let other = Listing {
            connections: &b_conns,
            channels: &b_chans,
        };
        let names = |found: Vec<(RelayObject, HandshakeState)>| -> Vec<String> {
            found.iter().map(|(o, _)| o.to_string()).collect()
        };
        // channel-2's counterparty is not listed anywhere: asked about, as is channel-1 (TRYOPEN there).
        assert_eq!(
            names(handshakes(&a, &clients, here, &[other])),
            vec![
                "channel:ibc-0/transfer/channel-1".to_owned(),
                "channel:ibc-0/transfer/channel-2".to_owned(),
            ]
        );
        // Without the other chain's listing every open end is asked about.
        assert_eq!(handshakes(&a, &clients, here, &[]).len(), 4);
        // A third chain with the same ids whose end is not open keeps channel-0 asked about.
        let c_chans = [paired_chan("channel-7", "connection-3", "channel-0", 1)];
        let third = Listing {
            connections: &b_conns,
            channels: &c_chans,
        };
        assert_eq!(
            names(handshakes(&a, &clients, here, &[other, third])),
            vec![
                "channel:ibc-0/transfer/channel-0".to_owned(),
                "channel:ibc-0/transfer/channel-1".to_owned(),
                "channel:ibc-0/transfer/channel-2".to_owned(),
            ]
        );
    }
}
