//! `relayd create client` between a Cosmos devnet chain and a NEAR devnet, both ways, as an operator runs it: with
//! no trusted NEAR head the NEAR direction is refused with the fix in the message; after `relayd light init` a
//! `12-near` client is created on the Cosmos chain from the block relayd's NEAR light client verified (read back
//! from the Cosmos chain and compared with the head relayd stored), and relayd's updates of it across a NEAR epoch
//! change are accepted by the Cosmos devnet's client; a Tendermint client of the Cosmos chain is created on NEAR
//! through relayd's `deliver` and read back from the contract.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/near_pair.rs"]
#[allow(dead_code)]
mod near_pair;

use std::process::Output;
use std::time::Duration;

use devnet::near_client::{NearClientState, NearConsensusState};
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::lightclients::tendermint::v1::{
    ClientState as TmClientState, ConsensusState as TmConsensusState,
};
use near_pair::NearPair;
use prost::Message;
use relayd_actors::chain::near::backend::NearLight;
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::light_client::LightSource;
use relayd_actors::store::StateStore;
use support::chain::{Chain, Wallet};

const BLOCK_TIME: Duration = Duration::from_millis(200);

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "relayd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

async fn stored(chain: &Chain, path: String) -> Any {
    let raw = chain
        .query("store/ibc/key", path.into_bytes(), None, false)
        .await
        .expect("query")
        .value;
    Any::decode(raw.as_slice()).expect("an Any")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_client_both_ways_between_cosmos_and_near_from_verified_heads() {
    let pair = NearPair::start(BLOCK_TIME, 5).await;
    let chains = &pair.cosmos;
    let cosmos = Chain::connect(&chains[0]);
    let near = &pair.near;
    let near_id = pair.near_id.clone();
    let contract = near.genesis.ibc.account_id.clone();
    let dir = &pair.dir;

    // No trusted NEAR head: refused, and the message says how to fix it.
    let refused = pair
        .run(&[
            "create",
            "client",
            "--host-chain",
            "ibc-0",
            "--reference-chain",
            &near_id,
        ])
        .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("relayd light init --chain {near_id} --hash")),
        "{stderr}"
    );

    // The operator vouches for a block of the third epoch.
    let epoch = near.genesis.epoch_length;
    let vouched = 2 * epoch + 3;
    pair.vouch(vouched).await;
    let rpc = NearRpc::new(&near_id, &near.rpc_url());

    // A 12-near client on ibc-0 from the block relayd's light client verified.
    let created = json(
        &pair
            .run(&[
                "create",
                "client",
                "--host-chain",
                "ibc-0",
                "--reference-chain",
                &near_id,
                "--json",
            ])
            .await,
    );
    let client = created["client_id"].as_str().unwrap().to_owned();
    assert!(client.starts_with("12-near-"), "{client}");
    let state =
        NearClientState::try_from(stored(&cosmos, format!("clients/{client}/clientState")).await)
            .unwrap();
    let store_dir = dir.path().join("data").join("state");
    let head = {
        let store = StateStore::open(&store_dir).unwrap();
        store
            .trusted_near(&near_id)
            .unwrap()
            .expect("a stored head")
    };
    let head_block = head.block.clone().expect("the head's verified block");
    assert_eq!(state.latest_height, head.trusted.head.inner_lite.height);
    assert!(
        state.latest_height > vouched,
        "moved on from the vouched block"
    );
    assert_eq!(
        state.latest_timestamp,
        head_block.inner_lite.timestamp_nanosec
    );
    assert_eq!(state.trusting_period, Duration::from_secs(3600));
    let consensus = NearConsensusState::try_from(
        stored(
            &cosmos,
            format!("clients/{client}/consensusStates/0-{}", state.latest_height),
        )
        .await,
    )
    .unwrap();
    assert_eq!(consensus.root(), head_block.inner_lite.prev_state_root);
    assert_eq!(
        consensus.timestamp_ns(),
        head_block.inner_lite.timestamp_nanosec
    );

    // relayd's updates of it, across at least one NEAR epoch change, are accepted by ibc-0's client.
    let wallet = Wallet::genesis(&chains[0], "relayer");
    let store = StateStore::open(&store_dir).unwrap();
    let mut light = NearLight::new(
        rpc.clone(),
        store.clone(),
        Duration::from_secs(10),
        BLOCK_TIME,
        false,
    )
    .unwrap();
    let start_epoch = head_block.inner_lite.epoch_id;
    let mut target = state.latest_height;
    for _ in 0..600 {
        target = light.refresh().await.unwrap();
        let epoch_now = rpc
            .block(Some(target))
            .await
            .map(|b| b.header.epoch_id)
            .ok();
        if epoch_now.is_some_and(|e| e != start_epoch) && target > state.latest_height + epoch {
            break;
        }
        tokio::time::sleep(BLOCK_TIME).await;
    }
    let update = light
        .prepare_update(&client, state.latest_height, None, target, &wallet.address)
        .await
        .unwrap();
    assert!(!update.msgs.is_empty());
    let msgs: Vec<Any> = update
        .msgs
        .into_iter()
        .map(|d| Any {
            type_url: d.type_url,
            value: d.value,
        })
        .collect();
    cosmos.submit(&wallet, &msgs).await;
    let updated =
        NearClientState::try_from(stored(&cosmos, format!("clients/{client}/clientState")).await)
            .unwrap();
    assert_eq!(updated.latest_height, target);
    let consensus = NearConsensusState::try_from(
        stored(
            &cosmos,
            format!("clients/{client}/consensusStates/0-{target}"),
        )
        .await,
    )
    .unwrap();
    assert_ne!(consensus.header().block.inner_lite.epoch_id.0, start_epoch);
    assert_eq!(consensus.root().0.to_vec(), update.app_hash);
    drop(light);
    drop(store);

    // A Tendermint client of ibc-0 on NEAR, delivered by relayd.
    let created = json(
        &pair
            .run(&[
                "create",
                "client",
                "--host-chain",
                &near_id,
                "--reference-chain",
                "ibc-0",
                "--json",
            ])
            .await,
    );
    let tm_client = created["client_id"].as_str().unwrap().to_owned();
    assert!(tm_client.starts_with("07-tendermint-"), "{tm_client}");
    let endpoint = NearEndpoint::new(rpc.clone(), contract.clone());
    let raw = endpoint.client_state(&tm_client).await.unwrap();
    let any = Any::decode(raw.as_slice()).unwrap();
    assert_eq!(any.type_url, "/ibc.lightclients.tendermint.v1.ClientState");
    let tm = TmClientState::decode(any.value.as_slice()).unwrap();
    assert_eq!(tm.chain_id, "ibc-0");
    let height = tm.latest_height.unwrap().revision_height;
    let raw = endpoint
        .consensus_state(&tm_client, 0, height)
        .await
        .unwrap();
    let cs =
        TmConsensusState::decode(Any::decode(raw.as_slice()).unwrap().value.as_slice()).unwrap();
    // What relayd verified: the header at that height as ibc-0 committed it.
    let block = support::light::fetch_light_block(&cosmos, height).await;
    let header = &block.signed_header.header;
    assert_eq!(cs.root.unwrap().hash, header.app_hash.as_bytes());
    assert_eq!(
        cs.next_validators_hash,
        header.next_validators_hash.as_bytes()
    );

    pair.near.shutdown().await;
}
