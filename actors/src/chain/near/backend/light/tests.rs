//! The NEAR light client source's tests, against a scripted node serving recorded light-client blocks.

use super::*;
use crate::chain::near::light_client::{sha256, TrustedNear};
use crate::chain::near::test_rpc::{block as block_view, serve, Reply};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn recorded(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/near-light-client")
        .join(name);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    doc["body"].clone()
}

#[tokio::test]
async fn a_first_start_is_refused_unless_trust_on_first_use_which_trusts_the_latest_block() {
    let first = recorded("main_0.json");
    let producers = first["next_bps"].clone();
    let height = first["inner_lite"]["height"].as_u64().expect("height");
    for serves_producers in [true, false] {
        let served = first.clone();
        let list = producers.clone();
        let rpc = serve(Arc::new(move |method: &str, _: &Value| match method {
            "block" => Reply::Result(block_view(
                height + 2,
                height + 1,
                sha256(b"final"),
                CryptoHash::default(),
            )),
            "next_light_client_block" => Reply::Result(served.clone()),
            "EXPERIMENTAL_validators_ordered" if serves_producers => Reply::Result(list.clone()),
            other => Reply::Error(json!({
                "code": -32601, "message": "Method not found", "data": other,
                "name": "REQUEST_VALIDATION_ERROR",
                "cause": {"name": "METHOD_NOT_FOUND", "info": {"method_name": other}}
            })),
        }))
        .await;
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let store = StateStore::from_db(db).expect("store");
        let light = |first_use: bool| {
            NearLight::new(
                NearRpc::new("near-mainnet", &rpc.url),
                store.clone(),
                Duration::from_millis(100),
                Duration::from_millis(10),
                first_use,
            )
        };
        // By default a chain without a stored head does not start, and the error says how to fix it.
        let Err(refused) = light(false) else {
            panic!("started without a trusted head");
        };
        assert_eq!(refused.kind, ErrorKind::ClientUnusable);
        assert!(
            refused
                .message
                .contains("relayd light init --chain near-mainnet --hash"),
            "{}",
            refused.message
        );
        assert!(refused.message.contains("trust_on_first_use = true"));
        assert!(store.trusted_near("near-mainnet").expect("read").is_none());
        let mut near = light(true).expect("trust on first use allowed");
        assert_eq!(near.head_height(), None);
        assert_eq!(near.refresh().await.expect("bootstrapped"), height);
        let stored = store
            .trusted_near("near-mainnet")
            .expect("read")
            .expect("stored on first use");
        assert_eq!(stored.trusted.head.inner_lite.height, height);
        assert!(stored.trusted.next_epoch_bps.is_some());
        assert_eq!(
            stored.trusted.epoch_bps.is_empty(),
            !serves_producers,
            "serves producers: {serves_producers}"
        );
    }
}

#[tokio::test]
async fn a_lying_node_neither_moves_nor_persists_the_head_and_unverified_chunks_make_no_header() {
    let first: LightClientBlockView =
        serde_json::from_value(recorded("main_0.json")).expect("view");
    let genuine = recorded("main_1.json");
    let target = genuine["inner_lite"]["height"].as_u64().expect("height");
    let state_root: CryptoHash =
        serde_json::from_value(genuine["inner_lite"]["prev_state_root"].clone()).expect("hash");
    let mut forged = genuine.clone();
    forged["inner_lite"]["prev_state_root"] = json!(sha256(b"forged state").to_string());
    let lie = Arc::new(AtomicBool::new(true));
    let lying = lie.clone();
    let rpc = serve(Arc::new(move |method: &str, params: &Value| match method {
        "next_light_client_block" if lying.load(Ordering::SeqCst) => Reply::Result(forged.clone()),
        "next_light_client_block" => Reply::Result(genuine.clone()),
        // The node's block for the head: its chunk roots are not the ones the verified header commits to.
        "block" => Reply::Result(block_view(
            target,
            target - 1,
            serde_json::from_value(params["block_id"].clone()).unwrap_or_default(),
            sha256(b"another state"),
        )),
        other => Reply::Error(json!({"code": -32601, "message": format!("no method {other}")})),
    }))
    .await;
    let db = sled::Config::new().temporary(true).open().expect("sled");
    let store = StateStore::from_db(db).expect("store");
    let start = first.inner_lite.height;
    store
        .save_trusted_near(
            "near-mainnet",
            &StoredNearHead {
                trusted: TrustedNear::new(lite(&first), Vec::new(), first.next_bps.clone()),
                block: Some(first.clone()),
            },
        )
        .expect("save");
    let light = |store: &StateStore| {
        NearLight::new(
            NearRpc::new("near-mainnet", &rpc.url),
            store.clone(),
            Duration::from_millis(300),
            Duration::from_millis(10),
            false,
        )
        .expect("light")
    };
    let mut near = light(&store);
    assert_eq!(near.head_height(), Some(start), "resumed from sled");
    let stored_height = |store: &StateStore| {
        store
            .trusted_near("near-mainnet")
            .expect("read")
            .map(|s| s.trusted.head.inner_lite.height)
    };

    let err = near
        .prepare_update("12-near-0", start, None, target, "cosmos1relayer")
        .await
        .expect_err("forged block");
    assert_eq!(err.kind, ErrorKind::Unverified, "{}", err.message);
    assert_eq!(near.head_height(), Some(start));
    assert_eq!(
        stored_height(&store),
        Some(start),
        "nothing unverified persisted"
    );

    lie.store(false, Ordering::SeqCst);
    // The client already holds the target: nothing to send, and the verified app hash.
    let update = near
        .prepare_update("12-near-0", target, None, target, "cosmos1relayer")
        .await
        .expect("verified");
    assert!(update.msgs.is_empty());
    assert_eq!(update.app_hash, state_root.0.to_vec());
    assert_eq!(stored_height(&store), Some(target));
    // A header for a client further back needs the head's chunk roots, and the node's do not match.
    let err = near
        .prepare_update("12-near-0", start, None, target, "cosmos1relayer")
        .await
        .expect_err("unverified chunk roots");
    assert_eq!(err.kind, ErrorKind::Unverified, "{}", err.message);
    assert!(err.message.contains("chunk state roots"), "{}", err.message);
    // A height the light client did not verify is not guessed: the update goes to the first verified head
    // above it, and says so.
    let update = near
        .prepare_update("12-near-0", target, None, target - 1, "cosmos1relayer")
        .await
        .expect("the next verified head");
    assert_eq!(update.target, target);
    assert_eq!(update.app_hash, state_root.0.to_vec());
    // Above every verified head, with nothing newer served: unavailable.
    let err = near
        .prepare_update("12-near-0", target, None, target + 1, "cosmos1relayer")
        .await
        .expect_err("nothing verified above");
    assert_eq!(err.kind, ErrorKind::Unavailable);

    // Another instance (a restarted actor) starts from the stored head, with its block.
    let mut again = light(&store);
    assert_eq!(again.head_height(), Some(target));
    let update = again
        .prepare_update("12-near-0", target, None, target, "cosmos1relayer")
        .await
        .expect("from the stored block");
    assert_eq!(update.app_hash, state_root.0.to_vec());
}

#[tokio::test]
async fn a_node_serving_a_forged_block_is_quarantined_and_the_next_endpoint_verifies() {
    let first: LightClientBlockView =
        serde_json::from_value(recorded("main_0.json")).expect("view");
    let genuine = recorded("main_1.json");
    let target = genuine["inner_lite"]["height"].as_u64().expect("height");
    let mut forged = genuine.clone();
    forged["inner_lite"]["prev_state_root"] = json!(sha256(b"forged state").to_string());
    let serving = |block: Value| {
        Arc::new(move |method: &str, _: &Value| match method {
            "next_light_client_block" => Reply::Result(block.clone()),
            other => Reply::Error(json!({"code": -32601, "message": format!("no method {other}")})),
        })
    };
    let (liar, honest) = (serve(serving(forged)).await, serve(serving(genuine)).await);
    let db = sled::Config::new().temporary(true).open().expect("sled");
    let store = StateStore::from_db(db).expect("store");
    let start = first.inner_lite.height;
    store
        .save_trusted_near(
            "near-mainnet",
            &StoredNearHead {
                trusted: TrustedNear::new(lite(&first), Vec::new(), first.next_bps.clone()),
                block: Some(first.clone()),
            },
        )
        .expect("save");
    let rpc = NearRpc::pooled(
        "near-mainnet",
        &[liar.url.clone(), honest.url.clone()],
        crate::chain::near::bounded::MAX_RESPONSE_BYTES,
    );
    let mut near = NearLight::new(
        rpc.clone(),
        store.clone(),
        Duration::from_millis(300),
        Duration::from_millis(10),
        false,
    )
    .expect("light");
    // The first endpoint is current and serves the forged block: refused, and the endpoint is quarantined.
    let err = near
        .prepare_update("12-near-0", start, None, target, "cosmos1relayer")
        .await
        .expect_err("forged block");
    assert_eq!(err.kind, ErrorKind::Unverified, "{}", err.message);
    let view = rpc.pool().view();
    assert_eq!(
        view[0].state,
        crate::rpc_pool::Health::Quarantined,
        "{view:?}"
    );
    assert!(view[1].current, "{view:?}");
    assert_eq!(near.head_height(), Some(start));
    // The next request reads from the other endpoint and verifies.
    let update = near
        .prepare_update("12-near-0", target, None, target, "cosmos1relayer")
        .await
        .expect("verified through the second endpoint");
    assert_eq!(update.target, target);
    assert_eq!(near.head_height(), Some(target));
    assert!(!honest.requests.lock().expect("lock").is_empty());
}
