//! The Cosmos implementation of [`ChainEndpoint`]: a CometBFT RPC connection plus the chain's IBC store name.

use relayd_messages::ObservedEvent;

use super::monitor::fetch_block;
use super::rpc::CosmosRpc;
use crate::chain::endpoint::{ChainEndpoint, ChainError, Proven, QueryHeight};

/// A Cosmos chain as the actors see it.
#[derive(Clone)]
pub struct CosmosEndpoint {
    rpc: CosmosRpc,
    store_prefix: String,
}

impl CosmosEndpoint {
    /// An endpoint over `rpc` whose IBC store is named `store_prefix` (the config's `store_prefix`).
    pub fn new(rpc: CosmosRpc, store_prefix: &str) -> Self {
        Self {
            rpc,
            store_prefix: store_prefix.to_owned(),
        }
    }

    /// The RPC connection, for the light client and the transaction submitter.
    pub fn rpc(&self) -> &CosmosRpc {
        &self.rpc
    }
}

impl ChainEndpoint for CosmosEndpoint {
    fn chain_id(&self) -> &str {
        self.rpc.chain()
    }

    async fn latest_height(&self) -> Result<u64, ChainError> {
        let (_, height) = self
            .rpc
            .status()
            .await
            .map_err(|e| ChainError::rpc(self.rpc.chain(), "status", e))?;
        Ok(height)
    }

    async fn query_ibc(
        &self,
        path: &str,
        height: QueryHeight,
        prove: bool,
    ) -> Result<Proven, ChainError> {
        self.rpc
            .query_ibc(&self.store_prefix, path, height, prove)
            .await
    }

    async fn packet_commitments(&self, port: &str, channel: &str) -> Result<Vec<u64>, ChainError> {
        self.rpc.packet_commitments(port, channel).await
    }

    async fn packet_acknowledgements(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<Vec<u64>, ChainError> {
        self.rpc.packet_acknowledgements(port, channel).await
    }

    async fn unreceived_packets(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        self.rpc.unreceived_packets(port, channel, sequences).await
    }

    async fn unreceived_acks(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        self.rpc.unreceived_acks(port, channel, sequences).await
    }

    async fn packet_events(
        &self,
        kind: relayd_messages::PacketEventKind,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<ObservedEvent>, ChainError> {
        use relayd_messages::PacketEventKind;
        use std::collections::HashSet;
        use tendermint_rpc::{Client, Order};
        let chain = self.rpc.chain();
        let (event, end) = match kind {
            PacketEventKind::Sent => ("send_packet", "src"),
            PacketEventKind::AckWritten => ("write_acknowledgement", "dst"),
        };
        // One search per channel, not per sequence: a backlog of thousands of packets sent many per
        // transaction is a few pages.
        let text = format!(
            "{event}.packet_{end}_port='{port}' AND {event}.packet_{end}_channel='{channel}'"
        );
        let call = format!("tx_search {text}");
        let query: tendermint_rpc::query::Query =
            text.parse().map_err(|e| ChainError::rpc(chain, &call, e))?;
        let mut wanted: HashSet<u64> = sequences.iter().copied().collect();
        let mut out = Vec::new();
        let per_page: u8 = 100;
        let mut page = 1u32;
        while !wanted.is_empty() {
            let r = self
                .rpc
                .http()
                .tx_search(query.clone(), false, page, per_page, Order::Ascending)
                .await
                .map_err(|e| ChainError::rpc(chain, &call, e))?;
            for tx in &r.txs {
                if tx.tx_result.code.is_err() {
                    continue;
                }
                let decoded = super::events::decode_tx_events(
                    tx.height.value(),
                    &tx.hash.to_string(),
                    &tx.tx_result.events,
                );
                for e in decoded.events {
                    if crate::chain::endpoint::take_packet_event(
                        &e,
                        kind,
                        port,
                        channel,
                        &mut wanted,
                    ) {
                        out.push(e);
                    }
                }
            }
            let seen = u64::from(page) * u64::from(per_page);
            if r.txs.is_empty() || seen >= u64::from(r.total_count) {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    async fn tx_messages(
        &self,
        tx_hash: &str,
    ) -> Result<Vec<relayd_messages::Datagram>, ChainError> {
        self.rpc.tx_messages(tx_hash).await
    }

    async fn ibc_events_at(&self, height: u64) -> Result<Vec<ObservedEvent>, ChainError> {
        let block = fetch_block(&self.rpc, self.rpc.chain(), height)
            .await
            .map_err(|e| ChainError::rpc(self.rpc.chain(), &format!("events at {height}"), e))?;
        Ok(block.events)
    }
}
