//! Issue #14's done-when: the Cosmos devnet's ibc-rs judges what relayd sends about NEAR. A NEAR client is
//! created on a Cosmos devnet chain from a NEAR devnet light-client block, updated with headers relayd builds
//! (`chain::near::header`) across an epoch change of the NEAR devnet, and the stored client verifies a membership
//! and a non-membership proof relayd builds (`chain::near::state_proof`) of IBC state on NEAR. A tampered header,
//! a forged approval and a proof against the wrong root are refused with the client unchanged. Also: the
//! recorded mainnet blocks get the same verdicts from the devnet's NEAR client as from relayd's own.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use devnet::near_client::{
    verify_block, LightClientBlock, NearClientState, NearConsensusState, NearHeader,
};
use ibc::core::client::context::client_state::ClientStateCommon;
use ibc::core::commitment_types::commitment::{CommitmentPrefix, CommitmentProofBytes};
use ibc::core::host::types::identifiers::ClientId;
use ibc::core::host::types::path::{ClientStatePath, Path};
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::client::v1::MsgCreateClient;
use near_primitives::block_header::{Approval, ApprovalInner};
use near_primitives::hash::CryptoHash;
use near_primitives::merkle::combine_hash;
use near_primitives::views::LightClientBlockView;
use prost::Message;
use relayd_actors::chain::cosmos::client::{create_client_msg, ClientParams};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::near::credentials::load_signer;
use relayd_actors::chain::near::factory::commitment_prefix;
use relayd_actors::chain::near::header::{near_header, update_client_msg};
use relayd_actors::chain::near::light_client::{LightClientError, TrustedNear};
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::state_proof::build_state_proof;
use relayd_actors::chain::near::tx::{NearTxConfig, NearTxSubmitter};
use support::chain::{Chain, Gas, Wallet};
use support::light::unbonding_period;

const BLOCK_TIME: Duration = Duration::from_millis(200);
const CLIENT: &str = "12-near-0";

async fn chunk_roots(rpc: &NearRpc, height: u64) -> Vec<CryptoHash> {
    let block = rpc.block(Some(height)).await.unwrap();
    block.chunks.iter().map(|c| c.prev_state_root).collect()
}

async fn stored(cosmos: &Chain, key: String) -> Vec<u8> {
    cosmos
        .query("store/ibc/key", key.into_bytes(), None, false)
        .await
        .unwrap()
        .value
}

async fn client_state(cosmos: &Chain) -> Vec<u8> {
    stored(cosmos, format!("clients/{CLIENT}/clientState")).await
}

async fn consensus_state(cosmos: &Chain, height: u64) -> NearConsensusState {
    let bytes = stored(
        cosmos,
        format!("clients/{CLIENT}/consensusStates/0-{height}"),
    )
    .await;
    NearConsensusState::try_from(Any::decode(bytes.as_slice()).unwrap()).unwrap()
}

/// The next light-client block after `last`, waiting for the NEAR devnet to produce it.
async fn next_block(rpc: &NearRpc, last: CryptoHash) -> LightClientBlockView {
    loop {
        if let Some(b) = rpc.next_light_client_block(last).await.unwrap() {
            return b;
        }
        tokio::time::sleep(BLOCK_TIME).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cosmos_devnet_judges_relayds_near_headers_and_proofs() {
    let chains = devnet::start_chains(1, &devnet::ChainOptions::local("ibc", BLOCK_TIME))
        .await
        .unwrap();
    let cosmos = Chain::connect(&chains[0]);
    let wallet = Wallet::genesis(&chains[0], "relayer");

    // NEAR with short epochs.
    let home = tempfile::tempdir().unwrap();
    let mut options = devnet::near::NearOptions::local(BLOCK_TIME);
    options.genesis.epoch_length = 5;
    options.home = Some(home.path().to_path_buf());
    let near = devnet::near::start(options).await.unwrap();
    let relayer = near.genesis.relayer.account_id.clone();
    let contract = near.genesis.ibc.account_id.clone();
    let rpc = NearRpc::new(near.chain_id(), &near.rpc_url());
    near.wait_for_height(3).await;

    // IBC state on NEAR to prove: a Tendermint client of the Cosmos chain, created through the contract.
    let key_file = home.path().join("keys").join(format!("{relayer}.json"));
    let signer = load_signer(&key_file, Some(relayer.as_str())).unwrap();
    let submitter = NearTxSubmitter::new(
        rpc.clone(),
        signer,
        contract.clone(),
        NearTxConfig::default(),
    );
    let src = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let root = src.fetch_light_block(cosmos.height().await).await.unwrap();
    let unbonding = unbonding_period(&cosmos).await;
    let params = ClientParams {
        trust_level: (1, 3),
        trusting_period: unbonding * 2 / 3,
        unbonding_period: unbonding,
        max_clock_drift: Duration::from_secs(20),
        proof_specs: vec![support::proof::spec(), support::proof::spec()],
    };
    submitter
        .submit(&[create_client_msg(&root, &params, relayer.as_str())])
        .await
        .unwrap();

    // The trusted start: a light-client block of the NEAR devnet and its epoch's producers.
    let head = near.latest_height();
    let (start, current_bps) = {
        let chain = near.chain.lock().unwrap();
        let view = chain.light_client_block_for(head).unwrap();
        let bps = chain.block_producers(chain.epoch_of(view.inner_lite.height));
        (view, bps)
    };
    let start_block = LightClientBlock::from_view(&start);
    let start_height = start.inner_lite.height;
    let cs = NearConsensusState::new(
        NearHeader {
            block: start_block.clone(),
            chunk_roots: chunk_roots(&rpc, start_height).await,
        },
        current_bps,
        start_block.next_bps.clone(),
    );
    let client = NearClientState::new(&cs, Duration::from_secs(3600));
    let create = MsgCreateClient {
        client_state: Some(client.into()),
        consensus_state: Some(cs.into()),
        signer: wallet.address.clone(),
    };
    let created = cosmos
        .submit(
            &wallet,
            &[Any {
                type_url: "/ibc.core.client.v1.MsgCreateClient".to_owned(),
                value: create.encode_to_vec(),
            }],
        )
        .await;
    assert_eq!(
        created.attr("create_client", "client_id").as_deref(),
        Some(CLIENT)
    );

    // Updates with relayd's headers across at least one epoch change.
    let mut last = start_block.hash();
    let mut epoch = start.inner_lite.epoch_id;
    let mut epoch_changes = 0;
    let mut latest = start_height;
    while epoch_changes < 1 || latest < start_height + 3 {
        let next = next_block(&rpc, last).await;
        let header = near_header(&next, &chunk_roots(&rpc, next.inner_lite.height).await).unwrap();
        cosmos
            .submit(
                &wallet,
                &[update_client_msg(CLIENT, header, &wallet.address)],
            )
            .await;
        epoch_changes += usize::from(next.inner_lite.epoch_id != epoch);
        epoch = next.inner_lite.epoch_id;
        latest = next.inner_lite.height;
        last = LightClientBlock::from_view(&next).hash();
    }
    let client_bytes = client_state(&cosmos).await;
    let client = NearClientState::try_from(Any::decode(client_bytes.as_slice()).unwrap()).unwrap();
    assert_eq!(client.latest_height, latest);
    assert!(epoch_changes >= 1);

    // Proofs of NEAR state after block `latest - 1`, checked by the stored client against the consensus state of
    // `latest` (whose prev_state_root commits to it).
    let prefix = CommitmentPrefix::from_bytes(commitment_prefix(&contract));
    let cs = consensus_state(&cosmos, latest).await;
    let roots = chunk_roots(&rpc, latest).await;
    let prove = |path: String| {
        let rpc = rpc.clone();
        let contract = contract.clone();
        let roots = roots.clone();
        async move {
            let view = rpc
                .view_state(&contract, path.as_bytes(), latest - 1, true)
                .await
                .unwrap();
            let nodes = view.proof.iter().map(|n| n.to_vec()).collect();
            let value = view.values.first().map(|v| v.value.to_vec());
            let proof = build_state_proof(latest, &roots, nodes).unwrap();
            (
                value,
                CommitmentProofBytes::try_from(proof.to_bytes()).unwrap(),
            )
        }
    };
    let tm_client: ClientId = "07-tendermint-0".parse().unwrap();
    let path = Path::ClientState(ClientStatePath::new(tm_client.clone()));
    let (value, proof) = prove(path.to_string()).await;
    let value = value.expect("the Tendermint client is stored on NEAR");
    client
        .verify_membership(
            &prefix,
            &proof,
            cs.commitment_root(),
            path.clone(),
            value.clone(),
        )
        .expect("membership verifies");
    let mut other = value.clone();
    other[0] ^= 1;
    assert!(client
        .verify_membership(&prefix, &proof, cs.commitment_root(), path.clone(), other)
        .is_err());
    let absent = Path::ClientState(ClientStatePath::new("07-tendermint-9".parse().unwrap()));
    let (none, absence) = prove(absent.to_string()).await;
    assert!(none.is_none());
    client
        .verify_non_membership(&prefix, &absence, cs.commitment_root(), absent.clone())
        .expect("non-membership verifies");
    assert!(client
        .verify_non_membership(&prefix, &proof, cs.commitment_root(), path.clone())
        .is_err());
    // The same proof against another consensus root (the start's) is refused.
    let start_cs = consensus_state(&cosmos, start_height).await;
    assert!(client
        .verify_membership(&prefix, &proof, start_cs.commitment_root(), path, value)
        .is_err());

    // A tampered header and a forged approval are refused by the chain; the client does not change.
    let next = next_block(&rpc, last).await;
    let roots = chunk_roots(&rpc, next.inner_lite.height).await;
    let mut tampered = next.clone();
    tampered.inner_lite.timestamp_nanosec += 1;
    tampered.inner_lite.timestamp = tampered.inner_lite.timestamp_nanosec;
    let mut forged = next.clone();
    let index = forged
        .approvals_after_next
        .iter()
        .position(Option::is_some)
        .unwrap();
    let stranger = near_crypto::SecretKey::from_random(near_crypto::KeyType::ED25519);
    forged.approvals_after_next[index] = Some(Box::new(stranger.sign(b"an approval")));
    for (what, block) in [("tampered header", tampered), ("forged approval", forged)] {
        let header = near_header(&block, &roots).unwrap();
        let included = cosmos
            .broadcast(
                &wallet,
                &[update_client_msg(CLIENT, header, &wallet.address)],
                Gas::Fixed(2_000_000),
            )
            .await
            .unwrap();
        assert_ne!(included.code, 0, "{what} accepted");
        assert_eq!(
            client_state(&cosmos).await,
            client_bytes,
            "{what} changed the client"
        );
    }
    // The untouched block is accepted.
    let header = near_header(&next, &roots).unwrap();
    cosmos
        .submit(
            &wallet,
            &[update_client_msg(CLIENT, header, &wallet.address)],
        )
        .await;
    assert_ne!(client_state(&cosmos).await, client_bytes);

    // A second valid block at a stored height, signed by the NEAR devnet's producers (their keys are in its
    // genesis): the client freezes and takes no more updates.
    let mut fork = next.clone();
    fork.inner_rest_hash = near_primitives::hash::hash(b"another block at this height");
    let fork_hash = LightClientBlock::from_view(&fork).hash();
    let message = Approval::get_data_for_sig(
        &ApprovalInner::Endorsement(combine_hash(&fork.next_block_inner_hash, &fork_hash)),
        fork.inner_lite.height + 2,
    );
    let producers = {
        let chain = near.chain.lock().unwrap();
        chain.block_producers(chain.epoch_of(fork.inner_lite.height))
    };
    for (approval, producer) in fork.approvals_after_next.iter_mut().zip(&producers) {
        if approval.is_some() {
            let key = near
                .genesis
                .validators
                .iter()
                .find(|v| &v.account_id == producer.account_id())
                .unwrap()
                .secret_key
                .clone();
            *approval = Some(Box::new(key.sign(&message)));
        }
    }
    let header = near_header(&fork, &roots).unwrap();
    let frozen = cosmos
        .submit(
            &wallet,
            &[update_client_msg(CLIENT, header, &wallet.address)],
        )
        .await;
    assert!(frozen.attr("client_misbehaviour", "client_id").is_some());
    let bytes = client_state(&cosmos).await;
    let state = NearClientState::try_from(Any::decode(bytes.as_slice()).unwrap()).unwrap();
    assert_eq!(
        state.frozen_height.map(|h| h.revision_height()),
        Some(next.inner_lite.height)
    );
    let after = next_block(&rpc, LightClientBlock::from_view(&next).hash()).await;
    let header = near_header(&after, &chunk_roots(&rpc, after.inner_lite.height).await).unwrap();
    let refused = cosmos
        .broadcast(
            &wallet,
            &[update_client_msg(CLIENT, header, &wallet.address)],
            Gas::Fixed(2_000_000),
        )
        .await
        .unwrap();
    assert_ne!(refused.code, 0, "a frozen client was updated");

    // Expiry: a consensus state older than the trusting period is refused at creation, and a client whose
    // latest consensus state outlives its trusting period takes no update.
    let start_cs = NearConsensusState::new(
        start_cs.header().clone(),
        start_cs.current_bps().to_vec(),
        start_cs.next_bps().map(<[_]>::to_vec),
    );
    let create = |trusting: Duration| {
        let msg = MsgCreateClient {
            client_state: Some(NearClientState::new(&start_cs, trusting).into()),
            consensus_state: Some(start_cs.clone().into()),
            signer: wallet.address.clone(),
        };
        Any {
            type_url: "/ibc.core.client.v1.MsgCreateClient".to_owned(),
            value: msg.encode_to_vec(),
        }
    };
    let expired = cosmos
        .broadcast(
            &wallet,
            &[create(Duration::from_nanos(1))],
            Gas::Fixed(2_000_000),
        )
        .await
        .unwrap();
    assert_ne!(expired.code, 0, "an expired consensus state was accepted");
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .saturating_sub(Duration::from_nanos(start_cs.timestamp_ns()));
    let created = cosmos
        .submit(&wallet, &[create(age + Duration::from_secs(2))])
        .await;
    let second = created.attr("create_client", "client_id").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let next = next_block(&rpc, start_block.hash()).await;
    let header = near_header(&next, &chunk_roots(&rpc, next.inner_lite.height).await).unwrap();
    let refused = cosmos
        .broadcast(
            &wallet,
            &[update_client_msg(&second, header, &wallet.address)],
            Gas::Fixed(2_000_000),
        )
        .await
        .unwrap();
    assert_ne!(refused.code, 0, "an expired client was updated");
    assert!(refused.log.contains("xpired"), "{}", refused.log);

    near.shutdown().await;
    for c in chains {
        c.shutdown().await;
    }
}

fn recorded(name: &str) -> LightClientBlockView {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/near-light-client")
        .join(name);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value(doc["body"].clone()).unwrap()
}

#[test]
fn recorded_blocks_get_the_same_verdicts_from_both_light_clients() {
    type Mutation = fn(&mut LightClientBlockView);
    let mutations: [(&str, Mutation); 6] = [
        ("unchanged", |_| {}),
        ("flipped signature", |b| {
            let i = b
                .approvals_after_next
                .iter()
                .position(Option::is_some)
                .unwrap();
            let sig = b.approvals_after_next[i].as_mut().unwrap();
            let mut bytes = borsh::to_vec(sig.as_ref()).unwrap();
            bytes[11] ^= 1;
            **sig = borsh::from_slice(&bytes).unwrap();
        }),
        ("changed stake", |b| {
            let near_primitives::views::validator_stake_view::ValidatorStakeView::V1(p) =
                &mut b.next_bps.as_mut().unwrap()[0];
            p.stake = near_primitives::types::Balance::from_yoctonear(p.stake.as_yoctonear() + 1);
        }),
        ("dropped next_bps", |b| b.next_bps = None),
        ("wrong epoch", |b| {
            b.inner_lite.epoch_id = near_primitives::hash::hash(b"another epoch")
        }),
        ("changed timestamp", |b| b.inner_lite.timestamp_nanosec += 1),
    ];
    for prefix in ["main", "test"] {
        let first = recorded(&format!("{prefix}_0.json"));
        let lite = near_primitives::views::LightClientBlockLiteView {
            prev_block_hash: first.prev_block_hash,
            inner_rest_hash: first.inner_rest_hash,
            inner_lite: first.inner_lite.clone(),
        };
        let relayd = TrustedNear::new(lite, Vec::new(), first.next_bps.clone());
        let block = LightClientBlock::from_view(&first);
        let devnet = NearConsensusState::new(
            NearHeader {
                block: block.clone(),
                chunk_roots: Vec::new(),
            },
            Vec::new(),
            block.next_bps.clone(),
        );
        for (what, mutate) in mutations {
            let mut next = recorded(&format!("{prefix}_1.json"));
            mutate(&mut next);
            let theirs: Result<_, LightClientError> = relayd.advance(&next);
            let ours = verify_block(&devnet, &LightClientBlock::from_view(&next));
            assert_eq!(
                theirs.is_ok(),
                ours.is_ok(),
                "{prefix} {what}: {theirs:?} vs {ours:?}"
            );
            assert_eq!(ours.is_ok(), what == "unchanged", "{prefix} {what}");
        }
    }
}
