//! Which channel pairs relayd relays and, for each, the clients that judge proofs in each direction. Resolved
//! from chain state at start (channel end → connection → client on both sides), so configuration only names
//! ports and channels.

use std::collections::HashMap;

use relayd_messages::{ChainId, ClientId, PacketKey, Route};

use crate::chain::endpoint::{ChainEndpoint, ChainError};

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

    /// Removes a direction (a path removed from the configuration on reload).
    pub fn remove(&mut self, route: &Route) {
        let src = (
            route.src.clone(),
            route.src_port.clone(),
            route.src_channel.clone(),
        );
        if let Some(gone) = self.by_src.remove(&src) {
            self.by_dst.remove(&(
                gone.dst.clone(),
                gone.dst_port.clone(),
                gone.dst_channel.clone(),
            ));
        }
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
