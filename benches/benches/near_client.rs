//! Cost of the Cosmos devnet's NEAR client judging what relayd sends: one header verification (a recorded mainnet
//! light-client block, one epoch on, with its producers' signatures) and one membership proof (a NEAR devnet trie
//! through a shard merkle path).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use devnet::near::trie::Trie;
use devnet::near_client::{
    verify_block, verify_state, LightClientBlock, NearConsensusState, NearHeader, NearStateProof,
};
use near_primitives::hash::hash;
use near_primitives::merkle::merklize;
use near_primitives::views::LightClientBlockView;

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

criterion_group!(benches, header, membership);
criterion_main!(benches);
