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

    async fn ibc_events_at(&self, height: u64) -> Result<Vec<ObservedEvent>, ChainError> {
        let block = fetch_block(&self.rpc, self.rpc.chain(), height)
            .await
            .map_err(|e| ChainError::rpc(self.rpc.chain(), &format!("events at {height}"), e))?;
        Ok(block.events)
    }
}
