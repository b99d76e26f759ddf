//! The NEAR devnet's chain: blocks at consecutive heights with one chunk each, epochs of fixed length with
//! changing block producers, block headers and light-client blocks built, hashed and signed as nearcore does.
//!
//! Facts from nearcore (`core/primitives/src/block_header.rs`, `chain/chain/src/chain.rs`
//! `create_light_client_block`, `chain/client/src/view_client_actor.rs` `next_light_client_block`,
//! `chain/epoch-manager`):
//! - block hash = `combine(combine(sha256(borsh(inner_lite)), sha256(borsh(inner_rest))), prev_hash)`, signed
//!   by the block producer;
//! - block H carries approvals `Endorsement(prev_hash)` for target height H from the block producers of its
//!   epoch, in their order; a light-client block's `approvals_after_next` are those of the block two above;
//! - epoch ids: the first epoch's id is all zeros, and epoch k's id is the hash of the last block of epoch k-2
//!   (the genesis block for epoch 1); `next_bp_hash` is the borsh hash of the next epoch's block producers;
//! - a light-client block is the head's last final block (moved back if the block two above it is in another
//!   epoch), with `next_bps` of the epoch after it; for a client more than one epoch behind, the light-client
//!   block saved at the end of its next epoch is returned.
//!
//! With one block per height, block H is final once H+2 exists (`last_final_block` = H-2).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use near_crypto::{PublicKey, Signature};
use near_primitives::block_header::{
    Approval, ApprovalInner, BlockHeader, BlockHeaderInnerLite, BlockHeaderInnerRestV5,
    BlockHeaderV5,
};
use near_primitives::errors::InvalidTxError;
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::merkle::{merklize, PartialMerkleTree};
use near_primitives::stateless_validation::chunk_endorsements_bitmap::ChunkEndorsementsBitmap;
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::validator_stake::ValidatorStake;
use near_primitives::types::{AccountId, Balance, EpochId, Gas};
use near_primitives::version::PROTOCOL_VERSION;
use near_primitives::views::{
    BlockHeaderView, BlockView, ChunkHeaderView, ExecutionOutcomeWithIdView,
    FinalExecutionOutcomeView, LightClientBlockView,
};

use super::genesis::{epoch_block_producers, NearGenesis};
use super::ibc::IbcContract;
use super::runtime::{self, StateMap, GAS_PRICE};
use super::trie::Trie;

mod light;
mod replay;

/// How many past blocks' states are kept for queries at a block.
pub const STATES_RETAINED: u64 = 1_000;
/// Blocks a transaction's `block_hash` stays valid for (nearcore's `transaction_validity_period`, shortened).
pub const TRANSACTION_VALIDITY_PERIOD: u64 = 500;

/// A produced block with what the devnet knows about it.
#[derive(Clone)]
pub struct StoredBlock {
    /// The signed header.
    pub header: BlockHeader,
    /// The block's only chunk.
    pub chunk: ChunkHeaderView,
    /// Who produced it.
    pub author: AccountId,
    /// Epoch index (0 = first epoch).
    pub epoch: u64,
    /// State root after applying this block's chunk.
    pub post_state_root: CryptoHash,
    /// Transactions in the chunk.
    pub txs: Vec<CryptoHash>,
}

impl StoredBlock {
    /// The block height.
    pub fn height(&self) -> u64 {
        self.header.height()
    }

    /// The block hash.
    pub fn hash(&self) -> CryptoHash {
        *self.header.hash()
    }

    /// The `block` RPC view.
    pub fn view(&self) -> BlockView {
        BlockView {
            author: self.author.clone(),
            header: BlockHeaderView::from(&self.header),
            chunks: vec![self.chunk.clone()],
        }
    }
}

/// A transaction's recorded outcome.
#[derive(Clone)]
pub struct TxRecord {
    /// Block the transaction executed in.
    pub height: u64,
    /// The outcome.
    pub outcome: FinalExecutionOutcomeView,
}

/// The chain state machine; pure (no clock, no IO): the caller passes each block's timestamp.
pub struct NearChain {
    genesis: NearGenesis,
    blocks: Vec<StoredBlock>,
    by_hash: HashMap<CryptoHash, u64>,
    state: StateMap,
    snapshots: BTreeMap<u64, Arc<StateMap>>,
    block_tree: PartialMerkleTree,
    epoch_light_client_blocks: HashMap<CryptoHash, LightClientBlockView>,
    mempool: Vec<SignedTransaction>,
    pool_nonces: HashMap<(AccountId, PublicKey), u64>,
    txs: HashMap<CryptoHash, TxRecord>,
    /// Each block's execution outcomes, in the order its outcome root merklizes them.
    outcomes: BTreeMap<u64, Vec<ExecutionOutcomeWithIdView>>,
    /// Where each transaction's or receipt's outcome is: (block height, index in that block's outcomes).
    outcome_index: HashMap<CryptoHash, (u64, usize)>,
    ibc: IbcContract,
    last_outcome_root: CryptoHash,
    total_supply: u128,
}

impl std::fmt::Debug for NearChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearChain")
            .field("chain_id", &self.genesis.chain_id)
            .field("height", &self.head().height())
            .finish_non_exhaustive()
    }
}

fn stakes(genesis: &NearGenesis, epoch: u64) -> Vec<ValidatorStake> {
    epoch_block_producers(genesis.validators.len(), epoch)
        .into_iter()
        .map(|(i, stake)| {
            let v = &genesis.validators[i];
            ValidatorStake::new(v.account_id.clone(), v.public_key(), stake)
        })
        .collect()
}

/// nearcore's `next_bp_hash`: the borsh hash of the block producers list (versioned `ValidatorStake` format).
pub fn bp_hash(bps: &[ValidatorStake]) -> CryptoHash {
    CryptoHash::hash_borsh_iter(bps.iter())
}

fn chunk_hash(parts: &(CryptoHash, CryptoHash, CryptoHash, CryptoHash, u64)) -> CryptoHash {
    CryptoHash::hash_borsh(parts)
}

impl NearChain {
    /// The genesis block (height 0) over the genesis state; `timestamp_ns` is its time.
    pub fn new(genesis: NearGenesis, timestamp_ns: u64) -> Self {
        let mut ibc = IbcContract::new(genesis.ibc.account_id.clone());
        let mut state = runtime::genesis_state(&genesis);
        // The IBC module's initial counters and the users' token balances are the contract's state at genesis.
        ibc.fund_genesis(
            std::iter::once(&genesis.relayer)
                .chain(&genesis.accounts)
                .map(|a| &a.account_id),
        );
        ibc.commit(&mut state);
        runtime::refresh_storage_usage(&mut state);
        let root = Trie::build(&state).root();
        let total_supply = super::genesis::GENESIS_BALANCE * genesis.funded().count() as u128;
        let next_bp_hash = bp_hash(&stakes(&genesis, 0));
        let chunk_parts = (
            CryptoHash::default(),
            root,
            CryptoHash::default(),
            CryptoHash::default(),
            0,
        );
        let chunk = ChunkHeaderView {
            chunk_hash: chunk_hash(&chunk_parts),
            prev_block_hash: CryptoHash::default(),
            outcome_root: CryptoHash::default(),
            prev_state_root: root,
            encoded_merkle_root: CryptoHash::default(),
            encoded_length: 0,
            height_created: 0,
            height_included: 0,
            shard_id: 0.into(),
            gas_used: Gas::ZERO,
            gas_limit: Gas::from_teragas(1_000),
            rent_paid: Balance::ZERO,
            validator_reward: Balance::ZERO,
            balance_burnt: Balance::ZERO,
            outgoing_receipts_root: CryptoHash::default(),
            tx_root: CryptoHash::default(),
            validator_proposals: vec![],
            congestion_info: None,
            bandwidth_requests: None,
            signature: Signature::empty(near_crypto::KeyType::ED25519),
        };
        let inner_lite = BlockHeaderInnerLite {
            height: 0,
            epoch_id: EpochId::default(),
            next_epoch_id: EpochId::default(),
            prev_state_root: merklize(&[root]).0,
            prev_outcome_root: CryptoHash::default(),
            timestamp: timestamp_ns,
            next_bp_hash,
            block_merkle_root: CryptoHash::default(),
        };
        #[allow(deprecated)]
        let inner_rest = BlockHeaderInnerRestV5 {
            block_body_hash: hash(&borsh::to_vec(&chunk.chunk_hash).unwrap_or_default()),
            chunk_headers_root: merklize(&[chunk.chunk_hash]).0,
            chunk_mask: vec![true],
            next_gas_price: Balance::from_yoctonear(GAS_PRICE),
            total_supply: Balance::from_yoctonear(total_supply),
            block_ordinal: 1,
            latest_protocol_version: PROTOCOL_VERSION,
            chunk_endorsements: ChunkEndorsementsBitmap::genesis(),
            ..Default::default()
        };
        let header = seal(CryptoHash::default(), inner_lite, inner_rest, None);
        let block = StoredBlock {
            header,
            chunk,
            author: genesis.validators[0].account_id.clone(),
            epoch: 0,
            post_state_root: root,
            txs: vec![],
        };
        let mut block_tree = PartialMerkleTree::default();
        block_tree.insert(block.hash());
        let mut by_hash = HashMap::new();
        by_hash.insert(block.hash(), 0);
        let mut snapshots = BTreeMap::new();
        snapshots.insert(0, Arc::new(state.clone()));
        Self {
            genesis,
            blocks: vec![block],
            by_hash,
            state,
            snapshots,
            block_tree,
            epoch_light_client_blocks: HashMap::new(),
            mempool: vec![],
            pool_nonces: HashMap::new(),
            txs: HashMap::new(),
            outcomes: BTreeMap::new(),
            outcome_index: HashMap::new(),
            ibc,
            last_outcome_root: CryptoHash::default(),
            total_supply,
        }
    }

    /// The genesis accounts and keys.
    pub fn genesis(&self) -> &NearGenesis {
        &self.genesis
    }

    /// The latest block.
    pub fn head(&self) -> &StoredBlock {
        // `blocks` always holds the genesis block.
        &self.blocks[self.blocks.len() - 1]
    }

    /// The genesis block.
    pub fn genesis_block(&self) -> &StoredBlock {
        &self.blocks[0]
    }

    /// The block at `height`.
    pub fn block_at(&self, height: u64) -> Option<&StoredBlock> {
        usize::try_from(height)
            .ok()
            .and_then(|h| self.blocks.get(h))
    }

    /// The block with hash `h`.
    pub fn block_by_hash(&self, h: &CryptoHash) -> Option<&StoredBlock> {
        self.by_hash
            .get(h)
            .and_then(|height| self.block_at(*height))
    }

    /// The last final block (two below the head).
    pub fn final_block(&self) -> &StoredBlock {
        let h = self.head().height().saturating_sub(2);
        self.block_at(h).unwrap_or(&self.blocks[0])
    }

    /// Blocks per epoch.
    pub fn epoch_length(&self) -> u64 {
        self.genesis.epoch_length
    }

    /// Epoch index of block `height` (the genesis block belongs to the first epoch).
    pub fn epoch_of(&self, height: u64) -> u64 {
        height.saturating_sub(1) / self.epoch_length()
    }

    /// The id of epoch `epoch`; that of an epoch more than one ahead of the head is unknown.
    pub fn epoch_id(&self, epoch: u64) -> Option<EpochId> {
        if epoch == 0 {
            return Some(EpochId::default());
        }
        self.block_at((epoch - 1) * self.epoch_length())
            .map(|b| EpochId(b.hash()))
    }

    /// The block producers of epoch `epoch`, with their stakes, in approval order.
    pub fn block_producers(&self, epoch: u64) -> Vec<ValidatorStake> {
        stakes(&self.genesis, epoch)
    }

    /// The epoch index of an epoch id among known epochs.
    pub fn epoch_index(&self, id: &EpochId) -> Option<u64> {
        let last = self.epoch_of(self.head().height()) + 1;
        (0..=last).find(|e| self.epoch_id(*e).as_ref() == Some(id))
    }

    /// State after block `height`.
    pub fn state_at(&self, height: u64) -> Option<Arc<StateMap>> {
        self.snapshots.get(&height).cloned()
    }

    /// The IBC contract.
    pub fn ibc(&self) -> &IbcContract {
        &self.ibc
    }

    /// A transaction's outcome, once executed.
    pub fn tx(&self, hash: &CryptoHash) -> Option<&TxRecord> {
        self.txs.get(hash)
    }

    /// Whether `hash` waits in the pool.
    pub fn is_pending(&self, hash: &CryptoHash) -> bool {
        self.mempool.iter().any(|t| t.get_hash() == *hash)
    }

    /// Admits a transaction to the pool, or says why not (as nearcore's pool does).
    pub fn submit(&mut self, tx: SignedTransaction) -> Result<CryptoHash, InvalidTxError> {
        let h = tx.get_hash();
        if self.txs.contains_key(&h) || self.is_pending(&h) {
            // nearcore answers a known transaction with its status; admission is idempotent.
            return Ok(h);
        }
        let head = self.head().height();
        match self.block_by_hash(tx.transaction.block_hash()) {
            None => return Err(InvalidTxError::InvalidChain),
            Some(b) if b.height() + TRANSACTION_VALIDITY_PERIOD < head => {
                return Err(InvalidTxError::Expired)
            }
            Some(_) => {}
        }
        let key = (
            tx.transaction.signer_id().clone(),
            tx.transaction.public_key().clone(),
        );
        let used = self.pool_nonces.get(&key).copied();
        runtime::validate(&self.state, &tx, used, head)?;
        self.pool_nonces.insert(key, tx.transaction.nonce());
        self.mempool.push(tx);
        Ok(h)
    }

    /// Produces the next block at `timestamp_ns` (raised to stay above the previous block's), executing the pool.
    pub fn produce_block(&mut self, timestamp_ns: u64) -> &StoredBlock {
        match self.produce_block_with(timestamp_ns, |_, _| Ok::<(), std::convert::Infallible>(())) {
            Ok(block) => block,
            Err(never) => match never {},
        }
    }

    /// Produces the next block as [`NearChain::produce_block`] does, handing its sealed header and transactions to
    /// `keep` before anything is applied or shown; an error from `keep` leaves the chain and its pool as they were.
    pub fn produce_block_with<E>(
        &mut self,
        timestamp_ns: u64,
        keep: impl FnOnce(&BlockHeader, &[SignedTransaction]) -> Result<(), E>,
    ) -> Result<&StoredBlock, E> {
        let prev = self.head().clone();
        let height = prev.height() + 1;
        let epoch = self.epoch_of(height);
        let epoch_id = self.epoch_id(epoch).unwrap_or_default();
        let next_epoch_id = self.epoch_id(epoch + 1).unwrap_or_default();
        let bps = self.block_producers(epoch);
        let next_bp_hash = bp_hash(&self.block_producers(epoch + 1));
        let timestamp = timestamp_ns.max(prev.header.raw_timestamp() + 1);
        let txs = std::mem::take(&mut self.mempool);
        let tx_hashes: Vec<CryptoHash> = txs.iter().map(|t| t.get_hash()).collect();
        let tx_root = merklize(&txs).0;

        let chunk_parts = (
            prev.hash(),
            prev.post_state_root,
            self.last_outcome_root,
            tx_root,
            height,
        );
        let author_index = usize::try_from(height % bps.len() as u64).unwrap_or(0);
        let author = bps[author_index].account_id().clone();
        let author_key = self.secret_of(&author);
        let ch = chunk_hash(&chunk_parts);
        let chunk = ChunkHeaderView {
            chunk_hash: ch,
            prev_block_hash: prev.hash(),
            outcome_root: self.last_outcome_root,
            prev_state_root: prev.post_state_root,
            encoded_merkle_root: CryptoHash::default(),
            encoded_length: 0,
            height_created: height,
            height_included: height,
            shard_id: 0.into(),
            gas_used: Gas::ZERO,
            gas_limit: Gas::from_teragas(1_000),
            rent_paid: Balance::ZERO,
            validator_reward: Balance::ZERO,
            balance_burnt: Balance::ZERO,
            outgoing_receipts_root: CryptoHash::default(),
            tx_root,
            validator_proposals: vec![],
            congestion_info: None,
            bandwidth_requests: None,
            signature: author_key
                .as_ref()
                .map(|k| k.sign(ch.as_ref()))
                .unwrap_or_else(|| Signature::empty(near_crypto::KeyType::ED25519)),
        };
        let approvals = bps
            .iter()
            .map(|bp| {
                self.secret_of(bp.account_id()).map(|k| {
                    let data = Approval::get_data_for_sig(
                        &ApprovalInner::Endorsement(prev.hash()),
                        height,
                    );
                    Box::new(k.sign(&data))
                })
            })
            .collect();
        let last_final = self
            .block_at(height.saturating_sub(2))
            .map_or_else(CryptoHash::default, StoredBlock::hash);
        let random_value = CryptoHash::hash_borsh((prev.header.random_value(), height));
        let inner_lite = BlockHeaderInnerLite {
            height,
            epoch_id,
            next_epoch_id,
            prev_state_root: merklize(&[prev.post_state_root]).0,
            prev_outcome_root: merklize(&[self.last_outcome_root]).0,
            timestamp,
            next_bp_hash,
            block_merkle_root: self.block_tree.root(),
        };
        #[allow(deprecated)]
        let inner_rest = BlockHeaderInnerRestV5 {
            block_body_hash: hash(&borsh::to_vec(&ch).unwrap_or_default()),
            prev_chunk_outgoing_receipts_root: merklize(&[CryptoHash::default()]).0,
            chunk_headers_root: merklize(&[ch]).0,
            chunk_tx_root: merklize(&[tx_root]).0,
            random_value,
            chunk_mask: vec![true],
            next_gas_price: Balance::from_yoctonear(GAS_PRICE),
            total_supply: Balance::from_yoctonear(self.total_supply),
            last_final_block: last_final,
            last_ds_final_block: prev.hash(),
            block_ordinal: height + 1,
            prev_height: prev.height(),
            approvals,
            latest_protocol_version: PROTOCOL_VERSION,
            chunk_endorsements: ChunkEndorsementsBitmap::from_endorsements(vec![vec![true]]),
            ..Default::default()
        };
        let header = seal(prev.hash(), inner_lite, inner_rest, author_key.as_ref());
        let block_hash = *header.hash();
        if let Err(e) = keep(&header, &txs) {
            self.mempool = txs;
            return Err(e);
        }
        self.pool_nonces.clear();

        // Apply the chunk: the IBC host sees this block's height and time, and the state the header commits to.
        self.ibc
            .begin_block(height, timestamp, prev.post_state_root.0, next_bp_hash.0);
        let mut outcomes = Vec::new();
        let mut burnt_total = 0u128;
        for tx in &txs {
            let (outcome, burnt) =
                runtime::apply(&mut self.state, &mut self.ibc, tx, height, block_hash);
            burnt_total += burnt;
            outcomes.push(outcome.clone());
            self.txs.insert(tx.get_hash(), TxRecord { height, outcome });
        }
        self.total_supply = self.total_supply.saturating_sub(burnt_total);
        self.ibc.commit(&mut self.state);
        runtime::refresh_storage_usage(&mut self.state);
        let post_state_root = Trie::build(&self.state).root();
        let block_outcomes: Vec<ExecutionOutcomeWithIdView> = outcomes
            .iter()
            .flat_map(|o| std::iter::once(&o.transaction_outcome).chain(&o.receipts_outcome))
            .cloned()
            .collect();
        let outcome_hashes: Vec<Vec<CryptoHash>> =
            block_outcomes.iter().map(|o| o.to_hashes()).collect();
        self.last_outcome_root = merklize(&outcome_hashes).0;
        for (i, o) in block_outcomes.iter().enumerate() {
            self.outcome_index.insert(o.id, (height, i));
        }
        self.outcomes.insert(height, block_outcomes);

        let block = StoredBlock {
            header,
            chunk,
            author,
            epoch,
            post_state_root,
            txs: tx_hashes,
        };
        self.block_tree.insert(block_hash);
        self.by_hash.insert(block_hash, height);
        self.blocks.push(block);
        self.snapshots.insert(height, Arc::new(self.state.clone()));
        if height > STATES_RETAINED {
            self.snapshots = self.snapshots.split_off(&(height - STATES_RETAINED));
            let kept = self.outcomes.split_off(&(height - STATES_RETAINED));
            for old in std::mem::replace(&mut self.outcomes, kept).into_values() {
                for o in old {
                    self.outcome_index.remove(&o.id);
                }
            }
            self.ibc.prune_events(height - STATES_RETAINED);
        }
        if height == (epoch + 1) * self.epoch_length() {
            // The last block of its epoch: keep the light-client block a client one epoch behind will need.
            if let Some(lc) = self.light_client_block_for(height) {
                self.epoch_light_client_blocks.insert(epoch_id.0, lc);
            }
        }
        Ok(self.head())
    }

    fn secret_of(&self, account: &AccountId) -> Option<near_crypto::SecretKey> {
        self.genesis
            .validators
            .iter()
            .find(|v| &v.account_id == account)
            .map(|v| v.secret_key.clone())
    }

    /// The devnet's total supply after burnt fees.
    pub fn total_supply(&self) -> u128 {
        self.total_supply
    }
}

/// A block hash the devnet does not know.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("unknown block")]
pub struct UnknownBlock;

/// Hashes and signs a header (the genesis header carries no signature, as in nearcore).
fn seal(
    prev_hash: CryptoHash,
    inner_lite: BlockHeaderInnerLite,
    inner_rest: BlockHeaderInnerRestV5,
    signer: Option<&near_crypto::SecretKey>,
) -> BlockHeader {
    let lite = borsh::to_vec(&inner_lite).unwrap_or_default();
    let rest = borsh::to_vec(&inner_rest).unwrap_or_default();
    let hash = BlockHeader::compute_hash(prev_hash, &lite, &rest);
    let signature = signer.map_or_else(
        || Signature::empty(near_crypto::KeyType::ED25519),
        |k| k.sign(hash.as_ref()),
    );
    BlockHeader::BlockHeaderV5(BlockHeaderV5 {
        prev_hash,
        inner_lite,
        inner_rest,
        signature,
        hash,
    })
}
