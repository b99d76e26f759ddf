//! Turning one Cosmos `[[chains]]` entry into what its supervisor runs: the factory of its actors and its link.

use std::sync::Arc;
use std::time::Duration;

use relayd_config::{ChainConfig, Config};
use tendermint_light_client_verifier::types::TrustThreshold;
use tendermint_rpc::client::CompatMode;
use tracing::warn;

use super::StartError;
use crate::chain::cosmos::factory::CosmosFactory;
use crate::chain::cosmos::light_client::TrustOptions;
use crate::chain::cosmos::monitor::MonitorConfig;
use crate::chain::cosmos::rpc::CosmosRpc;
use crate::chain::cosmos::tx::TxConfig;
use crate::chain_link::ChainLink;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::rpc_pool::{PoolSettings, RpcPool};
use crate::store::StateStore;

/// How long one request to a chain's node may take (the relaying clients' default): a node that hangs longer
/// counts as failed and the request moves to the chain's next endpoint.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a transaction is given to confirm before it counts as failed.
pub(super) fn confirm_timeout(config: &Config) -> Duration {
    config.global.timeout.get().max(Duration::from_secs(30))
}

pub(super) fn chain_err(chain: &ChainConfig, reason: impl std::fmt::Display) -> StartError {
    StartError::Chain {
        chain: chain.id.to_string(),
        reason: reason.to_string(),
    }
}

/// The actor factory and chain link of a Cosmos chain: its node probed for the RPC dialect (within `[global]
/// timeout`), its signing key, trust options, transaction and monitor settings.
pub(super) async fn cosmos_factory(
    chain: &ChainConfig,
    config: &Config,
    store: &StateStore,
    keys_dir: &std::path::Path,
    metrics: Option<&Metrics>,
) -> Result<(CosmosFactory, ChainLink), StartError> {
    let settings = chain
        .cosmos()
        .ok_or_else(|| chain_err(chain, "incomplete cosmos settings"))?;
    let id = chain.id.to_string();
    let urls: Vec<String> = chain
        .rpc_endpoints()
        .iter()
        .map(ToString::to_string)
        .collect();
    // The nodes are asked their version only to pick the RPC dialect, within [global] timeout each so a hung
    // node does not hold the start. None answering does not stop the start: the chain starts degraded and its
    // actors retry with backoff like any node that goes away later.
    let timeout = config.global.timeout.get();
    let compat = match CosmosRpc::probe_dialect(&id, &urls, timeout).await {
        Ok(compat) => compat,
        Err(e) => {
            warn!(chain = %chain.id, error = %e, "no RPC endpoint reachable at start; the chain starts degraded and is retried with backoff (CometBFT 0.37/0.38 RPC assumed)");
            CompatMode::latest()
        }
    };
    let pool = RpcPool::new(&id, &urls, PoolSettings::default());
    let rpc = CosmosRpc::pooled(
        &id,
        &urls,
        pool,
        compat,
        RPC_TIMEOUT,
        crate::chain::cosmos::rpc::MAX_RESPONSE_BYTES,
    )
    .and_then(|rpc| match &settings.grpc_addr {
        Some(grpc) => rpc.with_grpc(&grpc.to_string(), timeout),
        None => Ok(rpc),
    })
    .map_err(|e| chain_err(chain, e))?;
    crate::chain::cosmos::rpc::prober::spawn(rpc.clone(), metrics.cloned());
    let keys = KeyStore::open(keys_dir).map_err(|e| chain_err(chain, e))?;
    let (info, _) = keys.signing_key(&id).map_err(|e| chain_err(chain, e))?;
    let dir = keys_dir.to_path_buf();
    let key_chain = id.clone();
    let key = Arc::new(move || {
        KeyStore::open(&dir)
            .and_then(|k| k.signing_key(&key_chain))
            .map(|(_, key)| key)
            .map_err(|e| e.to_string())
    });
    // The chain's further signers: each key loaded now (a missing one stops the start, as the first does) and
    // again whenever the TxSubmitter restarts.
    let mut extra_keys: Vec<(String, String, crate::chain::cosmos::factory::KeyLoader)> =
        Vec::new();
    let mut signers = vec![(settings.key_name.clone(), info.address.clone())];
    for name in settings.key_names.iter().skip(1) {
        let (extra, _) = keys
            .extra_signing_key(&id, name)
            .map_err(|e| chain_err(chain, e))?;
        signers.push((name.clone(), extra.address.clone()));
        let key_name = name.clone();
        let (dir, key_chain, name) = (keys_dir.to_path_buf(), id.clone(), name.clone());
        let loader: crate::chain::cosmos::factory::KeyLoader = Arc::new(move || {
            KeyStore::open(&dir)
                .and_then(|k| k.extra_signing_key(&key_chain, &name))
                .map(|(_, key)| key)
                .map_err(|e| e.to_string())
        });
        extra_keys.push((key_name, extra.address, loader));
    }
    let threshold = TrustThreshold::new(
        chain.trust_threshold.numerator,
        chain.trust_threshold.denominator,
    )
    .map_err(|e| chain_err(chain, e))?;
    let trust = TrustOptions {
        trust_threshold: threshold,
        trusting_period: chain.trusting_period.get(),
        clock_drift: chain.clock_drift.0,
    };
    let tx = TxConfig {
        chain_id: id.clone(),
        default_gas: settings.gas,
        gas_adjustment: settings.gas_adjustment,
        gas_price: settings.gas_price.amount,
        fee_denom: settings.gas_price.denom.clone(),
        max_gas: settings.max_gas,
        max_msg_num: chain.max_msg_num,
        max_tx_size: chain.max_tx_size,
        confirm_timeout: confirm_timeout(config),
        poll_interval: Duration::from_millis(100),
        max_in_flight: settings.max_in_flight,
    };
    let monitor = MonitorConfig::from_chain_config(
        chain,
        config.supervision.backoff_base.get(),
        config.supervision.backoff_cap.get(),
    )
    .map_err(|e| chain_err(chain, e))?;
    let link = ChainLink::new(
        chain.id.clone(),
        info.address.clone(),
        settings.store_prefix.as_bytes().to_vec(),
    )
    .with_signers(signers);
    let factory = CosmosFactory {
        chain: chain.id.clone(),
        rpc,
        store_prefix: settings.store_prefix.clone(),
        store: store.clone(),
        trust,
        tx,
        address: info.address,
        key,
        key_name: settings.key_name.clone(),
        extra_keys,
        min_balance: settings.min_balance,
        monitor,
        metrics: metrics.cloned(),
    };
    Ok((factory, link))
}
