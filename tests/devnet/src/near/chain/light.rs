//! What the NEAR devnet serves light clients, as nearcore builds it: light-client blocks for a head or for a
//! client one epoch behind, and execution proofs of transaction and receipt outcomes up to a head's block
//! merkle tree.

use near_jsonrpc_primitives::types::light_client::{
    RpcLightClientExecutionProofResponse, RpcLightClientProofError,
};
use near_primitives::block_header::BlockHeader;
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::merkle::merklize;
use near_primitives::views::validator_stake_view::ValidatorStakeView;
use near_primitives::views::{
    BlockHeaderInnerLiteView, LightClientBlockLiteView, LightClientBlockView,
};

use super::{NearChain, StoredBlock, UnknownBlock};

impl NearChain {
    /// nearcore's `create_light_client_block_view` for block `height`: needs the two blocks above it.
    pub fn light_client_block_view(
        &self,
        height: u64,
        next_bps: Option<Vec<ValidatorStakeView>>,
    ) -> Option<LightClientBlockView> {
        let b = self.block_at(height)?;
        let next = self.block_at(height + 1)?;
        let after_next = self.block_at(height + 2)?;
        Some(LightClientBlockView {
            prev_block_hash: *b.header.prev_hash(),
            next_block_inner_hash: BlockHeader::compute_inner_hash(
                &next.header.inner_lite_bytes(),
                &next.header.inner_rest_bytes(),
            ),
            inner_lite: BlockHeaderInnerLiteView::from(b.header.clone()),
            inner_rest_hash: hash(&b.header.inner_rest_bytes()),
            next_bps,
            approvals_after_next: after_next.header.approvals().to_vec(),
        })
    }

    /// nearcore's `create_light_client_block` for the block at `height` taken as head: its last final block,
    /// moved back so the block two above it is in the same epoch, with the next epoch's block producers.
    pub fn light_client_block_for(&self, height: u64) -> Option<LightClientBlockView> {
        let head = self.block_at(height)?;
        let mut fin = self.block_by_hash(head.header.last_final_block())?;
        let two_ahead = self.block_at(fin.height() + 2)?;
        if two_ahead.epoch != fin.epoch {
            let one_ahead = self.block_at(fin.height() + 1)?;
            fin = if one_ahead.epoch != fin.epoch {
                self.block_by_hash(fin.header.last_final_block())?
            } else {
                self.block_by_hash(one_ahead.header.last_final_block())?
            };
        }
        let next_epoch = self.epoch_index(fin.header.next_epoch_id())?;
        let next_bps = self
            .block_producers(next_epoch)
            .into_iter()
            .map(ValidatorStakeView::from)
            .collect();
        self.light_client_block_view(fin.height(), Some(next_bps))
    }

    /// `next_light_client_block` for a client whose head is `last_hash`; `Ok(None)` when it is up to date.
    pub fn next_light_client_block(
        &self,
        last_hash: &CryptoHash,
    ) -> Result<Option<LightClientBlockView>, UnknownBlock> {
        let last = self.block_by_hash(last_hash).ok_or(UnknownBlock)?;
        let head = self.head();
        let head_epoch = head.header.epoch_id();
        if last.header.epoch_id() == head_epoch || last.header.next_epoch_id() == head_epoch {
            let lc = self.light_client_block_for(head.height());
            Ok(lc.filter(|b| b.inner_lite.height > last.height()))
        } else {
            Ok(self
                .epoch_light_client_blocks
                .get(&last.header.next_epoch_id().0)
                .cloned())
        }
    }

    /// nearcore's `light_client_proof`: the outcome of transaction or receipt `id`, proven up to the outcome root
    /// of the block that commits to it (the block after the one it executed in: a chunk carries the outcome root of
    /// the previous chunk's execution), and that block proven in the block merkle tree of `head`. The outcome's
    /// `block_hash` names that committing block, whose header is `block_header_lite`.
    pub fn light_client_proof(
        &self,
        id: &CryptoHash,
        head: &CryptoHash,
    ) -> Result<RpcLightClientExecutionProofResponse, RpcLightClientProofError> {
        let &(height, index) = self.outcome_index.get(id).ok_or(
            RpcLightClientProofError::UnknownTransactionOrReceipt {
                transaction_or_receipt_id: *id,
            },
        )?;
        let head =
            self.block_by_hash(head)
                .ok_or_else(|| RpcLightClientProofError::UnknownBlock {
                    error_message: format!("DB Not Found Error: {head}"),
                })?;
        // The committing block must be in the head's block merkle tree, which holds the blocks before the head.
        let including = self
            .block_at(height + 1)
            .filter(|b| b.height() < head.height())
            .ok_or(RpcLightClientProofError::NotConfirmed {
                transaction_or_receipt_id: *id,
            })?;
        let internal = |what: &str| RpcLightClientProofError::InternalError {
            error_message: what.to_owned(),
        };
        let outcomes = self
            .outcomes
            .get(&height)
            .ok_or_else(|| internal("outcomes pruned"))?;
        let hashes: Vec<Vec<CryptoHash>> = outcomes.iter().map(|o| o.to_hashes()).collect();
        let (root, paths) = merklize(&hashes);
        if root != including.chunk.outcome_root {
            return Err(internal("outcome root mismatch"));
        }
        let mut outcome_proof = outcomes
            .get(index)
            .cloned()
            .ok_or_else(|| internal("outcome index"))?;
        outcome_proof.proof = paths.get(index).cloned().unwrap_or_default();
        outcome_proof.block_hash = including.hash();
        let outcome_root_proof = merklize(&[including.chunk.outcome_root])
            .1
            .into_iter()
            .next()
            .unwrap_or_default();
        let leaves: Vec<CryptoHash> = self.blocks[..usize::try_from(head.height()).unwrap_or(0)]
            .iter()
            .map(StoredBlock::hash)
            .collect();
        if crate::near::proof::block_tree_root(&leaves) != *head.header.block_merkle_root() {
            return Err(internal("block merkle root mismatch"));
        }
        let block_proof = crate::near::proof::block_tree_path(
            &leaves,
            usize::try_from(including.height()).unwrap_or(usize::MAX),
        )
        .ok_or_else(|| internal("block not in the head's tree"))?;
        Ok(RpcLightClientExecutionProofResponse {
            outcome_proof,
            outcome_root_proof,
            block_header_lite: LightClientBlockLiteView::from(including.header.clone()),
            block_proof,
        })
    }
}
