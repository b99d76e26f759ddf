//! Cost of the Cosmos devnet's NEAR client judging what relayd sends: one header verification (a recorded mainnet
//! light-client block, one epoch on, with its producers' signatures) and one membership proof (a NEAR devnet trie
//! through a shard merkle path). Beside them, the Tendermint counterparts in the devnet's ibc-rs: the header check
//! 07-tendermint's update runs (tendermint-light-client-verifier's `verify_update_header` on two consecutive
//! blocks of an in-process devnet chain) and 07-tendermint's ICS-23 membership check of a two-store devnet proof.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use basecoin_store::context::Store;
use criterion::{criterion_group, criterion_main, Criterion};
use devnet::app::store::JournaledStore;
use devnet::near::trie::Trie;
use devnet::near_client::{
    verify_block, verify_state, LightClientBlock, NearConsensusState, NearHeader, NearStateProof,
};
use ibc::clients::tendermint::client_state::verify_membership as tm_verify_membership;
use ibc::core::commitment_types::commitment::{
    CommitmentPrefix, CommitmentProofBytes, CommitmentRoot,
};
use ibc::core::commitment_types::proto::ics23::HostFunctionsManager;
use ibc::core::commitment_types::specs::ProofSpecs;
use ibc_proto::ibc::core::commitment::v1::MerkleProof as RawMerkleProof;
use near_primitives::hash::hash;
use near_primitives::merkle::merklize;
use near_primitives::views::LightClientBlockView;
use prost::Message;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::TrustThreshold;
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};

fn recorded(name: &str) -> LightClientBlock {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/devnet/tests/data/near-light-client")
        .join(name);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let view: LightClientBlockView = serde_json::from_value(doc["body"].clone()).expect("block");
    LightClientBlock::from_view(&view)
}

fn header(c: &mut Criterion) {
    let first = recorded("main_0.json");
    let next = recorded("main_1.json");
    let trusted = NearConsensusState::new(
        NearHeader {
            block: first.clone(),
            chunk_roots: Vec::new(),
        },
        Vec::new(),
        first.next_bps.clone(),
    );
    verify_block(&trusted, &next).expect("verifies");
    c.bench_function("near_client/verify_mainnet_header", |b| {
        b.iter(|| verify_block(black_box(&trusted), black_box(&next)))
    });
}

fn membership(c: &mut Criterion) {
    // A contract storage of 1,000 IBC keys, the shape the NEAR devnet commits.
    let mut state = BTreeMap::new();
    for i in 0..1000u32 {
        let key =
            format!("\x09ibc.devnet,commitments/ports/transfer/channels/channel-0/sequences/{i}");
        state.insert(key.into_bytes(), hash(&i.to_le_bytes()).0.to_vec());
    }
    let trie = Trie::build(&state);
    let roots = vec![
        hash(b"shard 0"),
        trie.root(),
        hash(b"shard 2"),
        hash(b"shard 3"),
    ];
    let (root, paths) = merklize(&roots);
    let (key, value) = state.iter().nth(500).expect("a key");
    let proof = borsh::to_vec(&NearStateProof {
        state_root: roots[1],
        shard_path: paths[1].clone(),
        nodes: trie.prefix_proof(key),
    })
    .expect("borsh");
    verify_state(&root, key, Some(value), &proof).expect("verifies");
    c.bench_function("near_client/verify_membership", |b| {
        b.iter(|| {
            verify_state(
                black_box(&root),
                black_box(key),
                Some(black_box(value)),
                &proof,
            )
        })
    });
}

fn tendermint_header(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (trusted, untrusted, chain) = runtime.block_on(async {
        let chain = devnet::start_chain(devnet::ChainOptions::local(
            "ibc-0",
            std::time::Duration::from_millis(200),
        ))
        .await
        .expect("devnet");
        chain.wait_for_height(4).await;
        let rpc = CosmosRpc::connect("ibc-0", &chain.rpc_url())
            .await
            .expect("rpc");
        let trusted = rpc.fetch_light_block(2).await.expect("block 2");
        let untrusted = rpc.fetch_light_block(3).await.expect("block 3");
        (trusted, untrusted, chain)
    });
    let options = Options {
        trust_threshold: TrustThreshold::ONE_THIRD,
        trusting_period: std::time::Duration::from_secs(14 * 24 * 3600),
        clock_drift: std::time::Duration::from_secs(20),
    };
    let verifier = ProdVerifier::default();
    let now = tendermint::Time::now();
    let verdict = verifier.verify_update_header(
        untrusted.as_untrusted_state(),
        trusted.as_trusted_state(),
        &options,
        now,
    );
    assert_eq!(verdict, Verdict::Success);
    c.bench_function("tendermint_client/verify_devnet_header", |b| {
        b.iter(|| {
            verifier.verify_update_header(
                black_box(&untrusted).as_untrusted_state(),
                black_box(&trusted).as_trusted_state(),
                &options,
                now,
            )
        })
    });
    runtime.block_on(chain.shutdown());
}

fn tendermint_membership(c: &mut Criterion) {
    // The same 1,000 IBC keys in the devnet's IBC store, proven up to the app hash through the multistore's `ibc`.
    let mut inner = JournaledStore::new();
    for i in 0..1000u32 {
        let path = format!("commitments/ports/transfer/channels/channel-0/sequences/{i}");
        inner
            .set(path.into(), hash(&i.to_le_bytes()).0.to_vec())
            .expect("set");
    }
    let inner_root = inner.commit().expect("commit");
    let mut outer = JournaledStore::new();
    outer.set("ibc".to_owned().into(), inner_root).expect("set");
    let app_hash = outer.commit().expect("commit");
    let key = "commitments/ports/transfer/channels/channel-0/sequences/500";
    let (value, inner_proof) = inner.prove(1, &key.to_owned().into()).expect("proof");
    let (_, outer_proof) = outer.prove(1, &"ibc".to_owned().into()).expect("proof");
    let proof = CommitmentProofBytes::try_from(
        RawMerkleProof {
            proofs: vec![inner_proof, outer_proof],
        }
        .encode_to_vec(),
    )
    .expect("proof bytes");
    let specs = ProofSpecs::try_from(devnet::proof_specs()).expect("specs");
    let prefix = CommitmentPrefix::from(b"ibc".to_vec());
    let root = CommitmentRoot::from_bytes(&app_hash);
    let value = value.expect("stored");
    let check = |value: Vec<u8>| {
        tm_verify_membership::<HostFunctionsManager>(
            &specs,
            &prefix,
            &proof,
            &root,
            key.as_bytes().to_vec().into(),
            value,
        )
    };
    check(value.clone()).expect("verifies");
    assert!(check(b"other".to_vec()).is_err());
    c.bench_function("tendermint_client/verify_membership", |b| {
        b.iter(|| check(black_box(value.clone())))
    });
}

criterion_group!(
    benches,
    header,
    membership,
    tendermint_header,
    tendermint_membership
);
criterion_main!(benches);
