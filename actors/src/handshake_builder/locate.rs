//! Reading handshake ends and locating a handshake on both chains: which chain a connection's client tracks
//! (`tracked`), and which end started the handshake, from either end's id.

use std::collections::HashMap;

use ibc_proto::ibc::core::channel::v1 as chan;
use ibc_proto::ibc::core::connection::v1 as conn;
use prost::Message;
use relayd_messages::{
    ChainId, ChannelId, ClientId, ConnectionId, CorrelationId, ErrorKind, HandshakeState, PortId,
    Proven, QueryClient, QueryProof, RelayError, RelayObject,
};

use crate::chain::endpoint::path;
use crate::chain_link::ChainLink;
use crate::handshake_builder::state::Side;

/// Which kind of handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// ICS-03.
    Connection,
    /// ICS-04 (opening or closing).
    Channel,
}

/// One end of a handshake: a connection (`port` empty) or a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndId {
    /// The chain holding it.
    pub chain: ChainId,
    /// The channel's port (empty for connections).
    pub port: String,
    /// The connection or channel id; empty while the end does not exist.
    pub id: String,
}

/// A handshake located on both chains: `a` is the end that started it (its INIT side), which names the relay
/// object, so events of either end map to the same builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Connection or channel.
    pub kind: Kind,
    /// The initiating end.
    pub a: EndId,
    /// The other end (`id` empty until it exists).
    pub b: EndId,
}

impl Handshake {
    /// The relay object: the initiating end.
    pub fn object(&self) -> Result<RelayObject, RelayError> {
        let bad = |e: relayd_messages::IdError| RelayError::new(ErrorKind::Rejected, e.to_string());
        Ok(match self.kind {
            Kind::Connection => RelayObject::Connection {
                chain: self.a.chain.clone(),
                connection: ConnectionId::new(self.a.id.clone()).map_err(bad)?,
            },
            Kind::Channel => RelayObject::Channel {
                chain: self.a.chain.clone(),
                port: PortId::new(self.a.port.clone()).map_err(bad)?,
                channel: ChannelId::new(self.a.id.clone()).map_err(bad)?,
            },
        })
    }

    pub(super) fn end(&self, side: Side) -> &EndId {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

pub(super) fn link<'a>(
    links: &'a HashMap<ChainId, ChainLink>,
    chain: &ChainId,
) -> Result<&'a ChainLink, RelayError> {
    links.get(chain).ok_or_else(|| {
        RelayError::new(
            ErrorKind::Rejected,
            format!("{chain} is not a relayed chain"),
        )
    })
}

pub(super) async fn read(
    link: &ChainLink,
    correlation: CorrelationId,
    p: String,
    height: Option<u64>,
) -> Result<Proven, RelayError> {
    link.query_proof(QueryProof {
        correlation,
        path: p,
        height,
    })
    .await
}

pub(super) fn undecodable(chain: &ChainId, what: &str, e: prost::DecodeError) -> RelayError {
    RelayError::new(
        ErrorKind::Unverified,
        format!("{chain}: undecodable {what}: {e}"),
    )
}

pub(super) async fn connection_end(
    link: &ChainLink,
    correlation: CorrelationId,
    id: &str,
) -> Result<Option<conn::ConnectionEnd>, RelayError> {
    let v = read(link, correlation, path::connection(id), None).await?;
    if v.value.is_empty() {
        return Ok(None);
    }
    conn::ConnectionEnd::decode(v.value.as_slice())
        .map(Some)
        .map_err(|e| undecodable(&link.chain, "connection end", e))
}

pub(super) async fn channel_end(
    link: &ChainLink,
    correlation: CorrelationId,
    port: &str,
    id: &str,
) -> Result<Option<chan::Channel>, RelayError> {
    let v = read(link, correlation, path::channel(port, id), None).await?;
    if v.value.is_empty() {
        return Ok(None);
    }
    chan::Channel::decode(v.value.as_slice())
        .map(Some)
        .map_err(|e| undecodable(&link.chain, "channel end", e))
}

pub(super) fn missing(chain: &ChainId, what: &str) -> RelayError {
    RelayError::new(ErrorKind::Unavailable, format!("{chain}: no {what}"))
}

/// A connection end that must exist.
pub(super) async fn existing_connection(
    link: &ChainLink,
    correlation: CorrelationId,
    connection: &str,
) -> Result<conn::ConnectionEnd, RelayError> {
    connection_end(link, correlation, connection)
        .await?
        .ok_or_else(|| missing(&link.chain, &format!("connection {connection}")))
}

/// The client a connection is built on and the chain that client tracks (`tracked::tracked_chain`).
pub(super) async fn connection_client(
    links: &HashMap<ChainId, ChainLink>,
    link: &ChainLink,
    correlation: CorrelationId,
    connection: &str,
) -> Result<(conn::ConnectionEnd, ChainId), RelayError> {
    let end = existing_connection(link, correlation, connection).await?;
    if let Some((client, chain)) = link.tracked_by(connection) {
        if client == end.client_id {
            return Ok((end, chain));
        }
    }
    let client = ClientId::new(end.client_id.clone())
        .map_err(|e| RelayError::new(ErrorKind::Unverified, e.to_string()))?;
    let summary = link
        .query_client(QueryClient {
            correlation,
            client_id: client,
        })
        .await?;
    let tracked = super::tracked::tracked_chain(links, link, correlation, &summary).await?;
    link.record_tracked(connection, &end.client_id, &tracked);
    Ok((end, tracked))
}

/// The chain the client of `connection` tracks: from the link's record when a builder found it before (a
/// connection's client never changes), else read and judged as [`connection_client`] does.
pub(super) async fn connection_chain(
    links: &HashMap<ChainId, ChainLink>,
    link: &ChainLink,
    correlation: CorrelationId,
    connection: &str,
) -> Result<ChainId, RelayError> {
    if let Some((_, chain)) = link.tracked_by(connection) {
        return Ok(chain);
    }
    connection_client(links, link, correlation, connection)
        .await
        .map(|(_, chain)| chain)
}

/// Finds both ends of the handshake that `named` (either end) takes part in, given how far it has come: for
/// `OpenInit`, `OpenAck` and `CloseInit` the named end is the initiating one, otherwise its counterparty is.
pub async fn locate(
    links: &HashMap<ChainId, ChainLink>,
    named: &RelayObject,
    state: HandshakeState,
    correlation: CorrelationId,
) -> Result<Handshake, RelayError> {
    let initiating = matches!(
        state,
        HandshakeState::OpenInit | HandshakeState::OpenAck | HandshakeState::CloseInit
    );
    let (kind, here, there) = match named {
        RelayObject::Packet(_) => {
            return Err(RelayError::new(
                ErrorKind::Rejected,
                "a packet is not a handshake",
            ))
        }
        RelayObject::Connection { chain, connection } => {
            let l = link(links, chain)?;
            let (end, tracked) =
                connection_client(links, l, correlation, connection.as_str()).await?;
            link(links, &tracked)?;
            let cp = end.counterparty.unwrap_or_default();
            let here = EndId {
                chain: chain.clone(),
                port: String::new(),
                id: connection.to_string(),
            };
            let there = EndId {
                chain: tracked,
                port: String::new(),
                id: cp.connection_id,
            };
            (Kind::Connection, here, there)
        }
        RelayObject::Channel {
            chain,
            port,
            channel,
        } => {
            let l = link(links, chain)?;
            let end = channel_end(l, correlation, port.as_str(), channel.as_str())
                .await?
                .ok_or_else(|| missing(chain, &format!("channel {port}/{channel}")))?;
            let hop = end.connection_hops.first().cloned().unwrap_or_default();
            let tracked = connection_chain(links, l, correlation, &hop).await?;
            link(links, &tracked)?;
            let cp = end.counterparty.unwrap_or_default();
            let here = EndId {
                chain: chain.clone(),
                port: port.to_string(),
                id: channel.to_string(),
            };
            let there = EndId {
                chain: tracked,
                port: cp.port_id,
                id: cp.channel_id,
            };
            (Kind::Channel, here, there)
        }
    };
    if initiating {
        return Ok(Handshake {
            kind,
            a: here,
            b: there,
        });
    }
    if there.id.is_empty() {
        return Err(RelayError::new(
            ErrorKind::Unavailable,
            format!("{named}: the initiating end is not named yet"),
        ));
    }
    Ok(Handshake {
        kind,
        a: there,
        b: here,
    })
}
