//! Keeps the scores of a chain's RPC endpoints fresh: every endpoint is asked `status` on a fixed period, so
//! that a node that died, lags or came back is known before a request has to find out, and the per-endpoint
//! gauges follow.

use std::time::{Duration, Instant};

use tendermint_rpc::Client;

use super::CosmosRpc;
use crate::metrics::Metrics;

/// How often every endpoint is asked.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long one probe may take before the endpoint counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks every endpoint of `rpc` once and records the outcomes in its pool.
pub async fn probe_once(rpc: &CosmosRpc) {
    let http = rpc.http();
    let pool = rpc.pool();
    let probes = (0..http.endpoints()).map(|i| async move {
        let pinned = http.pinned_to(i);
        let started = Instant::now();
        match tokio::time::timeout(PROBE_TIMEOUT, pinned.status()).await {
            Ok(Ok(status)) => {
                let network = status.node_info.network.to_string();
                if network == rpc.chain() {
                    pool.probed(
                        i,
                        status.sync_info.latest_block_height.value(),
                        started.elapsed(),
                    );
                } else {
                    pool.failed(i, &format!("the node serves chain {network}"));
                }
            }
            // The pinned client has recorded the failure already.
            Ok(Err(_)) => {}
            Err(_) => pool.failed(i, &format!("no status within {PROBE_TIMEOUT:?}")),
        }
    });
    futures::future::join_all(probes).await;
}

/// Probes `rpc`'s endpoints every [`PROBE_EVERY`] on the current actix arbiter, for as long as it runs, and sets
/// the `relayd_rpc_endpoint_*` gauges after each round.
pub fn spawn(rpc: CosmosRpc, metrics: Option<Metrics>) {
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
