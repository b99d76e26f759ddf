//! A chain endpoint of whichever kind a configured chain is, for the code that handles every configured chain
//! alike (resolving routes at start). The per-chain actors do not use it: each supervisor is generic over its
//! chain's own backend.

use ibc_proto::ibc::core::channel::v1::Channel;
use relayd_messages::ObservedEvent;

use super::cosmos::endpoint::CosmosEndpoint;
use super::endpoint::{ChainEndpoint, ChainError, ChannelInfo, Proven, QueryHeight};
use super::near::endpoint::NearEndpoint;

/// A Cosmos or a NEAR endpoint.
#[derive(Clone)]
pub enum AnyEndpoint {
    /// A Cosmos SDK chain.
    Cosmos(CosmosEndpoint),
    /// A NEAR chain with the IBC contract.
    Near(NearEndpoint),
}

impl ChainEndpoint for AnyEndpoint {
    fn chain_id(&self) -> &str {
        match self {
            Self::Cosmos(e) => e.chain_id(),
            Self::Near(e) => e.chain_id(),
        }
    }

    async fn latest_height(&self) -> Result<u64, ChainError> {
        match self {
            Self::Cosmos(e) => e.latest_height().await,
            Self::Near(e) => e.latest_height().await,
        }
    }

    async fn query_ibc(
        &self,
        path: &str,
        height: QueryHeight,
        prove: bool,
    ) -> Result<Proven, ChainError> {
        match self {
            Self::Cosmos(e) => e.query_ibc(path, height, prove).await,
            Self::Near(e) => e.query_ibc(path, height, prove).await,
        }
    }

    async fn packet_commitments(&self, port: &str, channel: &str) -> Result<Vec<u64>, ChainError> {
        match self {
            Self::Cosmos(e) => e.packet_commitments(port, channel).await,
            Self::Near(e) => e.packet_commitments(port, channel).await,
        }
    }

    async fn packet_acknowledgements(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<Vec<u64>, ChainError> {
        match self {
            Self::Cosmos(e) => e.packet_acknowledgements(port, channel).await,
            Self::Near(e) => e.packet_acknowledgements(port, channel).await,
        }
    }

    async fn unreceived_packets(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        match self {
            Self::Cosmos(e) => e.unreceived_packets(port, channel, sequences).await,
            Self::Near(e) => e.unreceived_packets(port, channel, sequences).await,
        }
    }

    async fn unreceived_acks(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        match self {
            Self::Cosmos(e) => e.unreceived_acks(port, channel, sequences).await,
            Self::Near(e) => e.unreceived_acks(port, channel, sequences).await,
        }
    }

    async fn channel_route(&self, port: &str, channel: &str) -> Result<ChannelInfo, ChainError> {
        match self {
            Self::Cosmos(e) => e.channel_route(port, channel).await,
            Self::Near(e) => e.channel_route(port, channel).await,
        }
    }

    async fn connection_client(&self, connection: &str) -> Result<String, ChainError> {
        match self {
            Self::Cosmos(e) => e.connection_client(connection).await,
            Self::Near(e) => e.connection_client(connection).await,
        }
    }

    async fn packet_events(
        &self,
        kind: relayd_messages::PacketEventKind,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<ObservedEvent>, ChainError> {
        match self {
            Self::Cosmos(e) => e.packet_events(kind, port, channel, sequences).await,
            Self::Near(e) => e.packet_events(kind, port, channel, sequences).await,
        }
    }

    async fn tx_messages(
        &self,
        tx_hash: &str,
    ) -> Result<Vec<relayd_messages::Datagram>, ChainError> {
        match self {
            Self::Cosmos(e) => e.tx_messages(tx_hash).await,
            Self::Near(e) => e.tx_messages(tx_hash).await,
        }
    }

    async fn ibc_events_at(&self, height: u64) -> Result<Vec<ObservedEvent>, ChainError> {
        match self {
            Self::Cosmos(e) => e.ibc_events_at(height).await,
            Self::Near(e) => e.ibc_events_at(height).await,
        }
    }
}

/// A channel as a chain's listings show it: its ids, the connection it runs over and that connection's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedChannel {
    /// The channel's port.
    pub port: String,
    /// The channel.
    pub channel: String,
    /// Its end as the listing returned it: counterparty, connection (its first hop), ordering, state.
    pub route: ChannelInfo,
    /// The client that connection is built on.
    pub client: String,
}

impl AnyEndpoint {
    /// Every channel on the chain with its connection and client, for resolving paths that name no channel.
    /// Cosmos chains answer with two paginated listings; the NEAR contract lists ids only, so each channel and
    /// connection is read once more.
    pub async fn listed_channels(&self) -> Result<Vec<ListedChannel>, ChainError> {
        match self {
            Self::Cosmos(e) => {
                let clients: std::collections::HashMap<String, String> = e
                    .rpc()
                    .connections()
                    .await?
                    .into_iter()
                    .map(|c| (c.id, c.client_id))
                    .collect();
                Ok(e.rpc()
                    .channels()
                    .await?
                    .into_iter()
                    .filter_map(|c| {
                        let client = clients.get(c.connection_hops.first()?)?.clone();
                        Some(ListedChannel {
                            client,
                            port: c.port_id,
                            channel: c.channel_id,
                            route: ChannelInfo::of(Channel {
                                state: c.state,
                                ordering: c.ordering,
                                counterparty: c.counterparty,
                                connection_hops: c.connection_hops,
                                version: c.version,
                                upgrade_sequence: c.upgrade_sequence,
                            }),
                        })
                    })
                    .collect())
            }
            Self::Near(e) => {
                let mut clients = std::collections::HashMap::new();
                for connection in e.connections().await? {
                    let client = e.connection_client(&connection).await?;
                    clients.insert(connection, client);
                }
                let mut listed = Vec::new();
                for (port, channel) in e.channels().await? {
                    let info = e.channel_route(&port, &channel).await?;
                    if let Some(client) = clients.get(&info.connection) {
                        listed.push(ListedChannel {
                            client: client.clone(),
                            route: info,
                            port,
                            channel,
                        });
                    }
                }
                Ok(listed)
            }
        }
    }
}
