//! NEAR light client: decides whether a `next_light_client_block` result may become relayd's trusted NEAR head.
//! Pure functions over nearcore's view types, so the same code checks recorded mainnet blocks and the devnet's.
//!
//! The rules are NEAR's light client specification (nearcore `chain/client/src/light_client` and the
//! "Light Client" page of the NEAR protocol specification): the block must be above the head, in the head's epoch
//! or the next one, carry the next epoch's producers when it starts an epoch, and be endorsed by producers of its
//! epoch holding more than 2/3 of the stake, over a block hash relayd recomputes itself.

use near_crypto::{PublicKey, Signature};
use near_primitives::hash::CryptoHash;
use near_primitives::views::validator_stake_view::ValidatorStakeView;
use near_primitives::views::{
    BlockHeaderInnerLiteView, LightClientBlockLiteView, LightClientBlockView,
};
use sha2::{Digest, Sha256};

/// Why a light-client block was refused. Each variant is one rule of NEAR's light client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightClientError {
    /// The block is not above the trusted head.
    #[error("block height {height} is not above the trusted head {head}")]
    NotAboveHead {
        /// The block's height.
        height: u64,
        /// The head's height.
        head: u64,
    },
    /// The block is neither in the head's epoch nor in the one after it.
    #[error("block {height} is in epoch {epoch}, neither the head's epoch {head_epoch} nor the next {head_next_epoch}")]
    UnknownEpoch {
        /// The block's height.
        height: u64,
        /// The block's epoch.
        epoch: CryptoHash,
        /// The head's epoch.
        head_epoch: CryptoHash,
        /// The epoch after the head's.
        head_next_epoch: CryptoHash,
    },
    /// The block starts the next epoch but does not say who produces the epoch after it.
    #[error("block {height} starts epoch {epoch} without next_bps")]
    MissingNextBps {
        /// The block's height.
        height: u64,
        /// The epoch it starts.
        epoch: CryptoHash,
    },
    /// `next_bps` does not hash to the `next_bp_hash` the block header commits to.
    #[error("block {height}: next_bps hash {computed} differs from next_bp_hash {expected}")]
    NextBpsHashMismatch {
        /// The block's height.
        height: u64,
        /// sha256 of the borsh of the given producers.
        computed: CryptoHash,
        /// The header's `next_bp_hash`.
        expected: CryptoHash,
    },
    /// The producers given for the head's next epoch are not the ones the head's header commits to.
    #[error("the producers given for epoch {epoch} hash to {computed}, the head's next_bp_hash is {expected}")]
    TrustedProducersMismatch {
        /// The head's next epoch.
        epoch: CryptoHash,
        /// sha256 of the borsh of the given producers.
        computed: CryptoHash,
        /// The head's `next_bp_hash`.
        expected: CryptoHash,
    },
    /// The producers of the block's epoch are not known to the caller.
    #[error("block {height} is in epoch {epoch} whose block producers are not known")]
    ProducersUnknown {
        /// The block's height.
        height: u64,
        /// The block's epoch.
        epoch: CryptoHash,
    },
    /// An approval is not a valid signature of the producer at its position.
    #[error("block {height}: approval {index} is not a valid signature by {account}")]
    InvalidSignature {
        /// The block's height.
        height: u64,
        /// Position in `approvals_after_next` (and in the producer list).
        index: usize,
        /// The producer expected to have signed.
        account: String,
    },
    /// The valid approvals hold 2/3 of the stake or less.
    #[error("block {height}: approved stake {approved} is not more than 2/3 of {total}")]
    NotEnoughStake {
        /// The block's height.
        height: u64,
        /// Stake of the producers that approved.
        approved: u128,
        /// Stake of all producers of the epoch.
        total: u128,
    },
}

impl LightClientError {
    /// Whether the node that served the block is to blame: every rule but one is about what the node sent; a
    /// block whose epoch's producers relayd does not know is refused for relayd's own lack of state.
    pub fn node_at_fault(&self) -> bool {
        !matches!(self, Self::ProducersUnknown { .. })
    }
}

/// relayd's trusted NEAR state: a head and the block producers it needs to check the next light-client block.
/// Serialized (nearcore's view JSON) when relayd persists it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrustedNear {
    /// The trusted head.
    pub head: LightClientBlockLiteView,
    /// Producers of the head's epoch; empty when only the next epoch's producers are known (a fresh start).
    pub epoch_bps: Vec<ValidatorStakeView>,
    /// Producers of the head's next epoch, once a block has told them.
    pub next_epoch_bps: Option<Vec<ValidatorStakeView>>,
}

/// What relayd persists of its NEAR light client, so a restart resumes from the trusted head: the trusted state
/// and, when known, the full light-client block of the head (a counterparty's NEAR client is updated with it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredNearHead {
    /// The trusted state.
    pub trusted: TrustedNear,
    /// The head's light-client block as verified, if the head was reached by a verified block.
    pub block: Option<LightClientBlockView>,
}

/// A light-client block that passed every rule.
#[derive(Debug, Clone)]
pub struct Advanced {
    /// The state to trust from now on.
    pub trusted: TrustedNear,
    /// The new head's block hash, recomputed by relayd.
    pub hash: CryptoHash,
    /// Whether the block moved the head into the next epoch.
    pub epoch_changed: bool,
}

impl TrustedNear {
    /// Trust a head as given, with the producers of its epoch and, if known, of the next one.
    pub fn new(
        head: LightClientBlockLiteView,
        epoch_bps: Vec<ValidatorStakeView>,
        next_epoch_bps: Option<Vec<ValidatorStakeView>>,
    ) -> Self {
        Self {
            head,
            epoch_bps,
            next_epoch_bps,
        }
    }

    /// Checks `block` against this state; see [`verify_light_client_block`].
    pub fn advance(&self, block: &LightClientBlockView) -> Result<Advanced, LightClientError> {
        verify_light_client_block(
            &self.head,
            &self.epoch_bps,
            self.next_epoch_bps.as_deref(),
            block,
        )
    }

    /// The head's block hash.
    pub fn head_hash(&self) -> CryptoHash {
        lite_block_hash(&self.head)
    }
}

/// Checks a `next_light_client_block` result against the trusted `head`, whose epoch is produced by `epoch_bps`
/// and whose next epoch by `next_epoch_bps` (if known). Returns the new trusted state, or the rule it breaks.
pub fn verify_light_client_block(
    head: &LightClientBlockLiteView,
    epoch_bps: &[ValidatorStakeView],
    next_epoch_bps: Option<&[ValidatorStakeView]>,
    block: &LightClientBlockView,
) -> Result<Advanced, LightClientError> {
    let lite = &block.inner_lite;
    let height = lite.height;
    if height <= head.inner_lite.height {
        return Err(LightClientError::NotAboveHead {
            height,
            head: head.inner_lite.height,
        });
    }
    let epoch_changed = if lite.epoch_id == head.inner_lite.epoch_id {
        false
    } else if lite.epoch_id == head.inner_lite.next_epoch_id {
        true
    } else {
        return Err(LightClientError::UnknownEpoch {
            height,
            epoch: lite.epoch_id,
            head_epoch: head.inner_lite.epoch_id,
            head_next_epoch: head.inner_lite.next_epoch_id,
        });
    };
    if epoch_changed && block.next_bps.is_none() {
        return Err(LightClientError::MissingNextBps {
            height,
            epoch: lite.epoch_id,
        });
    }
    let producers = if epoch_changed {
        next_epoch_bps.ok_or(LightClientError::ProducersUnknown {
            height,
            epoch: lite.epoch_id,
        })?
    } else {
        epoch_bps
    };
    if epoch_changed {
        // The head's header commits to its next epoch's producers: whatever list the caller kept must be that one.
        let computed = bps_hash(producers);
        if computed != head.inner_lite.next_bp_hash {
            return Err(LightClientError::TrustedProducersMismatch {
                epoch: lite.epoch_id,
                computed,
                expected: head.inner_lite.next_bp_hash,
            });
        }
    }
    if producers.is_empty() {
        return Err(LightClientError::ProducersUnknown {
            height,
            epoch: lite.epoch_id,
        });
    }

    let lite_view = LightClientBlockLiteView {
        prev_block_hash: block.prev_block_hash,
        inner_rest_hash: block.inner_rest_hash,
        inner_lite: lite.clone(),
    };
    let hash = lite_block_hash(&lite_view);
    let message = approval_message(&block.next_block_inner_hash, &hash, height);
    check_approvals(height, &block.approvals_after_next, producers, &message)?;

    if let Some(next_bps) = &block.next_bps {
        let computed = bps_hash(next_bps);
        if computed != lite.next_bp_hash {
            return Err(LightClientError::NextBpsHashMismatch {
                height,
                computed,
                expected: lite.next_bp_hash,
            });
        }
    }

    let (new_epoch_bps, new_next_bps) = if epoch_changed {
        (producers.to_vec(), block.next_bps.clone())
    } else {
        (
            epoch_bps.to_vec(),
            block
                .next_bps
                .clone()
                .or_else(|| next_epoch_bps.map(<[_]>::to_vec)),
        )
    };
    Ok(Advanced {
        trusted: TrustedNear {
            head: lite_view,
            epoch_bps: new_epoch_bps,
            next_epoch_bps: new_next_bps,
        },
        hash,
        epoch_changed,
    })
}

/// Sums the stake of the producers whose approvals verify; any approval that is present but invalid refuses the
/// block, because an honest RPC node relays signatures unchanged. Approval `i` belongs to producer `i` of the
/// block's epoch. At an epoch's end the list also carries the next epoch's producers after the current ones
/// (nearcore orders approvers that way); those are not producers of this block's epoch and count for nothing.
fn check_approvals(
    height: u64,
    approvals: &[Option<Box<Signature>>],
    producers: &[ValidatorStakeView],
    message: &[u8],
) -> Result<(), LightClientError> {
    let mut total: u128 = 0;
    let mut approved: u128 = 0;
    for (index, producer) in producers.iter().enumerate() {
        let ValidatorStakeView::V1(producer) = producer;
        let stake = producer.stake.as_yoctonear();
        total = total.saturating_add(stake);
        let Some(Some(signature)) = approvals.get(index) else {
            continue;
        };
        if !signature.verify(message, &producer.public_key) {
            return Err(LightClientError::InvalidSignature {
                height,
                index,
                account: producer.account_id.to_string(),
            });
        }
        approved = approved.saturating_add(stake);
    }
    if !more_than_two_thirds(approved, total) {
        return Err(LightClientError::NotEnoughStake {
            height,
            approved,
            total,
        });
    }
    Ok(())
}

/// `approved > 2/3 * total`, exactly, for any u128 stakes: `3a > 2t` holds iff `a > floor(2t/3)`, and
/// `floor(2t/3) = 2*(t/3) + floor(2*(t%3)/3)` never overflows.
fn more_than_two_thirds(approved: u128, total: u128) -> bool {
    approved > total / 3 * 2 + (total % 3 * 2) / 3
}

/// sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> CryptoHash {
    CryptoHash(Sha256::digest(bytes).into())
}

/// nearcore `combine_hash`: sha256 of the two hashes concatenated.
pub fn combine_hash(left: &CryptoHash, right: &CryptoHash) -> CryptoHash {
    let mut hasher = Sha256::new();
    hasher.update(left.0);
    hasher.update(right.0);
    CryptoHash(hasher.finalize().into())
}

/// borsh of nearcore's `BlockHeaderInnerLite`: height, epoch ids, roots, timestamp (nanoseconds), next_bp_hash,
/// block_merkle_root, fixed-size fields in that order.
pub fn inner_lite_bytes(lite: &BlockHeaderInnerLiteView) -> Vec<u8> {
    let mut out = Vec::with_capacity(208);
    out.extend_from_slice(&lite.height.to_le_bytes());
    out.extend_from_slice(&lite.epoch_id.0);
    out.extend_from_slice(&lite.next_epoch_id.0);
    out.extend_from_slice(&lite.prev_state_root.0);
    out.extend_from_slice(&lite.outcome_root.0);
    // The JSON `timestamp` is a legacy number that some tools round; the header hashes the exact nanoseconds.
    out.extend_from_slice(&lite.timestamp_nanosec.to_le_bytes());
    out.extend_from_slice(&lite.next_bp_hash.0);
    out.extend_from_slice(&lite.block_merkle_root.0);
    out
}

/// A block's hash from its light parts: `combine(combine(sha256(inner_lite), inner_rest_hash), prev_block_hash)`
/// (nearcore `BlockHeader::compute_hash`).
pub fn lite_block_hash(block: &LightClientBlockLiteView) -> CryptoHash {
    let inner_lite_hash = sha256(&inner_lite_bytes(&block.inner_lite));
    let inner_hash = combine_hash(&inner_lite_hash, &block.inner_rest_hash);
    combine_hash(&inner_hash, &block.prev_block_hash)
}

/// What producers sign in `approvals_after_next`: the endorsement of the block after the light-client block,
/// at the height after that (`borsh(ApprovalInner::Endorsement(next_hash)) ++ (height + 2) as u64 LE`).
pub fn approval_message(
    next_block_inner_hash: &CryptoHash,
    block_hash: &CryptoHash,
    height: u64,
) -> Vec<u8> {
    let next_block_hash = combine_hash(next_block_inner_hash, block_hash);
    let mut message = Vec::with_capacity(1 + 32 + 8);
    // ApprovalInner::Endorsement is the enum's first variant: borsh tag 0.
    message.push(0);
    message.extend_from_slice(&next_block_hash.0);
    message.extend_from_slice(&height.saturating_add(2).to_le_bytes());
    message
}

/// nearcore's `next_bp_hash`: sha256 of the borsh of `Vec<ValidatorStake>` (u32 count, then per producer the enum
/// tag of version 1, the account id as a borsh string, the public key, the stake as u128).
pub fn bps_hash(bps: &[ValidatorStakeView]) -> CryptoHash {
    sha256(&bps_bytes(bps))
}

/// borsh of nearcore's `Vec<ValidatorStake>`, as [`bps_hash`] hashes it.
pub fn bps_bytes(bps: &[ValidatorStakeView]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bps.len() * 90);
    out.extend_from_slice(&(bps.len() as u32).to_le_bytes());
    for bp in bps {
        let ValidatorStakeView::V1(bp) = bp;
        out.push(0);
        let account = bp.account_id.as_bytes();
        out.extend_from_slice(&(account.len() as u32).to_le_bytes());
        out.extend_from_slice(account);
        public_key_bytes(&bp.public_key, &mut out);
        out.extend_from_slice(&bp.stake.as_yoctonear().to_le_bytes());
    }
    out
}

/// borsh of a NEAR public key: the key type byte, then the key.
fn public_key_bytes(key: &PublicKey, out: &mut Vec<u8>) {
    out.push(key.key_type() as u8);
    out.extend_from_slice(key.key_data());
}

#[cfg(test)]
mod tests;
