//! The NEAR endpoint and head against a scripted node: proofs checked against the trusted head, lying nodes
//! caught.

use super::*;
use crate::chain::endpoint::path;
use crate::chain::near::head::{lite, NearHead};
use crate::chain::near::light_client::sha256;
use crate::chain::near::test_rpc::{block, serve, Reply, TestRpc};
use crate::chain::near::trie::test_support::build;
use crate::chain::near::trie::{contract_data_key, nibbles};
use base64::Engine;
use near_primitives::views::{
    BlockHeaderInnerLiteView, LightClientBlockLiteView, LightClientBlockView,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

const IBC: &str = "ibc.test.near";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The contract state after block 41: one packet commitment and a client state.
fn state(commitment: &[u8]) -> (CryptoHash, Vec<Vec<u8>>) {
    let mut entries = vec![
        (
            nibbles(&contract_data_key(
                IBC,
                path::commitment("transfer", "channel-0", 1).as_bytes(),
            )),
            commitment.to_vec(),
        ),
        (
            nibbles(&contract_data_key(
                IBC,
                path::client_state("07-tendermint-0").as_bytes(),
            )),
            b"client".to_vec(),
        ),
    ];
    entries.sort();
    let mut store = HashMap::new();
    let root = build(&entries, &mut store);
    (root, store.into_values().collect())
}

/// A node at head 42 (parent 41) whose view_state answers from `served` while its block 42 commits to `real`.
async fn node(
    real: CryptoHash,
    served: (CryptoHash, Vec<Vec<u8>>),
    served_value: Vec<u8>,
) -> TestRpc {
    let (_, nodes) = served;
    serve(Arc::new(move |method: &str, params: &Value| match method {
        "block" => Reply::Result(block(42, 41, sha256(b"head"), real)),
        "query" if params["request_type"] == "view_state" => {
            assert_eq!(params["block_id"], 41);
            assert_eq!(params["include_proof"], true);
            let key = base64::engine::general_purpose::STANDARD
                .decode(params["prefix_base64"].as_str().expect("prefix"))
                .expect("b64");
            Reply::Result(json!({
                "values": [{"key": b64(&key), "value": b64(&served_value)}],
                "proof": nodes.iter().map(|n| b64(n)).collect::<Vec<_>>(),
                "block_height": 41, "block_hash": sha256(b"41").to_string(),
            }))
        }
        "query" => Reply::Result(json!({
            "result": b"[3,1,2]".to_vec(), "logs": [],
            "block_height": 42, "block_hash": sha256(b"head").to_string(),
        })),
        other => Reply::Error(json!({"code": -32601, "message": format!("no method {other}")})),
    }))
    .await
}

fn trusted(state_root: CryptoHash) -> TrustedNear {
    let head = LightClientBlockLiteView {
        prev_block_hash: sha256(b"41"),
        inner_rest_hash: sha256(b"rest"),
        inner_lite: BlockHeaderInnerLiteView {
            height: 42,
            epoch_id: CryptoHash::default(),
            next_epoch_id: sha256(b"next"),
            prev_state_root: sha256(&state_root.0),
            outcome_root: CryptoHash::default(),
            timestamp: 1,
            timestamp_nanosec: 1,
            next_bp_hash: CryptoHash::default(),
            block_merkle_root: CryptoHash::default(),
        },
    };
    TrustedNear::new(head, vec![], None)
}

fn endpoint(url: &str) -> NearEndpoint {
    NearEndpoint::new(NearRpc::new("near-0", url), IBC.parse().expect("id"))
}

#[tokio::test]
async fn a_commitment_is_read_with_a_proof_checked_against_the_trusted_head() {
    let commitment = [9u8; 32];
    let (root, nodes) = state(&commitment);
    let rpc = node(root, (root, nodes), commitment.to_vec()).await;
    let path = path::commitment("transfer", "channel-0", 1);
    let proven = endpoint(&rpc.url)
        .query_verified(&path, &trusted(root))
        .await
        .expect("verified");
    assert_eq!(proven.value, commitment);
    assert_eq!(proven.height, 41);
    // The proof travels with the value and checks again wherever it is carried.
    let proof =
        NearStateProof::from_bytes(proven.proof.as_deref().expect("proof")).expect("decodes");
    verify_state_proof(
        &sha256(&root.0),
        IBC,
        path.as_bytes(),
        Some(&commitment),
        &proof,
    )
    .expect("checks");
}

#[tokio::test]
async fn a_node_serving_another_state_is_caught() {
    let (root, _) = state(&[9u8; 32]);
    let forged = state(&[8u8; 32]);
    // The node answers with a consistent-looking forged state, but its block (and the trusted head) commit to
    // the real root.
    let rpc = node(root, forged, vec![8u8; 32]).await;
    let path = path::commitment("transfer", "channel-0", 1);
    let err = endpoint(&rpc.url)
        .query_verified(&path, &trusted(root))
        .await
        .expect_err("forged");
    assert!(err.to_string().contains("no chunk state root"), "{err}");
    // A node whose block also lies is refused by the head's own state root.
    let (forged_root, forged_nodes) = state(&[8u8; 32]);
    let rpc = node(forged_root, (forged_root, forged_nodes), vec![8u8; 32]).await;
    let err = endpoint(&rpc.url)
        .query_verified(&path, &trusted(root))
        .await
        .expect_err("forged block");
    assert!(
        matches!(
            err,
            NearVerifyError::Proof(StateProofError::ShardRoot { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_recorded_outcome_proof_is_checked_against_the_head() {
    let proof: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/near-light-client/old.json"),
        )
        .expect("fixture"),
    )
    .expect("json");
    let id: near_primitives::types::TransactionOrReceiptId = serde_json::from_value(json!({
        "type": "transaction",
        "transaction_hash": proof["outcome_proof"]["id"],
        "sender_id": "relayer.near",
    }))
    .expect("id");
    let served = proof.clone();
    let rpc = serve(Arc::new(move |method: &str, params: &Value| {
        assert_eq!(method, "light_client_proof");
        assert_eq!(params["type"], "transaction");
        Reply::Result(served.clone())
    }))
    .await;
    // The mainnet head the recorded proof was asked against, as far as the proof needs it.
    let mut head = trusted(CryptoHash::default());
    head.head.inner_lite.block_merkle_root = "WWrLWbWHwSmjtTn5oBZPYgRCuCYn6fkYVa4yhPWNK4L"
        .parse()
        .expect("hash");
    let near = NearHead::new(NearRpc::new("near-mainnet", &rpc.url), head.clone());
    let outcome = near.verify_outcome(id.clone()).await.expect("proven");
    assert_eq!(
        outcome.id.to_string(),
        proof["outcome_proof"]["id"].as_str().expect("id")
    );
    // Against another head the same answer is refused.
    head.head.inner_lite.block_merkle_root = sha256(b"another head");
    let near = NearHead::new(NearRpc::new("near-mainnet", &rpc.url), head);
    assert!(matches!(
        near.verify_outcome(id).await,
        Err(NearVerifyError::Outcome(
            ExecutionProofError::BlockRoot { .. }
        ))
    ));
}

fn recorded_block(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/near-light-client")
        .join(name);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    doc["body"].clone()
}

#[tokio::test]
async fn a_lying_node_cannot_move_the_head() {
    let first: LightClientBlockView =
        serde_json::from_value(recorded_block("main_0.json")).expect("view");
    let genuine = recorded_block("main_1.json");
    let mut forged = genuine.clone();
    // Another state root in the header: the producers' signatures no longer match it.
    forged["inner_lite"]["prev_state_root"] = json!(sha256(b"forged state").to_string());
    let lie = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let lying = lie.clone();
    let rpc = serve(Arc::new(move |method: &str, _: &Value| {
        assert_eq!(method, "next_light_client_block");
        if lying.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::Result(forged.clone())
        } else {
            Reply::Result(genuine.clone())
        }
    }))
    .await;
    let trusted = TrustedNear::new(lite(&first), Vec::new(), first.next_bps.clone());
    let mut head = NearHead::new(NearRpc::new("near-mainnet", &rpc.url), trusted);
    let before = head.trusted().head.inner_lite.height;
    assert!(matches!(
        head.advance().await,
        Err(NearVerifyError::LightClient(
            LightClientError::InvalidSignature { .. }
        ))
    ));
    assert_eq!(
        head.trusted().head.inner_lite.height,
        before,
        "the head did not move"
    );
    lie.store(false, std::sync::atomic::Ordering::SeqCst);
    let step = head.advance().await.expect("verifies").expect("a step");
    assert!(step.epoch_changed);
    assert!(head.trusted().head.inner_lite.height > before);
}

#[tokio::test]
async fn listings_and_raw_reads_go_through_the_contract() {
    let (root, nodes) = state(&[9u8; 32]);
    let rpc = node(root, (root, nodes), vec![9u8; 32]).await;
    let ep = endpoint(&rpc.url);
    assert_eq!(
        ep.packet_commitments("transfer", "channel-0")
            .await
            .expect("list"),
        vec![3, 1, 2]
    );
    assert_eq!(
        ep.unreceived_acks("transfer", "channel-0", &[1, 2, 4])
            .await
            .expect("acks"),
        vec![1, 2]
    );
    assert_eq!(
        ep.client_state("07-tendermint-0").await.expect("state"),
        vec![3, 1, 2]
    );
    let proven = ep
        .query_ibc(
            &path::commitment("transfer", "channel-0", 1),
            QueryHeight::At(41),
            true,
        )
        .await
        .expect("read");
    assert_eq!(proven.value, vec![9u8; 32]);
    let proof =
        NearStateProof::from_bytes(proven.proof.as_deref().expect("proof")).expect("decodes");
    assert_eq!(proof.state_root, root);
    let requests = rpc.requests.lock().expect("lock");
    let views: Vec<&str> = requests
        .iter()
        .filter_map(|(_, p)| p["method_name"].as_str())
        .collect();
    assert_eq!(
        views,
        vec![
            "get_packet_commitment_sequences",
            "get_packet_commitment_sequences",
            "get_client_state"
        ]
    );
    let args = requests
        .iter()
        .find(|(_, p)| p["method_name"] == "get_client_state")
        .map(|(_, p)| p["args_base64"].as_str().expect("args").to_owned())
        .expect("call");
    let args: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(args)
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(args, json!({"client_id": "07-tendermint-0"}));
}
