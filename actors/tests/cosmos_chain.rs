//! The Cosmos chain layer against a running devnet over real RPC: batched, signed transactions with sequence
//! recovery and failure classification, and IBC store queries whose proofs verify against the app hash of a
//! light-client-verified header.

use std::time::Duration;

use cosmrs::proto::cosmos::bank::v1beta1::MsgSend;
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use prost::Message;
use relayd_actors::chain::cosmos::light_client::{headers_to, TrustOptions};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::cosmos::tx::{TxConfig, TxError, TxSubmitter};
use relayd_actors::chain::endpoint::QueryHeight;
use relayd_actors::chain::proof::{verify_chained, ProofTarget};
use tendermint_light_client_verifier::types::TrustThreshold;

fn send(from: &str, to: &str, amount: u64) -> Any {
    Any {
        type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
        value: MsgSend {
            from_address: from.into(),
            to_address: to.into(),
            amount: vec![cosmrs::proto::cosmos::base::v1beta1::Coin {
                denom: "stake".into(),
                amount: amount.to_string(),
            }],
        }
        .encode_to_vec(),
    }
}

fn config(max_msg_num: usize) -> TxConfig {
    TxConfig {
        chain_id: "ibc-0".into(),
        default_gas: 300_000,
        gas_adjustment: 1.3,
        gas_price: 0.001,
        fee_denom: "stake".into(),
        max_gas: 2_000_000,
        max_msg_num,
        max_tx_size: 1 << 20,
        confirm_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
        max_in_flight: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_batch_recover_sequences_and_classify_failures() {
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(100),
    ))
    .await
    .unwrap();
    let rpc = CosmosRpc::connect("ibc-0", &chain.rpc_url()).await.unwrap();
    let user1 = chain.genesis.account("user1").unwrap().clone();
    let user2 = chain.genesis.account("user2").unwrap().clone();
    let before = chain.node.app().unwrap().balance(&user2.address, "stake");

    let mut submitter = TxSubmitter::new(
        rpc.clone(),
        config(2),
        user1.signing_key(),
        user1.address.clone(),
    );
    let msgs: Vec<Any> = (0..5)
        .map(|_| send(&user1.address, &user2.address, 100))
        .collect();
    let outcomes = submitter.submit(msgs).await.unwrap();
    assert_eq!(
        outcomes.iter().map(|o| o.messages).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    assert!(outcomes.iter().all(|o| o.gas_used > 0 && o.height > 0));
    assert_eq!(
        chain.node.app().unwrap().balance(&user2.address, "stake"),
        before + 500
    );

    // Another process signs with the same key: the cached sequence goes stale and must be recovered.
    let mut other = TxSubmitter::new(
        rpc.clone(),
        config(2),
        user1.signing_key(),
        user1.address.clone(),
    );
    other
        .submit(vec![send(&user1.address, &user2.address, 1)])
        .await
        .unwrap();
    let again = submitter
        .submit(vec![send(&user1.address, &user2.address, 7)])
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        chain.node.app().unwrap().balance(&user2.address, "stake"),
        before + 508
    );

    // A message signed for someone else's funds is refused for good, and reported as such.
    let (done, err) = submitter
        .submit(vec![send(&user2.address, &user1.address, 1)])
        .await
        .unwrap_err();
    assert!(done.is_empty());
    assert!(!err.is_retryable(), "{err}");
    assert!(matches!(err, TxError::Rejected { .. }), "{err}");

    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queried_proof_verifies_against_a_verified_header_and_a_forged_one_does_not() {
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(100),
    ))
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(30), chain.wait_for_height(3))
        .await
        .unwrap();
    let rpc = CosmosRpc::connect("ibc-0", &chain.rpc_url()).await.unwrap();

    let path = "nextClientSequence";
    let proven = rpc
        .query_ibc("ibc", path, QueryHeight::At(3), true)
        .await
        .unwrap();
    assert_eq!(proven.height, 3);
    assert!(!proven.value.is_empty());
    let proof = MerkleProof::decode(proven.proof.clone().unwrap().as_slice()).unwrap();

    tokio::time::timeout(Duration::from_secs(30), chain.wait_for_height(4))
        .await
        .unwrap();
    let trusted = rpc.fetch_light_block(1).await.unwrap();
    let trust = TrustOptions {
        trust_threshold: TrustThreshold::TWO_THIRDS,
        trusting_period: Duration::from_secs(14 * 24 * 3600),
        clock_drift: Duration::from_secs(5),
    };
    let headers = headers_to("ibc-0", &rpc, &trusted, 4, &trust, tendermint::Time::now())
        .await
        .unwrap();
    let app_hash = headers
        .last()
        .unwrap()
        .signed_header
        .header
        .app_hash
        .as_bytes()
        .to_vec();

    let target = ProofTarget {
        chain: "ibc-0",
        path,
        prefix: b"ibc",
        height: 3,
    };
    let specs = devnet::proof_specs();
    verify_chained(
        target,
        &proof.proofs,
        &specs,
        &app_hash,
        Some(&proven.value),
    )
    .unwrap();

    // A different value, or another root, must not pass.
    assert!(verify_chained(target, &proof.proofs, &specs, &app_hash, Some(b"\"99\"")).is_err());
    let mut forged_root = app_hash.clone();
    forged_root[0] ^= 1;
    let err = verify_chained(
        target,
        &proof.proofs,
        &specs,
        &forged_root,
        Some(&proven.value),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("proof of nextClientSequence on ibc-0 at height 3 rejected"),
        "{err}"
    );

    // Listings work through the gRPC-over-ABCI paths.
    assert!(rpc.client_states().await.unwrap().is_empty());
    assert!(rpc.connections().await.unwrap().is_empty());
    assert!(rpc.channels().await.unwrap().is_empty());

    chain.shutdown().await;
}
