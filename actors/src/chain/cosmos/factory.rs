//! Builds a Cosmos chain's backends for its supervisor, afresh on every (re)start.

use std::sync::Arc;

use cosmrs::crypto::secp256k1::SigningKey;
use relayd_messages::{ChainId, ErrorKind, RelayError};

use super::backend::{CosmosLight, CosmosSubmitter};
use super::endpoint::CosmosEndpoint;
use super::light_client::TrustOptions;
use super::monitor::{EventMonitor, MonitorConfig};
use super::rpc::CosmosRpc;
use super::tx::{TxConfig, TxSubmitter};
use crate::per_chain::ChainFactory;
use crate::store::StateStore;

/// Loads the chain's signing key (from the key store) each time a submitter starts.
pub type KeyLoader = Arc<dyn Fn() -> Result<SigningKey, String> + Send + Sync>;

/// Everything a Cosmos chain's actors are built from.
#[derive(Clone)]
pub struct CosmosFactory {
    /// The chain.
    pub chain: ChainId,
    /// A connected RPC client (its dialect already detected).
    pub rpc: CosmosRpc,
    /// The IBC store name.
    pub store_prefix: String,
    /// The state database.
    pub store: StateStore,
    /// Light-client parameters.
    pub trust: TrustOptions,
    /// Transaction parameters.
    pub tx: TxConfig,
    /// The signer's address.
    pub address: String,
    /// The signer's key.
    pub key: KeyLoader,
    /// How the monitor follows the chain.
    pub monitor: MonitorConfig,
}

impl ChainFactory for CosmosFactory {
    type Endpoint = CosmosEndpoint;
    type Light = CosmosLight;
    type Submit = CosmosSubmitter;
    type Events = EventMonitor;

    fn chain_id(&self) -> &ChainId {
        &self.chain
    }

    fn endpoint(&self) -> CosmosEndpoint {
        CosmosEndpoint::new(self.rpc.clone(), &self.store_prefix)
    }

    fn light(&self) -> Result<CosmosLight, RelayError> {
        CosmosLight::new(self.rpc.clone(), self.store.clone(), self.trust)
    }

    fn submitter(&self) -> Result<CosmosSubmitter, RelayError> {
        let key = (self.key)().map_err(|e| {
            RelayError::new(
                ErrorKind::ClientUnusable,
                format!("{}: signing key: {e}", self.chain),
            )
        })?;
        let max = self.tx.max_msg_num;
        let inner = TxSubmitter::new(self.rpc.clone(), self.tx.clone(), key, self.address.clone());
        Ok(CosmosSubmitter::new(inner, max))
    }

    fn events(&self) -> Result<EventMonitor, RelayError> {
        EventMonitor::new(self.monitor.clone())
            .map_err(|e| RelayError::new(ErrorKind::Rejected, e.to_string()))
    }
}
