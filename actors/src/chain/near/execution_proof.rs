//! Checks NEAR `light_client_proof` results: that a transaction or receipt outcome is part of a block, and that the
//! block is part of the chain a trusted light-client head commits to. Pure functions over nearcore's views.
//!
//! Rules from nearcore (`core/primitives/src/merkle.rs`, `ExecutionOutcomeWithIdView::to_hashes`) and the NEAR
//! light client specification: the outcome hashes up its shard's outcome tree to the shard outcome root, whose
//! sha256 hashes up to the block's `outcome_root`; the block hash hashes up `block_proof` to the head's
//! `block_merkle_root`.

use near_jsonrpc_primitives::types::light_client::RpcLightClientExecutionProofResponse;
use near_primitives::hash::CryptoHash;
use near_primitives::merkle::{Direction, MerklePathItem};

use super::light_client::{combine_hash, lite_block_hash, sha256};

/// Why an execution proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionProofError {
    /// The outcome names a block other than the header that comes with it.
    #[error("outcome is for block {outcome_block}, the proof's header hashes to {header}")]
    BlockMismatch {
        /// `outcome_proof.block_hash`.
        outcome_block: CryptoHash,
        /// The recomputed hash of `block_header_lite`.
        header: CryptoHash,
    },
    /// The outcome does not hash up to the block's outcome root.
    #[error("outcome {id} hashes to outcome root {computed}, the block has {expected}")]
    OutcomeRoot {
        /// The transaction or receipt id.
        id: CryptoHash,
        /// The root the paths lead to.
        computed: CryptoHash,
        /// The header's `outcome_root`.
        expected: CryptoHash,
    },
    /// The block does not hash up to the trusted head's block merkle root.
    #[error(
        "block {block} hashes to block merkle root {computed}, the trusted head has {expected}"
    )]
    BlockRoot {
        /// The block's hash.
        block: CryptoHash,
        /// The root the path leads to.
        computed: CryptoHash,
        /// The trusted head's `block_merkle_root`.
        expected: CryptoHash,
    },
}

/// The root a merkle path leads to from `leaf` (nearcore `compute_root_from_path`): a sibling on the left is
/// hashed before the running hash, one on the right after it.
pub fn root_from_path(path: &[MerklePathItem], leaf: CryptoHash) -> CryptoHash {
    path.iter().fold(leaf, |acc, item| match item.direction {
        Direction::Left => combine_hash(&item.hash, &acc),
        Direction::Right => combine_hash(&acc, &item.hash),
    })
}

/// Checks that the proven outcome is in its block and that the block is under `head_block_merkle_root`, the
/// `block_merkle_root` of a light-client head relayd verified. Returns the block's hash.
pub fn verify_execution_proof(
    proof: &RpcLightClientExecutionProofResponse,
    head_block_merkle_root: &CryptoHash,
) -> Result<CryptoHash, ExecutionProofError> {
    let header = lite_block_hash(&proof.block_header_lite);
    if header != proof.outcome_proof.block_hash {
        return Err(ExecutionProofError::BlockMismatch {
            outcome_block: proof.outcome_proof.block_hash,
            header,
        });
    }

    let outcome_hashes = proof.outcome_proof.to_hashes();
    let outcome_leaf = hash_of_hashes(&outcome_hashes);
    let shard_root = root_from_path(&proof.outcome_proof.proof, outcome_leaf);
    // The block's outcome root merklizes the shards' roots, and merklize hashes each item's borsh first.
    let outcome_root = root_from_path(&proof.outcome_root_proof, sha256(&shard_root.0));
    let expected = proof.block_header_lite.inner_lite.outcome_root;
    if outcome_root != expected {
        return Err(ExecutionProofError::OutcomeRoot {
            id: proof.outcome_proof.id,
            computed: outcome_root,
            expected,
        });
    }

    let block_root = root_from_path(&proof.block_proof, header);
    if &block_root != head_block_merkle_root {
        return Err(ExecutionProofError::BlockRoot {
            block: header,
            computed: block_root,
            expected: *head_block_merkle_root,
        });
    }
    Ok(header)
}

/// sha256 of the borsh of a `Vec<CryptoHash>`: u32 count, then the hashes.
fn hash_of_hashes(hashes: &[CryptoHash]) -> CryptoHash {
    let mut bytes = Vec::with_capacity(4 + 32 * hashes.len());
    bytes.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
    for hash in hashes {
        bytes.extend_from_slice(&hash.0);
    }
    sha256(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::str::FromStr;

    /// The `block_merkle_root` of the mainnet head both recorded proofs were asked against.
    const HEAD_BLOCK_MERKLE_ROOT: &str = "WWrLWbWHwSmjtTn5oBZPYgRCuCYn6fkYVa4yhPWNK4L";

    fn proof(name: &str) -> RpcLightClientExecutionProofResponse {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/near-light-client")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture readable"))
            .expect("fixture parses")
    }

    fn head_root() -> CryptoHash {
        CryptoHash::from_str(HEAD_BLOCK_MERKLE_ROOT).expect("base58 hash")
    }

    #[test]
    fn recorded_mainnet_proofs_verify() {
        for name in ["old.json", "new.json"] {
            let p = proof(name);
            let block = verify_execution_proof(&p, &head_root()).expect(name);
            assert_eq!(block, p.outcome_proof.block_hash);
        }
    }

    #[test]
    fn a_different_head_is_refused() {
        let p = proof("old.json");
        assert!(matches!(
            verify_execution_proof(&p, &sha256(b"another head")),
            Err(ExecutionProofError::BlockRoot { .. })
        ));
    }

    #[test]
    fn a_changed_outcome_is_refused() {
        let mut p = proof("new.json");
        let burnt = p.outcome_proof.outcome.gas_burnt.as_gas();
        p.outcome_proof.outcome.gas_burnt = near_primitives::types::Gas::from_gas(burnt + 1);
        assert!(matches!(
            verify_execution_proof(&p, &head_root()),
            Err(ExecutionProofError::OutcomeRoot { .. })
        ));
        let mut p = proof("new.json");
        p.outcome_proof.outcome.logs.push("forged".to_owned());
        assert!(matches!(
            verify_execution_proof(&p, &head_root()),
            Err(ExecutionProofError::OutcomeRoot { .. })
        ));
    }

    #[test]
    fn a_swapped_path_direction_is_refused() {
        let mut p = proof("old.json");
        let item = &mut p.block_proof[0];
        item.direction = match item.direction {
            Direction::Left => Direction::Right,
            Direction::Right => Direction::Left,
        };
        assert!(matches!(
            verify_execution_proof(&p, &head_root()),
            Err(ExecutionProofError::BlockRoot { .. })
        ));
    }

    #[test]
    fn an_outcome_from_another_block_is_refused() {
        let mut p = proof("old.json");
        p.block_header_lite.inner_lite.height += 1;
        assert!(matches!(
            verify_execution_proof(&p, &head_root()),
            Err(ExecutionProofError::BlockMismatch { .. })
        ));
    }
}
