//! Which channel pairs relayd relays and, for each, the clients that judge proofs in each direction. Resolved
//! from chain state at start (channel end → connection → client on both sides), so configuration only names
//! ports and channels.

use std::collections::HashMap;

use relayd_messages::{ChainId, ClientId, PacketKey};

use crate::chain::endpoint::{ChainEndpoint, ChainError};

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
    /// The key of packet `sequence` sent along this route (`None` if the route's ids are malformed).
    pub fn key(&self, sequence: u64) -> Option<relayd_messages::PacketKey> {
        Some(relayd_messages::PacketKey {
            src_chain: self.src.clone(),
            src_port: relayd_messages::PortId::new(self.src_port.clone()).ok()?,
            src_channel: relayd_messages::ChannelId::new(self.src_channel.clone()).ok()?,
            sequence: relayd_messages::Sequence(sequence),
        })
    }

    /// A request to clear every pending packet of this route (on start and every `clear_interval` blocks).
    pub fn clear_all(&self) -> relayd_messages::ClearPackets {
        relayd_messages::ClearPackets {
            correlation: relayd_messages::CorrelationId::fresh(),
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

/// Every relayed direction, indexed by its sending end and by its receiving end.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    by_src: HashMap<(ChainId, String, String), Route>,
    by_dst: HashMap<(ChainId, String, String), (ChainId, String, String)>,
}

impl Routes {
    /// Adds a direction (and nothing else: add the reverse too to relay both ways).
    pub fn insert(&mut self, route: Route) {
        let src = (
            route.src.clone(),
            route.src_port.clone(),
            route.src_channel.clone(),
        );
        let dst = (
            route.dst.clone(),
            route.dst_port.clone(),
            route.dst_channel.clone(),
        );
        self.by_dst.insert(dst, src.clone());
        self.by_src.insert(src, route);
    }

    /// The direction whose packets leave `chain` on `port`/`channel`.
    pub fn from_source(&self, chain: &ChainId, port: &str, channel: &str) -> Option<&Route> {
        self.by_src
            .get(&(chain.clone(), port.to_owned(), channel.to_owned()))
    }

    /// The direction whose packets arrive on `chain` at `port`/`channel`.
    pub fn to_destination(&self, chain: &ChainId, port: &str, channel: &str) -> Option<&Route> {
        let src = self
            .by_dst
            .get(&(chain.clone(), port.to_owned(), channel.to_owned()))?;
        self.by_src.get(src)
    }

    /// The direction of a packet.
    pub fn of(&self, key: &PacketKey) -> Option<&Route> {
        self.from_source(
            &key.src_chain,
            key.src_port.as_str(),
            key.src_channel.as_str(),
        )
    }

    /// Every direction.
    pub fn all(&self) -> impl Iterator<Item = &Route> {
        self.by_src.values()
    }
}

/// Resolves the channel `port`/`channel` on `a` and its counterparty on `b` into a route from `a` to `b`,
/// checking that both ends name each other.
pub async fn resolve<A: ChainEndpoint, B: ChainEndpoint>(
    a: &A,
    b: &B,
    port: &str,
    channel: &str,
) -> Result<Route, ChainError> {
    let here = a.channel_route(port, channel).await?;
    let there = b
        .channel_route(&here.counterparty_port, &here.counterparty_channel)
        .await?;
    if there.counterparty_port != port || there.counterparty_channel != channel {
        return Err(ChainError::rpc(
            a.chain_id(),
            "resolve channel",
            format!(
                "{port}/{channel} names {}/{} on {} as its counterparty, which names {}/{} instead",
                here.counterparty_port,
                here.counterparty_channel,
                b.chain_id(),
                there.counterparty_port,
                there.counterparty_channel
            ),
        ));
    }
    let src_client = a.connection_client(&here.connection).await?;
    let dst_client = b.connection_client(&there.connection).await?;
    let id = |chain: &str, s: String| {
        ClientId::new(s).map_err(|e| ChainError::rpc(chain, "resolve channel", e))
    };
    let chain = |c: &str| ChainId::new(c).map_err(|e| ChainError::rpc(c, "resolve channel", e));
    Ok(Route {
        src: chain(a.chain_id())?,
        src_port: port.to_owned(),
        src_channel: channel.to_owned(),
        dst: chain(b.chain_id())?,
        dst_port: here.counterparty_port,
        dst_channel: here.counterparty_channel,
        dst_client: id(b.chain_id(), dst_client)?,
        src_client: id(a.chain_id(), src_client)?,
        ordered: here.ordered,
        priority: 0,
    })
}
