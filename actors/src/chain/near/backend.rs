//! The NEAR implementations of the backend traits the per-chain actors drive: updates of NEAR clients on
//! counterparties from relayd's own NEAR light client (its head persisted in sled, `backend/light.rs`), `deliver`
//! transactions and events (`backend/submit.rs`). With these the actors run over NEAR unchanged.

mod light;
mod submit;

use std::collections::BTreeMap;

use near_primitives::hash::CryptoHash;
use near_primitives::views::LightClientBlockView;
use relayd_messages::{ErrorKind, RelayError};
use tracing::info;

pub use light::NearLight;
pub use submit::{tx_error, NearSubmitter};

use super::endpoint::NearVerifyError;
use super::head::{lite, NearHead};
use super::light_client::StoredNearHead;
use super::rpc::NearRpc;
use crate::store::StateStore;

/// How a light-client failure reads to the builders: a node that cannot be reached is unavailable, anything that
/// broke a rule is unverified.
pub fn verify_error(e: NearVerifyError) -> RelayError {
    match e {
        NearVerifyError::Chain(e) => RelayError::new(ErrorKind::Unavailable, e.to_string()),
        other => RelayError::new(ErrorKind::Unverified, other.to_string()),
    }
}

/// Of the verified blocks after `trusted_height` up to `target`, those a NEAR client trusted at `trusted_height`
/// needs in order: the first block of every epoch on the way (it brings the producers of the epoch after it), then
/// the target itself.
pub fn header_path(
    verified: &BTreeMap<u64, LightClientBlockView>,
    trusted_height: u64,
    target: u64,
) -> Vec<&LightClientBlockView> {
    let mut path: Vec<&LightClientBlockView> = Vec::new();
    let mut epoch = None;
    for (&height, block) in verified.range(..=target) {
        if height <= trusted_height {
            epoch = Some(block.inner_lite.epoch_id);
            continue;
        }
        let starts_epoch = epoch != Some(block.inner_lite.epoch_id);
        epoch = Some(block.inner_lite.epoch_id);
        if starts_epoch && height < target {
            path.push(block);
        }
    }
    if let Some(block) = verified.get(&target) {
        path.push(block);
    }
    path
}

/// Why `relayd light init` refused a NEAR block.
#[derive(Debug, thiserror::Error)]
pub enum NearInitError {
    /// The block or its epoch's producers did not check out, or the node failed.
    #[error(transparent)]
    Verify(#[from] NearVerifyError),
    /// The block is not at the height the operator named.
    #[error("{chain}: block {hash} is at height {actual}, not {expected}")]
    Height {
        /// The chain.
        chain: String,
        /// The block.
        hash: CryptoHash,
        /// Its height.
        actual: u64,
        /// The height given.
        expected: u64,
    },
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// `relayd light init` for a NEAR chain: trusts block `hash` at `height` on the operator's word, after the checks of
/// [`NearHead::from_trusted_block`], and stores it as the chain's NEAR head (replacing any other); the light client
/// resumes from it.
pub async fn near_light_init(
    rpc: &NearRpc,
    store: &StateStore,
    height: u64,
    hash: CryptoHash,
) -> Result<crate::chain::near::light_client::TrustedNear, NearInitError> {
    let head = NearHead::from_trusted_block(rpc.clone(), hash).await?;
    let trusted = head.trusted().clone();
    let actual = trusted.head.inner_lite.height;
    if actual != height {
        return Err(NearInitError::Height {
            chain: rpc.chain().to_owned(),
            hash,
            actual,
            expected: height,
        });
    }
    store.save_trusted_near(
        rpc.chain(),
        &StoredNearHead {
            trusted: trusted.clone(),
            block: None,
        },
    )?;
    info!(chain = rpc.chain(), height, %hash, "NEAR head trusted on the operator's word");
    Ok(trusted)
}

/// Why a NEAR chain without a stored head does not start, and how to fix it.
pub fn no_head_message(chain: &str) -> String {
    format!(
        "{chain}: no trusted NEAR head; run `relayd light init --chain {chain} --hash <base58 block hash> --height <height>` with a block checked out of band (or set trust_on_first_use = true on the chain, for development only)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use near_primitives::views::BlockHeaderInnerLiteView;

    fn block(height: u64, epoch: u8) -> LightClientBlockView {
        LightClientBlockView {
            prev_block_hash: CryptoHash::default(),
            next_block_inner_hash: CryptoHash::default(),
            inner_lite: BlockHeaderInnerLiteView {
                height,
                epoch_id: CryptoHash([epoch; 32]),
                next_epoch_id: CryptoHash([epoch + 1; 32]),
                prev_state_root: CryptoHash::default(),
                outcome_root: CryptoHash::default(),
                timestamp: 0,
                timestamp_nanosec: 0,
                next_bp_hash: CryptoHash::default(),
                block_merkle_root: CryptoHash::default(),
            },
            inner_rest_hash: CryptoHash::default(),
            next_bps: None,
            approvals_after_next: Vec::new(),
        }
    }

    fn heights(path: &[&LightClientBlockView]) -> Vec<u64> {
        path.iter().map(|b| b.inner_lite.height).collect()
    }

    #[test]
    fn an_update_crosses_each_epoch_by_its_first_verified_block() {
        let verified: BTreeMap<u64, LightClientBlockView> =
            [(5, 0), (9, 0), (12, 1), (15, 1), (21, 2), (24, 2), (30, 3)]
                .into_iter()
                .map(|(h, e)| (h, block(h, e)))
                .collect();
        // From epoch 0 to epoch 2: the first block of epochs 1 and 2, then the target.
        assert_eq!(heights(&header_path(&verified, 9, 24)), vec![12, 21, 24]);
        // Within the trusted block's epoch: the target only.
        assert_eq!(heights(&header_path(&verified, 12, 15)), vec![15]);
        // The target starts an epoch: it is not repeated.
        assert_eq!(heights(&header_path(&verified, 15, 21)), vec![21]);
        // A target relayd did not verify is not on the path (prepare_update refuses it before).
        assert_eq!(heights(&header_path(&verified, 15, 22)), vec![21]);
    }
}
