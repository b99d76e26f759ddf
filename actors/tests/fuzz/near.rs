//! NEAR answers: light-client blocks, execution proofs and state proofs, decoded from JSON (or borsh) as the node
//! sends them and checked as relayd checks them. Recorded mainnet answers are mutated anywhere in their JSON
//! tree; a mutated answer may still be accepted only where the change touched nothing the check covers (then it
//! must yield the same head or block), and no input may panic.

use std::path::Path;
use std::str::FromStr;

use near_jsonrpc_primitives::types::light_client::RpcLightClientExecutionProofResponse;
use near_primitives::hash::CryptoHash;
use near_primitives::views::{LightClientBlockLiteView, LightClientBlockView};
use proptest::prelude::*;
use relayd_actors::chain::near::execution_proof::{root_from_path, verify_execution_proof};
use relayd_actors::chain::near::light_client::{bps_hash, lite_block_hash, sha256, TrustedNear};
use relayd_actors::chain::near::rpc::NextLightClientBlock;
use relayd_actors::chain::near::state_proof::{
    build_state_proof, verify_state_proof, NearStateProof,
};
use relayd_actors::chain::near::trie::{
    contract_data_key, decode_node, encode_key, encode_node, lookup, nibbles, TrieNode, ValueRef,
};
use serde_json::Value;

use super::cases;
use super::json::{mutated, Mutation};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/near-light-client")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn block(doc: Value) -> Option<LightClientBlockView> {
    // Through the type relayd reads `next_light_client_block` answers with.
    serde_json::from_value::<NextLightClientBlock>(doc).ok()?.0
}

fn lite(b: &LightClientBlockView) -> LightClientBlockLiteView {
    LightClientBlockLiteView {
        prev_block_hash: b.prev_block_hash,
        inner_rest_hash: b.inner_rest_hash,
        inner_lite: b.inner_lite.clone(),
    }
}

/// A recorded network's first block, trusted as given, and the recorded next block's JSON.
fn step(network: &str) -> (TrustedNear, Value) {
    let first = block(fixture(&format!("{network}_0.json"))["body"].clone()).expect("first block");
    let trusted = TrustedNear::new(lite(&first), Vec::new(), first.next_bps.clone());
    (
        trusted,
        fixture(&format!("{network}_1.json"))["body"].clone(),
    )
}

const HEAD_BLOCK_MERKLE_ROOT: &str = "WWrLWbWHwSmjtTn5oBZPYgRCuCYn6fkYVa4yhPWNK4L";

const ACCOUNT: &str = "ibc.test.near";
const PATH: &[u8] = b"commitments/ports/transfer/channels/channel-0/sequences/1";

/// A three-node trie (extension, branch, leaf) holding `value` at the IBC path, in the second of three shards:
/// the header's `prev_state_root` and the proof.
fn state(value: &[u8]) -> (CryptoHash, NearStateProof) {
    let key = nibbles(&contract_data_key(ACCOUNT, PATH));
    let leaf = encode_node(
        &TrieNode::Leaf(
            encode_key(&key[4..], true),
            ValueRef {
                length: value.len() as u32,
                hash: sha256(value),
            },
        ),
        100,
    );
    let mut children = Box::new([None; 16]);
    children[usize::from(key[3])] = Some(sha256(&leaf));
    children[usize::from((key[3] + 1) % 16)] = Some(sha256(b"another subtree"));
    let branch = encode_node(&TrieNode::Branch(None, children), 300);
    let root_node = encode_node(
        &TrieNode::Extension(encode_key(&key[..3], false), sha256(&branch)),
        400,
    );
    let roots = [sha256(b"shard 0"), sha256(&root_node), sha256(b"shard 2")];
    let proof = build_state_proof(9, &roots, vec![root_node, branch, leaf]).expect("builds");
    let header = root_from_path(&proof.shard_path, sha256(&proof.state_root.0));
    (header, proof)
}

#[test]
fn the_unchanged_answers_verify() {
    for network in ["main", "test"] {
        let (trusted, next) = step(network);
        trusted
            .advance(&block(next).expect("parses"))
            .expect("verifies");
    }
    let head = CryptoHash::from_str(HEAD_BLOCK_MERKLE_ROOT).expect("hash");
    for name in ["old.json", "new.json"] {
        let p: RpcLightClientExecutionProofResponse =
            serde_json::from_value(fixture(name)).expect("proof");
        verify_execution_proof(&p, &head).expect("verifies");
    }
    let (header, proof) = state(b"commitment");
    verify_state_proof(&header, ACCOUNT, PATH, Some(&b"commitment"[..]), &proof).expect("verifies");
    assert!(verify_state_proof(&header, ACCOUNT, PATH, Some(&b"other"[..]), &proof).is_err());
    assert!(verify_state_proof(&header, ACCOUNT, PATH, None, &proof).is_err());
}

proptest! {
    #![proptest_config(cases(400))]

    /// A recorded light-client block changed anywhere: refused, or accepted as the very same head and producers.
    #[test]
    fn a_mutated_light_client_block_never_moves_the_head_elsewhere(
        network in prop::sample::select(&["main", "test"][..]),
        mutations in prop::collection::vec(any::<Mutation>(), 1..4),
    ) {
        let (trusted, next) = step(network);
        let original = block(next.clone()).expect("parses");
        let Some(changed) = block(mutated(next, &mutations)) else { return Ok(()) };
        if let Ok(advanced) = trusted.advance(&changed) {
            prop_assert_eq!(lite_block_hash(&advanced.trusted.head), lite_block_hash(&lite(&original)));
            prop_assert_eq!(
                advanced.trusted.next_epoch_bps.as_deref().map(bps_hash),
                original.next_bps.as_deref().map(bps_hash)
            );
        }
    }

    /// A recorded execution proof changed anywhere: refused, or accepted for the same outcome in the same block.
    #[test]
    fn a_mutated_execution_proof_proves_nothing_else(
        name in prop::sample::select(&["old.json", "new.json"][..]),
        mutations in prop::collection::vec(any::<Mutation>(), 1..4),
    ) {
        let head = CryptoHash::from_str(HEAD_BLOCK_MERKLE_ROOT).expect("hash");
        let doc = fixture(name);
        let original: RpcLightClientExecutionProofResponse = serde_json::from_value(doc.clone()).expect("proof");
        let Ok(changed) = serde_json::from_value::<RpcLightClientExecutionProofResponse>(mutated(doc, &mutations)) else {
            return Ok(());
        };
        if let Ok(block) = verify_execution_proof(&changed, &head) {
            prop_assert_eq!(block, original.outcome_proof.block_hash);
            prop_assert_eq!(changed.outcome_proof.id, original.outcome_proof.id);
            prop_assert_eq!(changed.outcome_proof.to_hashes(), original.outcome_proof.to_hashes());
        }
    }

    /// A state proof with bytes changed: never proves another value, or absence, of a key that holds one.
    #[test]
    fn a_mutated_state_proof_proves_no_wrong_claim(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        other in prop::collection::vec(any::<u8>(), 0..12),
    ) {
        let value = b"commitment".to_vec();
        let (header, proof) = state(&value);
        let mut bytes = proof.to_bytes();
        for (at, byte, how) in &edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = *byte,
                1 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        let Ok(changed) = NearStateProof::from_bytes(&bytes) else { return Ok(()) };
        let _ = verify_state_proof(&header, ACCOUNT, PATH, Some(value.as_slice()), &changed);
        let mut wrong = value.clone();
        wrong.extend_from_slice(&other);
        wrong.push(0);
        prop_assert!(verify_state_proof(&header, ACCOUNT, PATH, Some(wrong.as_slice()), &changed).is_err());
        prop_assert!(verify_state_proof(&header, ACCOUNT, PATH, None, &changed).is_err());
    }

    /// Random bytes as a state proof, a trie node, or the nodes of a lookup.
    #[test]
    fn random_bytes_are_no_state_proof(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        nodes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 0..6),
        key in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let (header, _) = state(b"commitment");
        if let Ok(p) = NearStateProof::from_bytes(&bytes) {
            prop_assert!(verify_state_proof(&header, ACCOUNT, PATH, Some(&b"commitment"[..]), &p).is_err());
        }
        let _ = decode_node(&bytes);
        for n in &nodes {
            let _ = decode_node(n);
            let _ = lookup(&sha256(n), &key, &nodes);
        }
    }

    /// Trie nodes of every kind with fields out of range (keys of any length and flags, any child bitmap).
    #[test]
    fn generated_trie_nodes_decode_or_are_refused(
        tag in 0u8..6,
        key in prop::collection::vec(any::<u8>(), 0..40),
        len in any::<u32>(),
        bitmap in any::<u16>(),
        hashes in 0usize..18,
        tail in 0usize..10,
        lookup_key in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut bytes = vec![tag];
        if tag == 0 || tag == 3 {
            bytes.extend_from_slice(&len.min(key.len() as u32 + 2).to_le_bytes());
            bytes.extend_from_slice(&key);
        }
        if tag == 2 || tag == 0 {
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&[7; 32]);
        }
        if tag == 1 || tag == 2 {
            bytes.extend_from_slice(&bitmap.to_le_bytes());
        }
        for i in 0..hashes {
            bytes.extend_from_slice(&[i as u8; 32]);
        }
        bytes.extend(std::iter::repeat_n(0u8, tail));
        if decode_node(&bytes).is_ok() {
            let _ = lookup(&sha256(&bytes), &lookup_key, &[bytes.clone()]);
        }
    }
}
