//! The proof relayd attaches to IBC state read from NEAR, and its check against a light-client-verified header.
//!
//! `view_state` at block H reads the shard state after H. That state root is the `prev_state_root` of the shard's
//! chunk in block H+1, and block H+1's header commits to all chunks' `prev_state_root`s in its own
//! `prev_state_root` (nearcore `Block::compute_state_root`: `merklize` over the shards, which hashes each root's
//! borsh, i.e. sha256 of its 32 bytes). So a proof carries the trie nodes, the shard state root and the shard's
//! merkle path, and verifies against the header of H+1.

use borsh::{BorshDeserialize, BorshSerialize};
use near_primitives::hash::CryptoHash;
use near_primitives::merkle::{Direction, MerklePathItem};

use super::execution_proof::root_from_path;
use super::light_client::{combine_hash, sha256};
use super::trie::{verify_contract_state, TrieProofError};

/// A proof of contract state at block H, checked against the header of block H+1. Carried borsh-encoded in
/// `Proven::proof`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NearStateProof {
    /// The shard's state root after block H (its chunk's `prev_state_root` in block H+1).
    pub state_root: CryptoHash,
    /// Path from `sha256(state_root)` to block H+1's `prev_state_root`.
    pub shard_path: Vec<MerklePathItem>,
    /// The trie nodes of `view_state`'s proof.
    pub nodes: Vec<Vec<u8>>,
}

/// Why a NEAR state proof could not be built or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    /// None of the block's chunk state roots is the root of the proof's trie nodes.
    #[error("no chunk state root of block {height} is the root of the proof's nodes")]
    NoShardRoot {
        /// The block whose chunks were searched (H+1).
        height: u64,
    },
    /// The shard state root does not hash up to the header's `prev_state_root`.
    #[error("shard state root {state_root} is not under the header's prev_state_root {expected}")]
    ShardRoot {
        /// The proof's shard root.
        state_root: CryptoHash,
        /// The header's `prev_state_root`.
        expected: CryptoHash,
    },
    /// The trie nodes do not prove the claim.
    #[error(transparent)]
    Trie(#[from] TrieProofError),
    /// The proof bytes are not a borsh `NearStateProof`.
    #[error("not a NEAR state proof: {0}")]
    Encoding(String),
}

/// The merkle path of leaf `index` in nearcore's `merklize` over `leaves` (already hashed): siblings pair up level
/// by level, and an odd last node moves up unpaired, adding nothing to the path.
pub fn merkle_path(leaves: &[CryptoHash], index: usize) -> Vec<MerklePathItem> {
    let mut level = leaves.to_vec();
    let mut at = index;
    let mut path = Vec::new();
    while level.len() > 1 {
        let sibling = at ^ 1;
        if let Some(hash) = level.get(sibling) {
            path.push(MerklePathItem {
                hash: *hash,
                direction: if sibling < at {
                    Direction::Left
                } else {
                    Direction::Right
                },
            });
        }
        level = level
            .chunks(2)
            .filter_map(|pair| match pair {
                [left, right] => Some(combine_hash(left, right)),
                [single] => Some(*single),
                _ => None,
            })
            .collect();
        at /= 2;
    }
    path
}

/// Builds the proof from `view_state`'s nodes and the `prev_state_root`s of block H+1's chunks (in shard order):
/// the shard is the one whose state root names one of the nodes.
pub fn build_state_proof(
    height: u64,
    chunk_state_roots: &[CryptoHash],
    nodes: Vec<Vec<u8>>,
) -> Result<NearStateProof, StateProofError> {
    let names: std::collections::HashSet<CryptoHash> = nodes.iter().map(|n| sha256(n)).collect();
    let index = chunk_state_roots
        .iter()
        .position(|root| names.contains(root))
        .ok_or(StateProofError::NoShardRoot { height })?;
    let leaves: Vec<CryptoHash> = chunk_state_roots.iter().map(|r| sha256(&r.0)).collect();
    Ok(NearStateProof {
        state_root: chunk_state_roots[index],
        shard_path: merkle_path(&leaves, index),
        nodes,
    })
}

/// Checks that `key` of contract `account` holds `value` (or nothing) per `proof`, against
/// `header_prev_state_root`, the `prev_state_root` of a verified header of the block after the proof's height.
pub fn verify_state_proof(
    header_prev_state_root: &CryptoHash,
    account: &str,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &NearStateProof,
) -> Result<(), StateProofError> {
    let computed = root_from_path(&proof.shard_path, sha256(&proof.state_root.0));
    if &computed != header_prev_state_root {
        return Err(StateProofError::ShardRoot {
            state_root: proof.state_root,
            expected: *header_prev_state_root,
        });
    }
    verify_contract_state(&proof.state_root, account, key, value, &proof.nodes)?;
    Ok(())
}

impl NearStateProof {
    /// The bytes carried in `Proven::proof`.
    pub fn to_bytes(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// Reads `Proven::proof` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateProofError> {
        borsh::from_slice(bytes).map_err(|e| StateProofError::Encoding(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::near::trie::test_support::build;
    use crate::chain::near::trie::{contract_data_key, nibbles};
    use std::collections::HashMap;

    const IBC: &str = "ibc.test.near";
    const PATH: &[u8] = b"commitments/ports/transfer/channels/channel-0/sequences/1";

    /// nearcore `merklize` root, written the way nearcore writes it (power-of-two rounds over a shrinking array),
    /// to check `merkle_path` against an independent construction.
    fn merklize_root(leaves: &[CryptoHash]) -> CryptoHash {
        let mut hashes = leaves.to_vec();
        let mut len = hashes.len();
        while len > 1 {
            for i in 0..len.div_ceil(2) {
                hashes[i] = if 2 * i + 1 < len {
                    combine_hash(&hashes[2 * i], &hashes[2 * i + 1])
                } else {
                    hashes[2 * i]
                };
            }
            len = len.div_ceil(2);
        }
        hashes[0]
    }

    #[test]
    fn merkle_paths_lead_to_the_merklize_root() {
        for n in 1..=9usize {
            let leaves: Vec<CryptoHash> = (0..n).map(|i| sha256(&[i as u8])).collect();
            let root = merklize_root(&leaves);
            for (i, leaf) in leaves.iter().enumerate() {
                assert_eq!(
                    root_from_path(&merkle_path(&leaves, i), *leaf),
                    root,
                    "n={n} i={i}"
                );
            }
        }
        assert!(merkle_path(&[sha256(b"x")], 0).is_empty());
    }

    fn shard_state(value: &[u8]) -> (CryptoHash, Vec<Vec<u8>>) {
        let mut entries = vec![
            (nibbles(&contract_data_key(IBC, PATH)), value.to_vec()),
            (
                nibbles(&contract_data_key(IBC, b"connections/connection-0")),
                b"conn".to_vec(),
            ),
        ];
        entries.sort();
        let mut store = HashMap::new();
        let root = build(&entries, &mut store);
        (root, store.into_values().collect())
    }

    /// A header's prev_state_root over the shards' state roots.
    fn header_root(roots: &[CryptoHash]) -> CryptoHash {
        merklize_root(&roots.iter().map(|r| sha256(&r.0)).collect::<Vec<_>>())
    }

    #[test]
    fn a_proof_verifies_against_the_next_header_for_one_or_many_shards() {
        let value = [7u8; 32];
        let (root, nodes) = shard_state(&value);
        for (shards, shard) in [(1usize, 0usize), (4, 2), (3, 2)] {
            let mut roots: Vec<CryptoHash> =
                (0..shards).map(|i| sha256(&[100 + i as u8])).collect();
            roots[shard] = root;
            let proof = build_state_proof(10, &roots, nodes.clone()).expect("builds");
            assert_eq!(proof.state_root, root);
            let decoded = NearStateProof::from_bytes(&proof.to_bytes()).expect("round trip");
            assert_eq!(decoded, proof);
            let header = header_root(&roots);
            verify_state_proof(&header, IBC, PATH, Some(&value), &decoded).expect("verifies");
            assert!(matches!(
                verify_state_proof(&header, IBC, PATH, Some(&[8u8; 32]), &decoded),
                Err(StateProofError::Trie(TrieProofError::ValueMismatch { .. }))
            ));
            assert!(matches!(
                verify_state_proof(&header, IBC, PATH, None, &decoded),
                Err(StateProofError::Trie(TrieProofError::Present { .. }))
            ));
            verify_state_proof(
                &header,
                IBC,
                b"commitments/ports/transfer/channels/channel-0/sequences/2",
                None,
                &decoded,
            )
            .expect("absence");
        }
        // One shard: the header's root is sha256 of the shard root (nearcore merklize of one item).
        assert_eq!(header_root(&[root]), sha256(&root.0));
    }

    #[test]
    fn a_proof_from_another_state_is_refused() {
        let (root, nodes) = shard_state(&[1u8; 32]);
        let (other_root, _) = shard_state(&[2u8; 32]);
        assert!(matches!(
            build_state_proof(5, &[other_root], nodes.clone()),
            Err(StateProofError::NoShardRoot { height: 5 })
        ));
        let proof = build_state_proof(5, &[root], nodes).expect("builds");
        assert!(matches!(
            verify_state_proof(&sha256(&other_root.0), IBC, PATH, Some(&[1u8; 32]), &proof),
            Err(StateProofError::ShardRoot { .. })
        ));
        assert!(matches!(
            NearStateProof::from_bytes(b"junk"),
            Err(StateProofError::Encoding(_))
        ));
    }
}
