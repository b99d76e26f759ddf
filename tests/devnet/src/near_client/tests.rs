//! The NEAR client on real NEAR data (recorded mainnet and testnet light-client blocks) and on tries the NEAR
//! devnet builds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use near_primitives::hash::{hash, CryptoHash};
use near_primitives::merkle::merklize;
use near_primitives::types::validator_stake::ValidatorStake;
use near_primitives::types::Balance;
use near_primitives::views::LightClientBlockView;

use super::client::near_client_type;
use super::types::*;
use super::verify::*;
use crate::near::trie::Trie;

#[derive(serde::Deserialize)]
struct Fixture {
    last_block_hash: CryptoHash,
    body: LightClientBlockView,
}

fn fixture(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/near-light-client")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("parses")
}

fn block(name: &str) -> LightClientBlock {
    LightClientBlock::from_view(&fixture(name).body)
}

/// Trust the first block of a recorded sequence as given: its own epoch's producers are not recorded; its
/// `next_bps` produce the epoch of the second block.
fn trusted_start(first: &LightClientBlock) -> NearConsensusState {
    NearConsensusState::new(
        NearHeader {
            block: first.clone(),
            chunk_roots: Vec::new(),
        },
        Vec::new(),
        first.next_bps.clone(),
    )
}

fn trusted_after(trusted: &NearConsensusState, block: &LightClientBlock) -> NearConsensusState {
    let producers = verify_block(trusted, block).expect("verifies");
    NearConsensusState::new(
        NearHeader {
            block: block.clone(),
            chunk_roots: Vec::new(),
        },
        producers.current,
        producers.next,
    )
}

fn mainnet_step() -> (NearConsensusState, LightClientBlock) {
    (trusted_start(&block("main_0.json")), block("main_1.json"))
}

fn stake_plus_one(bp: &mut ValidatorStake) {
    let stake = bp.stake_mut();
    *stake = Balance::from_yoctonear(stake.as_yoctonear() + 1);
}

#[test]
fn the_client_type_is_near_ibcs() {
    assert_eq!(near_client_type().as_str(), "12-near");
}

#[test]
fn recomputed_hashes_are_the_hashes_the_next_requests_named() {
    for i in 0..2 {
        let b = block(&format!("main_{i}.json"));
        let next = fixture(&format!("main_{}.json", i + 1));
        assert_eq!(b.hash(), next.last_block_hash, "main_{i}");
    }
}

#[test]
fn recorded_mainnet_and_testnet_blocks_verify_in_sequence() {
    for prefix in ["main", "test"] {
        let mut trusted = trusted_start(&block(&format!("{prefix}_0.json")));
        for i in 1..=2 {
            let b = block(&format!("{prefix}_{i}.json"));
            let producers = verify_block(&trusted, &b).expect("recorded block verifies");
            assert!(producers.epoch_changed, "{prefix}_{i} is one epoch on");
            assert_eq!(Some(producers.current.as_slice()), trusted.next_bps());
            assert_eq!(producers.next, b.next_bps);
            trusted = trusted_after(&trusted, &b);
        }
        assert_eq!(
            trusted.header().block.height(),
            block(&format!("{prefix}_2.json")).height()
        );
    }
}

#[test]
fn the_borsh_header_round_trips_through_its_protobuf_any() {
    let b = block("main_1.json");
    let roots = vec![hash(b"shard 0"), hash(b"shard 1"), hash(b"shard 2")];
    let header = NearHeader {
        block: b,
        chunk_roots: roots,
    };
    let any: ibc_proto::google::protobuf::Any = header.clone().into();
    assert_eq!(any.type_url, NEAR_HEADER_TYPE_URL);
    assert_eq!(NearHeader::try_from(any).expect("decodes"), header);
    // nearcore's BlockHeaderInnerLite is 208 bytes: the light-client block starts with two hashes, then it.
    let raw = RawHeader::from(header.clone());
    assert_eq!(
        &raw.light_client_block[64..272],
        borsh::to_vec(&header.block.inner_lite)
            .expect("borsh")
            .as_slice()
    );
    let cs = NearConsensusState::new(header.clone(), Vec::new(), header.block.next_bps.clone());
    let any: ibc_proto::google::protobuf::Any = cs.clone().into();
    assert_eq!(NearConsensusState::try_from(any).expect("decodes"), cs);
    let client = NearClientState::new(&cs, std::time::Duration::from_secs(3600));
    let any: ibc_proto::google::protobuf::Any = client.clone().into();
    assert_eq!(NearClientState::try_from(any).expect("decodes"), client);
}

#[test]
fn a_flipped_signature_is_refused() {
    let (trusted, mut b) = mainnet_step();
    let index = b
        .approvals_after_next
        .iter()
        .position(Option::is_some)
        .expect("some approval");
    let Some(Some(signature)) = b.approvals_after_next.get_mut(index) else {
        unreachable!()
    };
    let mut bytes = borsh::to_vec(signature.as_ref()).expect("borsh");
    bytes[11] ^= 0x01;
    **signature = borsh::from_slice(&bytes).expect("still a signature");
    match verify_block(&trusted, &b) {
        Err(HeaderError::InvalidSignature { index: i, .. }) => assert_eq!(i, index),
        other => panic!("expected InvalidSignature, got {other:?}"),
    }
}

#[test]
fn a_changed_stake_in_next_bps_is_refused() {
    let (trusted, mut b) = mainnet_step();
    stake_plus_one(&mut b.next_bps.as_mut().expect("next_bps")[0]);
    assert!(matches!(
        verify_block(&trusted, &b),
        Err(HeaderError::NextBpsHash { .. })
    ));
}

#[test]
fn a_changed_stake_in_the_trusted_producers_is_refused() {
    let (trusted, b) = mainnet_step();
    let mut next = trusted.next_bps().expect("next").to_vec();
    stake_plus_one(&mut next[0]);
    let changed = NearConsensusState::new(trusted.header().clone(), Vec::new(), Some(next));
    assert!(matches!(
        verify_block(&changed, &b),
        Err(HeaderError::TrustedProducers { .. })
    ));
}

#[test]
fn a_dropped_next_bps_on_an_epoch_change_is_refused() {
    let (trusted, mut b) = mainnet_step();
    b.next_bps = None;
    assert!(matches!(
        verify_block(&trusted, &b),
        Err(HeaderError::MissingNextBps { .. })
    ));
}

#[test]
fn a_wrong_epoch_and_a_block_two_epochs_on_are_refused() {
    let (trusted, mut b) = mainnet_step();
    b.inner_lite.epoch_id.0 = hash(b"some other epoch");
    assert!(matches!(
        verify_block(&trusted, &b),
        Err(HeaderError::UnknownEpoch { .. })
    ));
    assert!(matches!(
        verify_block(&trusted, &block("main_2.json")),
        Err(HeaderError::UnknownEpoch { .. })
    ));
}

#[test]
fn a_block_not_above_the_trusted_one_is_refused() {
    let (trusted, mut b) = mainnet_step();
    b.inner_lite.height = trusted.header().block.height();
    assert!(matches!(
        verify_block(&trusted, &b),
        Err(HeaderError::NotAboveTrusted { .. })
    ));
}

#[test]
fn too_few_approvals_are_refused() {
    let (trusted, mut b) = mainnet_step();
    let signed = b.approvals_after_next.iter().flatten().count();
    let mut dropped = 0;
    for approval in b.approvals_after_next.iter_mut() {
        if approval.is_some() && dropped < signed / 2 {
            *approval = None;
            dropped += 1;
        }
    }
    assert!(matches!(
        verify_block(&trusted, &b),
        Err(HeaderError::NotEnoughStake { .. })
    ));
}

#[test]
fn a_changed_header_field_breaks_the_signatures() {
    let (trusted, mut b) = mainnet_step();
    b.inner_lite.prev_state_root = hash(b"another state");
    assert!(matches!(
        verify_block(&trusted, &b),
        Err(HeaderError::InvalidSignature { .. })
    ));
    let (trusted, mut b) = mainnet_step();
    b.inner_lite.timestamp += 1;
    assert!(matches!(
        verify_block(&trusted, &b),
        Err(HeaderError::InvalidSignature { .. })
    ));
}

#[test]
fn unknown_producers_are_refused() {
    let (trusted, b) = mainnet_step();
    let none = NearConsensusState::new(trusted.header().clone(), Vec::new(), None);
    assert!(matches!(
        verify_block(&none, &b),
        Err(HeaderError::ProducersUnknown { .. })
    ));
}

#[test]
fn chunk_roots_must_merklize_to_the_blocks_prev_state_root() {
    let (trusted, b) = mainnet_step();
    // Real blocks come without their chunk roots here, so the header's roots cannot match.
    let header = NearHeader {
        block: b,
        chunk_roots: vec![hash(b"shard 0")],
    };
    assert!(matches!(
        verify_header(&trusted, &header),
        Err(HeaderError::ChunkRoots { .. })
    ));
}

fn proof_bytes(trie: &Trie, key: &[u8], roots: &[CryptoHash], shard: usize) -> Vec<u8> {
    let (_, paths) = merklize(roots);
    borsh::to_vec(&NearStateProof {
        state_root: roots[shard],
        shard_path: paths[shard].clone(),
        nodes: trie.prefix_proof(key),
    })
    .expect("borsh")
}

#[test]
fn state_proofs_from_a_devnet_trie_verify_through_the_chunk_roots() {
    let mut state = BTreeMap::new();
    let prefix = b"\x09ibc.test.near,".to_vec();
    for (k, v) in [
        ("clients/07-tendermint-0/clientState", "client"),
        ("connections/connection-0", "connection"),
        (
            "commitments/ports/transfer/channels/channel-0/sequences/1",
            "commitment",
        ),
    ] {
        let mut key = prefix.clone();
        key.extend_from_slice(k.as_bytes());
        state.insert(key, v.as_bytes().to_vec());
    }
    let trie = Trie::build(&state);
    let roots = vec![hash(b"shard 0"), trie.root(), hash(b"shard 2")];
    let (consensus_root, _) = merklize(&roots);
    for (key, value) in &state {
        let proof = proof_bytes(&trie, key, &roots, 1);
        verify_state(&consensus_root, key, Some(value), &proof).expect("membership");
        assert_eq!(
            verify_state(&consensus_root, key, Some(b"other"), &proof),
            Err(ProofError::ValueMismatch)
        );
        assert_eq!(
            verify_state(&consensus_root, key, None, &proof),
            Err(ProofError::Present)
        );
    }
    let mut absent = prefix.clone();
    absent.extend_from_slice(b"receipts/ports/transfer/channels/channel-0/sequences/1");
    let proof = proof_bytes(&trie, &absent, &roots, 1);
    verify_state(&consensus_root, &absent, None, &proof).expect("non-membership");
    assert_eq!(
        verify_state(&consensus_root, &absent, Some(b"x"), &proof),
        Err(ProofError::Absent)
    );
    // Against another root, through the wrong shard, or not a proof at all.
    let (key, value) = state.iter().next().expect("a key");
    let proof = proof_bytes(&trie, key, &roots, 1);
    assert!(matches!(
        verify_state(&hash(b"another root"), key, Some(value), &proof),
        Err(ProofError::ShardRoot { .. })
    ));
    let wrong_shard = proof_bytes(&trie, key, &roots, 0);
    assert!(matches!(
        verify_state(&consensus_root, key, Some(value), &wrong_shard),
        Err(ProofError::Trie(_))
    ));
    assert!(matches!(
        verify_state(&consensus_root, key, Some(value), b"junk"),
        Err(ProofError::Encoding(_))
    ));
}
