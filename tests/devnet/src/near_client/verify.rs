//! The NEAR client's judgement, as pure functions: whether a header may follow a trusted one (NEAR's light
//! client rules) and whether a state proof holds under a trusted root.
//!
//! Header rules (the NEAR protocol specification's light client page, nearcore `chain/client/src/light_client`):
//! the block is above the trusted one, in its epoch or the next, carries `next_bps` when it starts an epoch (and
//! they hash to its `next_bp_hash`), and is approved by producers of its epoch holding more than 2/3 of the stake,
//! over the block hash recomputed here. Every hash, signature and merkle path uses near-primitives / near-crypto.
//!
//! State proofs: the shard state root hashes up to the consensus root (`prev_state_root`, nearcore's `merklize`
//! over the chunks' roots), then the trie nodes prove the key `[9] ‖ contract ‖ ',' ‖ path` under that shard root.

use borsh::{BorshDeserialize, BorshSerialize};
use near_crypto::Signature;
use near_primitives::block_header::{Approval, ApprovalInner};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::merkle::{combine_hash, compute_root_from_path, merklize, MerklePathItem};
use near_primitives::types::validator_stake::ValidatorStake;

use super::types::{LightClientBlock, NearConsensusState, NearHeader};
use crate::near::trie::lookup_in_proof;

/// Bound on a state proof's size in bytes.
pub const MAX_PROOF_BYTES: usize = 4 * 1024 * 1024;
/// Bound on the trie nodes of one state proof.
pub const MAX_PROOF_NODES: usize = 4096;

/// Why a header was refused; one variant per rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not above the trusted block.
    #[error("header height {height} is not above the trusted height {trusted}")]
    NotAboveTrusted {
        /// The header's height.
        height: u64,
        /// The trusted height.
        trusted: u64,
    },
    /// Neither the trusted epoch nor the next one.
    #[error("header {height} is in epoch {epoch}, neither the trusted epoch {trusted_epoch} nor the next {trusted_next_epoch}")]
    UnknownEpoch {
        /// The header's height.
        height: u64,
        /// Its epoch.
        epoch: CryptoHash,
        /// The trusted block's epoch.
        trusted_epoch: CryptoHash,
        /// The epoch after it.
        trusted_next_epoch: CryptoHash,
    },
    /// Starts an epoch without saying who produces the one after.
    #[error("header {height} starts epoch {epoch} without next_bps")]
    MissingNextBps {
        /// The header's height.
        height: u64,
        /// The epoch it starts.
        epoch: CryptoHash,
    },
    /// `next_bps` does not hash to the header's `next_bp_hash`.
    #[error("header {height}: next_bps hash to {computed}, next_bp_hash is {expected}")]
    NextBpsHash {
        /// The header's height.
        height: u64,
        /// Hash of the given producers.
        computed: CryptoHash,
        /// The header's `next_bp_hash`.
        expected: CryptoHash,
    },
    /// The stored producers of the next epoch are not those the trusted header commits to.
    #[error("stored producers of epoch {epoch} hash to {computed}, the trusted next_bp_hash is {expected}")]
    TrustedProducers {
        /// The epoch.
        epoch: CryptoHash,
        /// Hash of the stored producers.
        computed: CryptoHash,
        /// The trusted header's `next_bp_hash`.
        expected: CryptoHash,
    },
    /// The producers of the header's epoch are not known to the client.
    #[error("producers of epoch {epoch} (header {height}) are not known")]
    ProducersUnknown {
        /// The header's height.
        height: u64,
        /// Its epoch.
        epoch: CryptoHash,
    },
    /// An approval present is not a valid signature of its producer.
    #[error("header {height}: approval {index} is not a valid signature by {account}")]
    InvalidSignature {
        /// The header's height.
        height: u64,
        /// Position in the approvals and the producer list.
        index: usize,
        /// The producer.
        account: String,
    },
    /// Valid approvals hold 2/3 of the stake or less.
    #[error("header {height}: approved stake {approved} is not more than 2/3 of {total}")]
    NotEnoughStake {
        /// The header's height.
        height: u64,
        /// Stake that approved.
        approved: u128,
        /// Stake of the epoch's producers.
        total: u128,
    },
    /// The chunk roots do not merklize to the header's `prev_state_root`.
    #[error("header {height}: chunk roots merklize to {computed}, prev_state_root is {expected}")]
    ChunkRoots {
        /// The header's height.
        height: u64,
        /// The merkle root of the given chunk roots.
        computed: CryptoHash,
        /// The header's `prev_state_root`.
        expected: CryptoHash,
    },
}

/// Borsh hash of a producer list, as a header's `next_bp_hash` commits to it.
pub fn bps_hash(bps: &[ValidatorStake]) -> CryptoHash {
    hash(&borsh::to_vec(bps).unwrap_or_default())
}

/// `approved > 2/3 · total` exactly, without overflow.
fn more_than_two_thirds(approved: u128, total: u128) -> bool {
    approved > total / 3 * 2 + (total % 3 * 2) / 3
}

/// The producers a verified block leaves the client with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producers {
    /// Producers of the block's epoch.
    pub current: Vec<ValidatorStake>,
    /// Producers of the epoch after, once known.
    pub next: Option<Vec<ValidatorStake>>,
    /// Whether the block is in the epoch after the trusted one.
    pub epoch_changed: bool,
}

/// Checks `header` against the `trusted` consensus state (NEAR's light client rules on its block, then its chunk
/// roots against the block's `prev_state_root`) and returns the consensus state it makes.
pub fn verify_header(
    trusted: &NearConsensusState,
    header: &NearHeader,
) -> Result<NearConsensusState, HeaderError> {
    let producers = verify_block(trusted, &header.block)?;
    let lite = &header.block.inner_lite;
    let (computed, _) = merklize(&header.chunk_roots);
    if computed != lite.prev_state_root {
        return Err(HeaderError::ChunkRoots {
            height: lite.height,
            computed,
            expected: lite.prev_state_root,
        });
    }
    Ok(NearConsensusState::new(
        header.clone(),
        producers.current,
        producers.next,
    ))
}

/// NEAR's light client rules: may `block` follow the `trusted` one?
pub fn verify_block(
    trusted: &NearConsensusState,
    block: &LightClientBlock,
) -> Result<Producers, HeaderError> {
    let head = &trusted.header().block.inner_lite;
    let lite = &block.inner_lite;
    let height = lite.height;
    if height <= head.height {
        return Err(HeaderError::NotAboveTrusted {
            height,
            trusted: head.height,
        });
    }
    let epoch_changed = if lite.epoch_id == head.epoch_id {
        false
    } else if lite.epoch_id == head.next_epoch_id {
        true
    } else {
        return Err(HeaderError::UnknownEpoch {
            height,
            epoch: lite.epoch_id.0,
            trusted_epoch: head.epoch_id.0,
            trusted_next_epoch: head.next_epoch_id.0,
        });
    };
    if epoch_changed && block.next_bps.is_none() {
        return Err(HeaderError::MissingNextBps {
            height,
            epoch: lite.epoch_id.0,
        });
    }
    let producers: &[ValidatorStake] = if epoch_changed {
        let next = trusted.next_bps().ok_or(HeaderError::ProducersUnknown {
            height,
            epoch: lite.epoch_id.0,
        })?;
        let computed = bps_hash(next);
        if computed != head.next_bp_hash {
            return Err(HeaderError::TrustedProducers {
                epoch: lite.epoch_id.0,
                computed,
                expected: head.next_bp_hash,
            });
        }
        next
    } else {
        trusted.current_bps()
    };
    if producers.is_empty() {
        return Err(HeaderError::ProducersUnknown {
            height,
            epoch: lite.epoch_id.0,
        });
    }

    let block_hash = block.hash();
    let next_block_hash = combine_hash(&block.next_block_inner_hash, &block_hash);
    let message = Approval::get_data_for_sig(
        &ApprovalInner::Endorsement(next_block_hash),
        height.saturating_add(2),
    );
    check_approvals(height, &block.approvals_after_next, producers, &message)?;

    if let Some(next_bps) = &block.next_bps {
        let computed = bps_hash(next_bps);
        if computed != lite.next_bp_hash {
            return Err(HeaderError::NextBpsHash {
                height,
                computed,
                expected: lite.next_bp_hash,
            });
        }
    }
    let next = if epoch_changed {
        block.next_bps.clone()
    } else {
        block
            .next_bps
            .clone()
            .or_else(|| trusted.next_bps().map(<[_]>::to_vec))
    };
    Ok(Producers {
        current: producers.to_vec(),
        next,
        epoch_changed,
    })
}

/// Approval `i` belongs to producer `i` of the block's epoch; approvals past the list (the next epoch's
/// producers, at an epoch's end) count for nothing. A present but invalid approval refuses the header.
fn check_approvals(
    height: u64,
    approvals: &[Option<Box<Signature>>],
    producers: &[ValidatorStake],
    message: &[u8],
) -> Result<(), HeaderError> {
    let mut total: u128 = 0;
    let mut approved: u128 = 0;
    for (index, producer) in producers.iter().enumerate() {
        let stake = producer.stake().as_yoctonear();
        total = total.saturating_add(stake);
        let Some(Some(signature)) = approvals.get(index) else {
            continue;
        };
        if !signature.verify(message, producer.public_key()) {
            return Err(HeaderError::InvalidSignature {
                height,
                index,
                account: producer.account_id().to_string(),
            });
        }
        approved = approved.saturating_add(stake);
    }
    if !more_than_two_thirds(approved, total) {
        return Err(HeaderError::NotEnoughStake {
            height,
            approved,
            total,
        });
    }
    Ok(())
}

/// A proof of NEAR contract state: the shard's state root, its merkle path to the block's `prev_state_root`, and
/// the trie nodes of `view_state`'s proof. Borsh-encoded in the IBC proof bytes.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NearStateProof {
    /// The shard's state root.
    pub state_root: CryptoHash,
    /// Path from `sha256(state_root)` to the consensus root.
    pub shard_path: Vec<MerklePathItem>,
    /// Trie nodes.
    pub nodes: Vec<Vec<u8>>,
}

/// Why a state proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The bytes are not a state proof, or exceed the bounds.
    #[error("not a NEAR state proof: {0}")]
    Encoding(String),
    /// The shard root does not hash up to the consensus root.
    #[error("shard state root {state_root} is not under the consensus root {root}")]
    ShardRoot {
        /// The proof's shard root.
        state_root: CryptoHash,
        /// The consensus root.
        root: CryptoHash,
    },
    /// The trie nodes reach no conclusion for the key.
    #[error("trie proof: {0}")]
    Trie(String),
    /// Membership was claimed and the key is absent.
    #[error("the key is absent from the proven state")]
    Absent,
    /// Membership was claimed with a value other than the one stored.
    #[error("the proven value differs from the claimed one")]
    ValueMismatch,
    /// Absence was claimed and the key is present.
    #[error("the key is present in the proven state")]
    Present,
}

/// Checks that `key` holds `value` (`None`: is absent) in the state committed by `root`, per the proof `bytes`.
pub fn verify_state(
    root: &CryptoHash,
    key: &[u8],
    value: Option<&[u8]>,
    bytes: &[u8],
) -> Result<(), ProofError> {
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Encoding(format!(
            "{} bytes, at most {MAX_PROOF_BYTES}",
            bytes.len()
        )));
    }
    let proof =
        NearStateProof::try_from_slice(bytes).map_err(|e| ProofError::Encoding(e.to_string()))?;
    if proof.nodes.len() > MAX_PROOF_NODES {
        return Err(ProofError::Encoding(format!(
            "{} trie nodes, at most {MAX_PROOF_NODES}",
            proof.nodes.len()
        )));
    }
    let computed = compute_root_from_path(&proof.shard_path, hash(&proof.state_root.0));
    if &computed != root {
        return Err(ProofError::ShardRoot {
            state_root: proof.state_root,
            root: *root,
        });
    }
    let found = lookup_in_proof(&proof.state_root, &proof.nodes, key).map_err(ProofError::Trie)?;
    match (found, value) {
        (Some(found), Some(value)) => {
            if found.hash == hash(value) && found.length as usize == value.len() {
                Ok(())
            } else {
                Err(ProofError::ValueMismatch)
            }
        }
        (None, Some(_)) => Err(ProofError::Absent),
        (Some(_), None) => Err(ProofError::Present),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::more_than_two_thirds;

    #[test]
    fn two_thirds_is_strict_and_exact() {
        assert!(!more_than_two_thirds(2, 3));
        assert!(more_than_two_thirds(3, 4));
        assert!(!more_than_two_thirds(0, 0));
        assert!(!more_than_two_thirds(6, 10));
        assert!(more_than_two_thirds(7, 10));
        assert!(!more_than_two_thirds(u128::MAX / 3 * 2, u128::MAX));
        assert!(more_than_two_thirds(u128::MAX / 3 * 2 + 1, u128::MAX));
    }
}
