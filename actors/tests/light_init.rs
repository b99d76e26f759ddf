//! `light init` against a running devnet chain over real RPC: the vouched-for header is trusted and persisted;
//! a wrong hash or chain is refused; skipping verification from the trusted block reaches a later height.

use std::time::Duration;

use relayd_actors::chain::cosmos::light_client::{
    headers_to, light_init, LightInitError, TrustOptions,
};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::store::StateStore;
use tendermint_light_client_verifier::types::TrustThreshold;
use tendermint_rpc::client::CompatMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_init_trusts_persists_and_refuses_wrong_input() {
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(100),
    ))
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(30), chain.wait_for_height(6))
        .await
        .unwrap();
    let rpc = CosmosRpc::new("ibc-0", &chain.rpc_url(), CompatMode::V0_38).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();

    let block3 = rpc.fetch_light_block(3).await.unwrap();
    let hash = block3.signed_header.header.hash();
    let trusted = light_init(&rpc, &store, "ibc-0", 3, &hash).await.unwrap();
    assert_eq!(trusted.height().value(), 3);
    assert_eq!(store.trusted("ibc-0").unwrap(), Some(trusted.clone()));

    let other = rpc
        .fetch_light_block(4)
        .await
        .unwrap()
        .signed_header
        .header
        .hash();
    let err = light_init(&rpc, &store, "ibc-0", 3, &other)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LightInitError::HashMismatch { height: 3, .. }),
        "{err}"
    );
    let err = light_init(&rpc, &store, "ibc-9", 3, &hash)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the node at this address serves chain ibc-0, not ibc-9"
    );

    let trust = TrustOptions {
        trust_threshold: TrustThreshold::TWO_THIRDS,
        trusting_period: Duration::from_secs(14 * 24 * 3600),
        clock_drift: Duration::from_secs(5),
    };
    let headers = headers_to("ibc-0", &rpc, &trusted, 6, &trust, tendermint::Time::now())
        .await
        .unwrap();
    let heights: Vec<u64> = headers.iter().map(|b| b.height().value()).collect();
    assert_eq!(
        heights,
        [6],
        "a stable validator set needs no intermediate header"
    );

    // Refreshing moves the stored trusted state up to the node's latest block.
    use relayd_actors::chain::cosmos::light_client::{keep_fresh, refresh};
    let refreshed = refresh(&rpc, &store, &trust).await.unwrap();
    assert!(refreshed.height().value() >= 6);
    assert_eq!(store.trusted("ibc-0").unwrap(), Some(refreshed.clone()));

    // On a timer: with a 2 s trusting period refreshed at a quarter of it, the trusted height keeps rising.
    let short = TrustOptions {
        trusting_period: Duration::from_secs(2),
        ..trust
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keep_fresh(rpc.clone(), store.clone(), short, 0.25, async {
        let _ = stopped.await;
    }));
    let before = refreshed.height().value();
    tokio::time::timeout(Duration::from_secs(30), async {
        while store.trusted("ibc-0").unwrap().unwrap().height().value() < before + 5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("trusted state advances on its own");
    stop.send(()).unwrap();
    task.await.unwrap();

    chain.shutdown().await;
}
