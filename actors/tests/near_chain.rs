//! Issue #8's end-to-end check through relayd's own NEAR modules against the NEAR devnet: relayd creates a
//! Tendermint client of a Cosmos devnet chain on NEAR (`deliver` signed with a near-cli key file), updates it with
//! headers its Cosmos light client verified, reads the client's consensus state from NEAR with a `view_state`
//! proof checked against its NEAR light-client head, and with that consensus root verifies a packet commitment
//! proof from the Cosmos chain — the check the NEAR-hosted client itself makes on `MsgRecvPacket`.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState};
use near_primitives::types::TransactionOrReceiptId;
use prost::Message;
use relayd_actors::chain::cosmos::client::{create_client_msg, update_client_msgs, ClientParams};
use relayd_actors::chain::cosmos::endpoint::CosmosEndpoint;
use relayd_actors::chain::cosmos::light_client::{headers_to, TrustOptions};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::{path, ChainEndpoint, QueryHeight};
use relayd_actors::chain::near::credentials::load_signer;
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::chain::near::head::NearHead;
use relayd_actors::chain::near::monitor::{NearEventMonitor, NearMonitorConfig};
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::state_proof::{verify_state_proof, NearStateProof};
use relayd_actors::chain::near::tx::{NearTxConfig, NearTxSubmitter};
use relayd_actors::chain::proof::{verify_chained, ProofTarget};
use relayd_actors::chain_monitor::StopReason;
use relayd_messages::IbcEvent;
use support::chain::{Chain, Wallet};
use support::handshake::connect_transfer;
use support::light::unbonding_period;
use support::packet::{sent_packet, transfer};
use tendermint_light_client_verifier::types::TrustThreshold;

const BLOCK_TIME: Duration = Duration::from_millis(200);

/// The client id in the `create_client` event of the blocks a transaction's receipts ran in.
async fn created_client(
    endpoint: &NearEndpoint,
    rpc: &NearRpc,
    blocks: &[near_primitives::hash::CryptoHash],
) -> String {
    for hash in blocks {
        let height = rpc.block_by_hash(*hash).await.unwrap().header.height;
        for event in endpoint.ibc_events_at(height).await.unwrap() {
            if let IbcEvent::CreateClient { client_id, .. } = event.event {
                return client_id.as_str().to_owned();
            }
        }
    }
    panic!("no create_client event in blocks {blocks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayd_keeps_a_tendermint_client_on_near_and_verifies_a_commitment_through_it() {
    // Cosmos: a transfer channel between ibc-0 and ibc-1, and a packet sent on ibc-0.
    let chains = devnet::start_chains(2, &devnet::ChainOptions::local("ibc", BLOCK_TIME))
        .await
        .unwrap();
    let (a, _b) = connect_transfer(&chains).await;
    let user1 = Wallet::genesis(&chains[0], "user1");
    let user2 = Wallet::genesis(&chains[1], "user2");
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 600_000_000_000;
    let sent = transfer(&a, &user1, &user2.address, 4242, None, timeout).await;
    let packet = sent_packet(&sent);

    // NEAR, with near-cli key files written by the devnet.
    let home = tempfile::tempdir().unwrap();
    let mut options = devnet::near::NearOptions::local(BLOCK_TIME);
    options.home = Some(home.path().to_path_buf());
    let near = devnet::near::start(options).await.unwrap();
    let relayer = near.genesis.relayer.account_id.clone();
    let contract = near.genesis.ibc.account_id.clone();
    let key_file = home.path().join("keys").join(format!("{relayer}.json"));

    // relayd's NEAR side.
    let rpc = NearRpc::new(near.chain_id(), &near.rpc_url());
    let signer = load_signer(&key_file, Some(relayer.as_str())).unwrap();
    let submitter = NearTxSubmitter::new(
        rpc.clone(),
        signer,
        contract.clone(),
        NearTxConfig::default(),
    );
    let endpoint = NearEndpoint::new(rpc.clone(), contract.clone());
    near.wait_for_height(3).await;
    let mut head = NearHead::bootstrap(rpc.clone()).await.unwrap();

    // relayd's Cosmos side: a root of trust on ibc-0 before the packet, and the chain's parameters.
    let src = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let root_height = sent.height - 1;
    let root = src.fetch_light_block(root_height).await.unwrap();
    let unbonding = unbonding_period(&Chain::connect(&chains[0])).await;
    let specs = vec![support::proof::spec(), support::proof::spec()];
    let params = ClientParams {
        trust_level: (1, 3),
        trusting_period: unbonding * 2 / 3,
        unbonding_period: unbonding,
        max_clock_drift: Duration::from_secs(20),
        proof_specs: specs.clone(),
    };

    // 1. Create the client on NEAR.
    let created = submitter
        .submit(&[create_client_msg(&root, &params, relayer.as_str())])
        .await
        .unwrap();
    let client_id = created_client(&endpoint, &rpc, &created.receipt_blocks).await;
    let stored = endpoint.client_state(&client_id).await.unwrap();
    let stored =
        ClientState::decode(Any::decode(stored.as_slice()).unwrap().value.as_slice()).unwrap();
    assert_eq!(stored.chain_id, "ibc-0");
    assert_eq!(stored.latest_height.unwrap().revision_height, root_height);

    // 2. Update it past the packet's block with headers relayd's Cosmos light client verified.
    let target = sent.height + 1;
    while src.status().await.unwrap().1 < target + 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trust = TrustOptions {
        trust_threshold: TrustThreshold::ONE_THIRD,
        trusting_period: params.trusting_period,
        clock_drift: params.max_clock_drift,
    };
    let headers = headers_to(
        "ibc-0",
        &src,
        &root,
        target,
        &trust,
        tendermint::Time::now(),
    )
    .await
    .unwrap();
    let updated = submitter
        .submit(&update_client_msgs(
            &client_id,
            &root,
            &headers,
            relayer.as_str(),
        ))
        .await
        .unwrap();
    let stored = endpoint.client_state(&client_id).await.unwrap();
    let stored =
        ClientState::decode(Any::decode(stored.as_slice()).unwrap().value.as_slice()).unwrap();
    assert_eq!(stored.latest_height.unwrap().revision_height, target);

    // The same events reach relayd as a stream of final heights, in order, as the Cosmos monitor delivers them.
    let (sink, mut stream) = tokio::sync::mpsc::channel(16);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor = NearEventMonitor::new(
        endpoint.clone(),
        NearMonitorConfig {
            poll_interval: BLOCK_TIME,
            ..NearMonitorConfig::default()
        },
    );
    let status = monitor.status();
    let running = tokio::spawn(monitor.run(1, sink, async {
        let _ = stopped.await;
    }));
    let mut last = 0;
    let mut kinds = Vec::new();
    while !kinds.contains(&"update") {
        let block = stream.recv().await.unwrap();
        assert!(block.height > last, "heights in order");
        last = block.height;
        for event in block.events {
            match event.event {
                IbcEvent::CreateClient { client_id: id, .. } if id.as_str() == client_id => {
                    kinds.push("create")
                }
                IbcEvent::UpdateClient { client_id: id, .. } if id.as_str() == client_id => {
                    kinds.push("update")
                }
                _ => {}
            }
        }
    }
    assert_eq!(kinds, vec!["create", "update"]);
    let _ = stop.send(());
    assert_eq!(running.await.unwrap(), StopReason::Shutdown);
    // The monitor may have delivered more heights while the test read; its status names the last one delivered.
    while let Ok(block) = stream.try_recv() {
        assert!(block.height > last, "heights in order");
        last = block.height;
    }
    assert_eq!(status.borrow().last_height, Some(last));

    // 3. The consensus state NEAR now holds for ibc-0 at `target`, read with a proof checked against relayd's
    // NEAR light-client head (advanced past the update by verified light-client blocks only).
    let mut executed = 0;
    for hash in &updated.receipt_blocks {
        executed = executed.max(rpc.block_by_hash(*hash).await.unwrap().header.height);
    }
    // The head was trusted with its next epoch's producers only: it moves from the next epoch on, across epoch
    // changes (the devnet rotates its producers every epoch).
    let first = head.trusted().head.inner_lite.height;
    let mut epoch_changes = 0;
    while head.trusted().head.inner_lite.height <= executed {
        match head.advance().await.unwrap() {
            Some(step) => epoch_changes += usize::from(step.epoch_changed),
            None => tokio::time::sleep(BLOCK_TIME).await,
        }
    }
    assert!(head.trusted().head.inner_lite.height > first);
    assert!(
        epoch_changes >= 1,
        "the bootstrapped head moves by an epoch change first"
    );
    // The update's execution, proven by the node's `light_client_proof` against relayd's head and checked by
    // relayd's execution-proof code. The outcome's root is in the block after the one it ran in, and that block
    // must be below the head (the head's block merkle root covers the blocks before it).
    while head.trusted().head.inner_lite.height <= executed + 1 {
        if head.advance().await.unwrap().is_none() {
            tokio::time::sleep(BLOCK_TIME).await;
        }
    }
    let outcome = head
        .verify_outcome(TransactionOrReceiptId::Transaction {
            transaction_hash: updated.tx_hash,
            sender_id: relayer.clone(),
        })
        .await
        .unwrap();
    assert_eq!(outcome.id, updated.tx_hash);
    assert!(outcome.outcome.gas_burnt.as_gas() > 0);
    let unknown = head
        .verify_outcome(TransactionOrReceiptId::Transaction {
            transaction_hash: near_primitives::hash::CryptoHash([7; 32]),
            sender_id: relayer.clone(),
        })
        .await;
    assert!(unknown.is_err(), "an unknown transaction has no proof");

    let consensus_path = path::consensus_state(&client_id, 0, target);
    let proven = endpoint
        .query_verified(&consensus_path, head.trusted())
        .await
        .unwrap();
    let consensus = ConsensusState::decode(
        Any::decode(proven.value.as_slice())
            .unwrap()
            .value
            .as_slice(),
    )
    .unwrap();
    let app_hash = consensus.root.unwrap().hash;
    assert_eq!(
        app_hash,
        headers
            .last()
            .unwrap()
            .signed_header
            .header
            .app_hash
            .as_bytes(),
        "NEAR's client holds the app hash relayd verified"
    );

    // 4. The packet commitment on ibc-0 at `target - 1`, proven under that app hash.
    let cosmos = CosmosEndpoint::new(src.clone(), "ibc");
    let commitment = path::commitment(&packet.source_port, &packet.source_channel, packet.sequence);
    let proven = cosmos
        .query_ibc(&commitment, QueryHeight::At(target - 1), true)
        .await
        .unwrap();
    assert!(!proven.value.is_empty(), "packet committed");
    let proof = MerkleProof::decode(proven.proof.clone().unwrap().as_slice()).unwrap();
    let at = |height| ProofTarget {
        chain: "ibc-0",
        path: &commitment,
        prefix: b"ibc",
        height,
    };
    verify_chained(
        at(target - 1),
        &proof.proofs,
        &specs,
        &app_hash,
        Some(&proven.value),
    )
    .unwrap();
    let mut forged = proven.value.clone();
    forged[0] ^= 1;
    assert!(verify_chained(
        at(target - 1),
        &proof.proofs,
        &specs,
        &app_hash,
        Some(&forged)
    )
    .is_err());

    // The same read through the chain-neutral trait: the state after the head's parent, with a proof that checks
    // against the head.
    let parent = rpc
        .block_by_hash(head.trusted().head_hash())
        .await
        .unwrap()
        .header
        .prev_height
        .unwrap();
    let client_path = path::client_state(&client_id);
    let via_trait = endpoint
        .query_ibc(&client_path, QueryHeight::At(parent), true)
        .await
        .unwrap();
    let proof = NearStateProof::from_bytes(via_trait.proof.as_deref().unwrap()).unwrap();
    verify_state_proof(
        &head.trusted().head.inner_lite.prev_state_root,
        contract.as_str(),
        client_path.as_bytes(),
        Some(&via_trait.value),
        &proof,
    )
    .unwrap();
    assert!(endpoint.latest_height().await.unwrap() >= head.trusted().head.inner_lite.height);
    assert_eq!(
        endpoint
            .packet_commitments("transfer", "channel-0")
            .await
            .unwrap(),
        Vec::<u64>::new()
    );

    // A consensus height NEAR's client never stored is proven absent by the same head.
    let absent = endpoint
        .query_verified(
            &path::consensus_state(&client_id, 0, target + 1000),
            head.trusted(),
        )
        .await
        .unwrap();
    assert!(absent.value.is_empty());

    near.shutdown().await;
    for chain in chains {
        chain.shutdown().await;
    }
}
