//! Which channel pairs relayd relays and, for each, the clients that judge proofs in each direction. Resolved
//! from chain state at start (channel end → connection → client on both sides), so configuration only names
//! ports and channels.

use std::collections::HashMap;

use relayd_messages::{ChainId, ClientId, PacketKey, Route};

use crate::chain::endpoint::{ChainEndpoint, ChainError};

/// Values by channel end (chain, port, channel), nested so that a lookup borrows its key instead of building
/// one: every observed packet event looks its route up.
#[derive(Debug, Clone)]
struct ByEnd<T>(HashMap<ChainId, HashMap<String, HashMap<String, T>>>);

impl<T> Default for ByEnd<T> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<T> ByEnd<T> {
    fn insert(&mut self, chain: &ChainId, port: &str, channel: &str, value: T) {
        self.0
            .entry(chain.clone())
            .or_default()
            .entry(port.to_owned())
            .or_default()
            .insert(channel.to_owned(), value);
    }

    fn get(&self, chain: &ChainId, port: &str, channel: &str) -> Option<&T> {
        self.0.get(chain)?.get(port)?.get(channel)
    }

    fn remove(&mut self, chain: &ChainId, port: &str, channel: &str) -> Option<T> {
        let ports = self.0.get_mut(chain)?;
        let channels = ports.get_mut(port)?;
        let gone = channels.remove(channel);
        if channels.is_empty() {
            ports.remove(port);
        }
        if ports.is_empty() {
            self.0.remove(chain);
        }
        gone
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.0
            .values()
            .flat_map(|p| p.values().flat_map(|c| c.values()))
    }
}

/// Every relayed direction, indexed by its sending end and by its receiving end.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    by_src: ByEnd<Route>,
    /// Receiving end → sending end.
    by_dst: ByEnd<(ChainId, String, String)>,
}

impl Routes {
    /// Adds a direction (and nothing else: add the reverse too to relay both ways).
    pub fn insert(&mut self, route: Route) {
        let src = (
            route.src.clone(),
            route.src_port.clone(),
            route.src_channel.clone(),
        );
        self.by_dst
            .insert(&route.dst, &route.dst_port, &route.dst_channel, src.clone());
        self.by_src.insert(&src.0, &src.1, &src.2, route);
    }

    /// Removes a direction (a path removed from the configuration on reload).
    pub fn remove(&mut self, route: &Route) {
        if let Some(gone) = self
            .by_src
            .remove(&route.src, &route.src_port, &route.src_channel)
        {
            self.by_dst
                .remove(&gone.dst, &gone.dst_port, &gone.dst_channel);
        }
    }

    /// The direction whose packets leave `chain` on `port`/`channel`.
    pub fn from_source(&self, chain: &ChainId, port: &str, channel: &str) -> Option<&Route> {
        self.by_src.get(chain, port, channel)
    }

    /// The direction whose packets arrive on `chain` at `port`/`channel`.
    pub fn to_destination(&self, chain: &ChainId, port: &str, channel: &str) -> Option<&Route> {
        let (c, p, ch) = self.by_dst.get(chain, port, channel)?;
        self.by_src.get(c, p, ch)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn route(src_channel: &str, dst_channel: &str) -> Route {
        Route {
            src: ChainId::new("a-1").unwrap(),
            src_port: "transfer".into(),
            src_channel: src_channel.into(),
            dst: ChainId::new("b-1").unwrap(),
            dst_port: "transfer".into(),
            dst_channel: dst_channel.into(),
            dst_client: ClientId::new("07-tendermint-0").unwrap(),
            src_client: ClientId::new("07-tendermint-1").unwrap(),
            ordered: false,
            priority: 0,
        }
    }

    #[test]
    fn routes_are_found_by_either_end_until_removed() {
        let (a, b) = (ChainId::new("a-1").unwrap(), ChainId::new("b-1").unwrap());
        let mut routes = Routes::default();
        routes.insert(route("channel-0", "channel-5"));
        routes.insert(route("channel-1", "channel-6"));
        assert_eq!(
            routes.from_source(&a, "transfer", "channel-1"),
            Some(&route("channel-1", "channel-6"))
        );
        assert_eq!(
            routes.to_destination(&b, "transfer", "channel-5"),
            Some(&route("channel-0", "channel-5"))
        );
        assert_eq!(routes.from_source(&b, "transfer", "channel-5"), None);
        assert_eq!(routes.from_source(&a, "other", "channel-0"), None);
        assert_eq!(routes.all().count(), 2);
        routes.remove(&route("channel-0", "channel-5"));
        assert_eq!(routes.from_source(&a, "transfer", "channel-0"), None);
        assert_eq!(routes.to_destination(&b, "transfer", "channel-5"), None);
        assert_eq!(routes.all().count(), 1);
        routes.remove(&route("channel-1", "channel-6"));
        assert!(routes.by_src.0.is_empty() && routes.by_dst.0.is_empty());
    }
}
