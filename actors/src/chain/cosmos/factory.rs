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
use crate::chain::factory::ChainFactory;
use crate::metrics::Metrics;
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
    /// The signer's key name.
    pub key_name: String,
    /// The chain's further signers (its `key_names` after the first): key name, address and key of each, one
    /// TxSubmitter lane each.
    pub extra_keys: Vec<(String, String, KeyLoader)>,
    /// The balance below which a signer's lane is drained (`min_balance`), if set.
    pub min_balance: Option<u128>,
    /// How the monitor follows the chain.
    pub monitor: MonitorConfig,
    /// Where transactions, reconnects and node errors are counted, if anywhere.
    pub metrics: Option<Metrics>,
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
        self.submitter_of(&self.key_name, &self.address, &self.key)
    }

    fn extra_submitters(&self) -> Result<Vec<CosmosSubmitter>, RelayError> {
        self.extra_keys
            .iter()
            .map(|(name, address, key)| Ok(self.submitter_of(name, address, key)?.resigning()))
            .collect()
    }

    fn events(&self) -> Result<EventMonitor, RelayError> {
        let mut monitor = EventMonitor::new(self.monitor.clone())
            .map_err(|e| RelayError::new(ErrorKind::Rejected, e.to_string()))?
            .announcing(self.rpc.pool().clone());
        // With several endpoints the monitor reads through the chain's pool and its subscription follows the
        // pool; with one it keeps a client of its own, with the monitor's shorter request deadline.
        if self.rpc.pool().len() > 1 {
            monitor = monitor.sharing(self.rpc.clone());
        }
        if let Some(metrics) = &self.metrics {
            watch_monitor(metrics.clone(), self.chain.to_string(), monitor.status());
        }
        Ok(monitor)
    }
}

impl CosmosFactory {
    /// A submitter signing as `address` with `key` (named `name`), with no cached account state.
    fn submitter_of(
        &self,
        name: &str,
        address: &str,
        key: &KeyLoader,
    ) -> Result<CosmosSubmitter, RelayError> {
        let key = key().map_err(|e| {
            RelayError::new(
                ErrorKind::ClientUnusable,
                format!("{}: signing key of {address}: {e}", self.chain),
            )
        })?;
        let max = self.tx.max_msg_num;
        let inner = TxSubmitter::new(self.rpc.clone(), self.tx.clone(), key, address.to_owned());
        let submitter = CosmosSubmitter::new(inner, max).watched(name.to_owned(), self.min_balance);
        Ok(match &self.metrics {
            Some(m) => submitter.metered(m.clone(), self.chain.to_string()),
            None => submitter,
        })
    }
}

/// Carries a monitor's reconnect and error counts into the metrics while it lives; the watch closes when the
/// monitor is dropped, which ends the task.
fn watch_monitor(
    metrics: Metrics,
    chain: String,
    mut status: tokio::sync::watch::Receiver<crate::chain_monitor::MonitorStatus>,
) {
    actix::spawn(async move {
        let (mut reconnects, mut errors) = (0u64, 0u64);
        while status.changed().await.is_ok() {
            let (r, e) = {
                let s = status.borrow_and_update();
                (s.reconnects, s.errors)
            };
            let f = metrics.families();
            if r > reconnects {
                f.websocket_reconnects_total
                    .with_label_values(&[&chain])
                    .inc_by(r - reconnects);
            }
            if e > errors {
                f.rpc_errors_total
                    .with_label_values(&[&chain])
                    .inc_by(e - errors);
            }
            (reconnects, errors) = (r, e);
        }
    });
}
