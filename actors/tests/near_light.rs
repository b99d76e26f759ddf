//! `light init` for NEAR against the NEAR devnet: a block the operator vouches for becomes relayd's NEAR head with
//! its epoch's producers checked against the epoch before, and relayd's NEAR light client moves on from it across
//! epoch changes (taking each next epoch's producers only as the head commits to them). Wrong heights and blocks
//! the node does not have are refused and store nothing.

use std::time::Duration;

use relayd_actors::chain::near::backend::{near_light_init, NearInitError, NearLight};
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::CryptoHash;
use relayd_actors::light_client::LightSource;
use relayd_actors::store::StateStore;

const BLOCK_TIME: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vouched_near_block_is_trusted_and_the_head_moves_on_across_epochs() {
    let near = devnet::near::start(devnet::near::NearOptions::local(BLOCK_TIME))
        .await
        .unwrap();
    let epoch_length = near.genesis.epoch_length;
    // A block in the third epoch, so the epoch before it has a last block whose header names its producers.
    let vouched = 2 * epoch_length + 3;
    near.wait_for_height(vouched + 2).await;
    let rpc = NearRpc::new(near.chain_id(), &near.rpc_url());
    let block = rpc.block(Some(vouched)).await.unwrap();
    let hash = block.header.hash;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();

    // Refused: another height, and a block the node does not have.
    let err = near_light_init(&rpc, &store, vouched + 1, hash)
        .await
        .unwrap_err();
    assert!(
        matches!(err, NearInitError::Height { actual, expected, .. } if actual == vouched && expected == vouched + 1),
        "{err}"
    );
    assert!(near_light_init(&rpc, &store, vouched, CryptoHash([5; 32]))
        .await
        .is_err());
    assert!(store.trusted_near(near.chain_id()).unwrap().is_none());

    let trusted = near_light_init(&rpc, &store, vouched, hash).await.unwrap();
    assert_eq!(trusted.head_hash(), hash);
    assert_eq!(trusted.head.inner_lite.height, vouched);
    assert!(!trusted.epoch_bps.is_empty());
    assert!(trusted.next_epoch_bps.is_none());
    let stored = store.trusted_near(near.chain_id()).unwrap().unwrap();
    assert_eq!(stored.trusted.head_hash(), hash);

    // The light client resumes from it; the node's next light-client block is in a later epoch, whose producers
    // relayd takes only as the vouched head commits to them, and the head keeps moving across epochs.
    near.wait_for_height(vouched + 3 * epoch_length).await;
    let mut light = NearLight::new(
        rpc.clone(),
        store.clone(),
        Duration::from_secs(10),
        BLOCK_TIME,
        false,
    )
    .unwrap();
    assert_eq!(light.head_height(), Some(vouched));
    let first_epoch = trusted.head.inner_lite.epoch_id;
    let mut height = vouched;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while height < vouched + 3 * epoch_length {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the head stopped at {height}"
        );
        height = light.refresh().await.unwrap();
        tokio::time::sleep(BLOCK_TIME).await;
    }
    let stored = store.trusted_near(near.chain_id()).unwrap().unwrap();
    assert_eq!(stored.trusted.head.inner_lite.height, height);
    assert_ne!(stored.trusted.head.inner_lite.epoch_id, first_epoch);
    assert!(
        stored.block.is_some(),
        "moved by verified light-client blocks"
    );

    near.shutdown().await;
}
