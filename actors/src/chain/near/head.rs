//! relayd's NEAR head: the light-client state relayd trusts for one NEAR chain, moved only by light-client blocks
//! its light client accepts, and the root every NEAR proof relayd forwards is checked against.

use near_primitives::hash::CryptoHash;
use near_primitives::views::LightClientBlockView;

use super::endpoint::NearVerifyError;
use super::execution_proof::verify_execution_proof;
use super::light_client::{bps_hash, lite_block_hash, Advanced, LightClientError, TrustedNear};
use super::rpc::NearRpc;
use crate::chain::endpoint::ChainError;

/// relayd's NEAR head: a trusted light-client state, advanced only by blocks the light client accepts.
pub struct NearHead {
    rpc: NearRpc,
    trusted: TrustedNear,
}

impl NearHead {
    /// Starts from a state the operator trusts (for example one stored by an earlier run).
    pub fn new(rpc: NearRpc, trusted: TrustedNear) -> Self {
        Self { rpc, trusted }
    }

    /// Trust on first use: takes the node's latest light-client block as the head, with the producers of its next
    /// epoch that its header commits to (`next_bp_hash`). Blocks of the head's own epoch cannot be checked
    /// without that epoch's producers, so the head first moves when the chain enters the next epoch. Like a
    /// Cosmos trusted height, the first head must be checked out of band before real use.
    pub async fn bootstrap(rpc: NearRpc) -> Result<Self, NearVerifyError> {
        let block = Self::latest_light_client_block(&rpc).await?;
        let next_bps = block
            .next_bps
            .clone()
            .ok_or_else(|| NearVerifyError::Inconsistent {
                chain: rpc.chain().to_owned(),
                reason: "the light-client block carries no next_bps".to_owned(),
            })?;
        let computed = bps_hash(&next_bps);
        if computed != block.inner_lite.next_bp_hash {
            return Err(LightClientError::NextBpsHashMismatch {
                height: block.inner_lite.height,
                computed,
                expected: block.inner_lite.next_bp_hash,
            }
            .into());
        }
        let trusted = TrustedNear::new(lite(&block), Vec::new(), Some(next_bps));
        Ok(Self { rpc, trusted })
    }

    /// Starts from the block `hash`, which the operator vouches for (as `relayd light init` does for Cosmos). Nothing
    /// else is taken on the node's word: the block's light-client parts must hash to `hash`; its epoch's producers
    /// (`EXPERIMENTAL_validators_ordered`) must hash to the `next_bp_hash` of the last block of the epoch before,
    /// which is the block named by `hash`'s own `next_epoch_id` (NEAR: epoch `e + 1`'s id is the hash of the last
    /// block of epoch `e - 1`), itself checked by its hash. The next epoch's producers come later, checked against
    /// the head's `next_bp_hash`.
    pub async fn from_trusted_block(
        rpc: NearRpc,
        hash: CryptoHash,
    ) -> Result<Self, NearVerifyError> {
        let chain = rpc.chain().to_owned();
        let inconsistent = |reason: String| NearVerifyError::Inconsistent {
            chain: chain.clone(),
            reason,
        };
        let head = Self::lite_of(&rpc, hash).await?;
        let previous_epoch_end = Self::lite_of(&rpc, head.inner_lite.next_epoch_id)
            .await
            .map_err(|e| {
                inconsistent(format!(
                    "the last block of the epoch before {hash}'s ({}): {e}",
                    head.inner_lite.next_epoch_id
                ))
            })?;
        let producers = rpc.validators_ordered(hash).await?;
        let computed = bps_hash(&producers);
        if computed != previous_epoch_end.inner_lite.next_bp_hash {
            return Err(LightClientError::TrustedProducersMismatch {
                epoch: head.inner_lite.epoch_id,
                computed,
                expected: previous_epoch_end.inner_lite.next_bp_hash,
            }
            .into());
        }
        Ok(Self {
            rpc,
            trusted: TrustedNear::new(head, producers, None),
        })
    }

    /// The light-client parts of block `hash` as the node serves them, refused unless they hash to `hash`.
    async fn lite_of(
        rpc: &NearRpc,
        hash: CryptoHash,
    ) -> Result<near_primitives::views::LightClientBlockLiteView, NearVerifyError> {
        let view = rpc.block_by_hash(hash).await?;
        let header = near_primitives::block_header::BlockHeader::from(view.header);
        let lite = near_primitives::views::LightClientBlockLiteView::from(header);
        let computed = lite_block_hash(&lite);
        if computed != hash {
            return Err(NearVerifyError::Inconsistent {
                chain: rpc.chain().to_owned(),
                reason: format!("the node's block {hash} hashes to {computed}"),
            });
        }
        Ok(lite)
    }

    /// Like [`NearHead::bootstrap`], and also trusts the node's ordered producer list of the head's epoch
    /// (`EXPERIMENTAL_validators_ordered`), so blocks of the current epoch verify at once.
    pub async fn bootstrap_with_epoch_producers(rpc: NearRpc) -> Result<Self, NearVerifyError> {
        let mut head = Self::bootstrap(rpc).await?;
        head.learn_epoch_producers().await?;
        Ok(head)
    }

    /// Takes the node's ordered producer list of the head's epoch (`EXPERIMENTAL_validators_ordered`) as the
    /// epoch's producers, so blocks of the head's own epoch verify. Nothing in the head commits to that list: like
    /// the bootstrapped head itself, it is trusted on first use.
    pub async fn learn_epoch_producers(&mut self) -> Result<(), NearVerifyError> {
        let producers = self
            .rpc
            .validators_ordered(self.trusted.head_hash())
            .await?;
        if producers.is_empty() {
            return Err(NearVerifyError::Inconsistent {
                chain: self.rpc.chain().to_owned(),
                reason: "the node lists no block producers for the head's epoch".to_owned(),
            });
        }
        self.trusted.epoch_bps = producers;
        Ok(())
    }

    async fn latest_light_client_block(
        rpc: &NearRpc,
    ) -> Result<LightClientBlockView, NearVerifyError> {
        let final_block = rpc.block(None).await?;
        // A chain that has just started may have no light-client block past its first final block yet: nothing to
        // trust so far, which is a wait, not a broken rule.
        rpc.next_light_client_block(final_block.header.prev_hash)
            .await?
            .ok_or_else(|| {
                NearVerifyError::Chain(ChainError::Node {
                    chain: rpc.chain().to_owned(),
                    call: "next_light_client_block".to_owned(),
                    reason: "no light-client block after the final block's parent yet".to_owned(),
                })
            })
    }

    /// The trusted state.
    pub fn trusted(&self) -> &TrustedNear {
        &self.trusted
    }

    /// Asks for the next light-client block after the head and takes it if it verifies. Returns `None` when the
    /// node has nothing newer. A block that fails verification leaves the head unchanged.
    pub async fn advance(&mut self) -> Result<Option<Advanced>, NearVerifyError> {
        Ok(self
            .advance_with_block()
            .await?
            .map(|(advanced, _)| advanced))
    }

    /// Like [`NearHead::advance`], also returning the light-client block the head moved to (what a NEAR client
    /// on a counterparty is updated with).
    pub async fn advance_with_block(
        &mut self,
    ) -> Result<Option<(Advanced, LightClientBlockView)>, NearVerifyError> {
        // One endpoint serves the block and the producers it is checked with, so a refusal can be blamed on it.
        let rpc = self.rpc.pinned();
        let Some(block) = rpc
            .next_light_client_block(self.trusted.head_hash())
            .await?
        else {
            return Ok(None);
        };
        if block.inner_lite.height == self.trusted.head.inner_lite.height {
            return Ok(None);
        }
        let same_epoch = block.inner_lite.epoch_id == self.trusted.head.inner_lite.epoch_id;
        if block.inner_lite.epoch_id == self.trusted.head.inner_lite.next_epoch_id
            && self.trusted.next_epoch_bps.is_none()
        {
            // The head's header commits to its next epoch's producers (`next_bp_hash`), which the light client
            // checks: ask the node for them when no block of the head's epoch has brought them.
            let hash = lite_block_hash(&lite(&block));
            match rpc.validators_ordered(hash).await {
                // A list the head does not commit to is not kept (the block is then refused as unverifiable).
                Ok(producers)
                    if bps_hash(&producers) == self.trusted.head.inner_lite.next_bp_hash =>
                {
                    self.trusted.next_epoch_bps = Some(producers)
                }
                Ok(_) => tracing::warn!(
                    chain = self.rpc.chain(),
                    "the node's producer list for the next epoch is not the one the head commits to"
                ),
                Err(e) => {
                    tracing::debug!(chain = self.rpc.chain(), error = %e, "no producer list for the next epoch")
                }
            }
        }
        if same_epoch && self.trusted.epoch_bps.is_empty() {
            // A bootstrapped head knows its next epoch's producers only: nothing newer is checkable yet.
            tracing::debug!(
                chain = self.rpc.chain(),
                height = block.inner_lite.height,
                "waiting for the next epoch to verify light-client blocks"
            );
            return Ok(None);
        }
        // Checking a block verifies an ed25519 approval per block producer: off the async threads.
        let (trusted, checked) = (self.trusted.clone(), block.clone());
        let advanced = tokio::task::spawn_blocking(move || trusted.advance(&checked))
            .await
            .map_err(|e| NearVerifyError::Inconsistent {
                chain: self.rpc.chain().to_owned(),
                reason: format!("the light-client verification task failed: {e}"),
            })?
            .inspect_err(|refused| {
                if refused.node_at_fault() {
                    rpc.blame(&refused.to_string())
                }
            })?;
        self.trusted = advanced.trusted.clone();
        Ok(Some((advanced, block)))
    }

    /// Proves that a transaction or receipt outcome is in the chain the head commits to (`light_client_proof`
    /// against the head, checked by `verify_execution_proof`), and returns the proven outcome.
    pub async fn verify_outcome(
        &self,
        id: near_primitives::types::TransactionOrReceiptId,
    ) -> Result<near_primitives::views::ExecutionOutcomeWithIdView, NearVerifyError> {
        let proof = self
            .rpc
            .light_client_proof(id, self.trusted.head_hash())
            .await?;
        verify_execution_proof(&proof, &self.trusted.head.inner_lite.block_merkle_root)?;
        Ok(proof.outcome_proof)
    }

    /// Advances until the head is at least at `height`, or the node has nothing newer.
    pub async fn advance_to(&mut self, height: u64) -> Result<&TrustedNear, NearVerifyError> {
        while self.trusted.head.inner_lite.height < height {
            if self.advance().await?.is_none() {
                break;
            }
        }
        Ok(&self.trusted)
    }
}

/// The lite view of a light-client block (what its hash and the trusted state are computed from).
pub fn lite(block: &LightClientBlockView) -> near_primitives::views::LightClientBlockLiteView {
    near_primitives::views::LightClientBlockLiteView {
        prev_block_hash: block.prev_block_hash,
        inner_rest_hash: block.inner_rest_hash,
        inner_lite: block.inner_lite.clone(),
    }
}
