//! Keeps the scores of a NEAR chain's RPC endpoints fresh: every endpoint is asked `status` on a fixed period,
//! so that a node that died, lags or came back is known before a request has to find out, and the per-endpoint
//! gauges follow. Same period and timeout as the Cosmos prober. Unlike CometBFT's network name, NEAR's
//! `chain_id` ("mainnet", "testnet") is not relayd's chain id, so it is not compared here: a node of another
//! network serves light-client blocks that do not verify, and is quarantined for it (`head.rs`).

use std::time::Instant;

use super::NearRpc;
use crate::chain::cosmos::rpc::prober::{PROBE_EVERY, PROBE_TIMEOUT};
use crate::metrics::Metrics;

/// Asks every endpoint of `rpc` once and records the outcomes in its pool.
pub async fn probe_once(rpc: &NearRpc) {
    let probes = (0..rpc.endpoints()).map(|i| async move {
        let pinned = rpc.pinned_to(i);
        let started = Instant::now();
        match tokio::time::timeout(PROBE_TIMEOUT, pinned.status()).await {
            Ok(Ok(status)) => {
                rpc.pool()
                    .probed(i, status.sync_info.latest_block_height, started.elapsed())
            }
            // The pinned client has recorded the failure already.
            Ok(Err(_)) => {}
            Err(_) => rpc
                .pool()
                .failed(i, &format!("no status within {PROBE_TIMEOUT:?}")),
        }
    });
    futures::future::join_all(probes).await;
}

/// Probes `rpc`'s endpoints every [`PROBE_EVERY`] on the current actix arbiter, for as long as it runs, and sets
/// the `relayd_rpc_endpoint_*` gauges after each round.
pub fn spawn(rpc: NearRpc, metrics: Option<Metrics>) {
    actix::spawn(async move {
        loop {
            probe_once(&rpc).await;
            if let Some(m) = &metrics {
                rpc.pool().export(m);
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    });
}
