//! The contract between the RPC server and the chain it serves: the server reads everything through [`NodeView`],
//! so the chain core can be swapped (real devnet node, or a hand-made fake in tests) without touching the RPC code.

use std::ops::RangeInclusive;
use std::sync::Arc;

use tendermint::abci::types::ExecTxResult;
use tendermint::abci::{self, response};
use tendermint::block::signed_header::SignedHeader;
use tendermint::{block, chain, consensus, node, validator, AppHash, Block, Hash, Time};
use tokio::sync::broadcast;

/// What the chain executed for one block: the result of ABCI `FinalizeBlock`, as `block_results` and the
/// `NewBlock` event report it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockResults {
    /// Height of the block these results belong to.
    pub height: u64,
    /// One result per transaction, in block order.
    pub tx_results: Vec<ExecTxResult>,
    /// Block-level events emitted by `FinalizeBlock` (outside any transaction).
    pub finalize_block_events: Vec<abci::Event>,
    /// Validator set changes returned by the application.
    pub validator_updates: Vec<validator::Update>,
    /// Consensus parameter changes returned by the application, if any.
    pub consensus_param_updates: Option<consensus::Params>,
    /// The application hash after executing this block (it appears in the header of the next block).
    pub app_hash: AppHash,
}

/// A committed transaction, as `tx`, `tx_search` and `Tx` events report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRecord {
    /// SHA-256 of the transaction bytes.
    pub hash: Hash,
    /// Height of the block that includes the transaction.
    pub height: u64,
    /// Position of the transaction inside its block.
    pub index: u32,
    /// The raw transaction bytes.
    pub tx: Vec<u8>,
    /// What executing the transaction produced (code, log, gas, events).
    pub result: ExecTxResult,
}

/// Something that happened on the chain, pushed to WebSocket subscribers and to `broadcast_tx_commit` waiters.
///
/// Publish a block's events only once the block, its results and its transactions are answerable through
/// [`NodeView`] (a subscriber typically queries right after an event): one [`NodeEvent::Tx`] per transaction in
/// block order, then [`NodeEvent::NewBlock`]. The payloads are behind `Arc` so a broadcast to many receivers
/// never deep-copies a block.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// A block was committed.
    NewBlock {
        /// The committed block's id.
        block_id: block::Id,
        /// The committed block.
        block: Arc<Block>,
        /// What `FinalizeBlock` returned for it.
        results: Arc<BlockResults>,
    },
    /// A transaction was committed in a block.
    Tx(Arc<TxRecord>),
}

/// Read access to a running chain, implemented by the chain core.
///
/// Every method is synchronous and called from async tasks, so each must return quickly (take a lock, clone an
/// `Arc`, return). Heights are plain `u64`; a method given a height it does not have returns `None` — the server
/// validates heights against [`NodeView::earliest_height`] and [`NodeView::latest_height`] first, so `None` there
/// means "pruned or not stored".
pub trait NodeView: Send + Sync + 'static {
    /// The chain id, as in every header.
    fn chain_id(&self) -> chain::Id;

    /// This node's P2P identity, reported by `status` (and its `network` by `net_info`).
    fn node_info(&self) -> node::Info;

    /// This node's validator key and power, reported by `status`.
    fn validator_info(&self) -> validator::Info;

    /// The genesis time, reported by `genesis`.
    fn genesis_time(&self) -> Time;

    /// The lowest height whose block is still stored (the initial height when nothing is pruned).
    fn earliest_height(&self) -> u64;

    /// The highest committed height; 0 before the first block is committed. [`NodeView::commit`] must answer for
    /// it (with the node's own seen commit, since the next block that records it does not exist yet).
    fn latest_height(&self) -> u64;

    /// The block at `height` and its id.
    fn block(&self, height: u64) -> Option<(block::Id, Arc<Block>)>;

    /// The height of the block whose id hash is `hash`, for `block_by_hash` and `header_by_hash`.
    fn height_of_block(&self, hash: &Hash) -> Option<u64>;

    /// The header at `height` together with the commit that signs it (a commit for `height`, as light clients
    /// need).
    fn commit(&self, height: u64) -> Option<SignedHeader>;

    /// What `FinalizeBlock` returned at `height`.
    fn block_results(&self, height: u64) -> Option<Arc<BlockResults>>;

    /// The validator set that signs the block at `height` (its `validators_hash`). Must also answer for
    /// `latest_height() + 1` (the next set, already fixed by the latest header): relayers ask for it when they
    /// build a client update for the latest block.
    fn validators(&self, height: u64) -> Option<validator::Set>;

    /// The consensus parameters in force at `height`; like [`NodeView::validators`], up to `latest_height() + 1`.
    fn consensus_params(&self, height: u64) -> Option<consensus::Params>;

    /// ABCI `Info`: application name, version, last height and app hash.
    fn abci_info(&self) -> response::Info;

    /// ABCI `Query` against the application state. `height` 0 means the latest committed state.
    fn abci_query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> response::Query;

    /// Runs ABCI `CheckTx` on `tx` and, if it returns code 0, admits the transaction to the mempool so a later
    /// block includes it. A transaction whose hash is in the mempool cache (recently admitted, waiting or already in a
    /// block) is rejected with a non-zero code.
    fn submit_tx(&self, tx: Vec<u8>) -> response::CheckTx;

    /// The committed transaction with this hash.
    fn tx(&self, hash: &Hash) -> Option<Arc<TxRecord>>;

    /// Every committed transaction whose block height is in `heights`, ordered by height then index. Returning
    /// `Arc`s lets `tx_search` scan thousands of transactions without copying them.
    fn txs(&self, heights: RangeInclusive<u64>) -> Vec<Arc<TxRecord>>;

    /// Every committed transaction that emitted each `(key, value)` of `pairs` (composite event keys), from the
    /// node's attribute index, oldest first; `None` when the node keeps no index (then `tx_search` scans
    /// [`NodeView::txs`]).
    fn txs_with_attributes(&self, _pairs: &[(&str, &str)]) -> Option<Vec<Arc<TxRecord>>> {
        None
    }

    /// A fresh receiver of chain events. The server subscribes once per WebSocket subscription and per
    /// `broadcast_tx_commit` call. Give the channel room for a few blocks' worth of events (say 1024): a
    /// subscription whose receiver lags is cancelled with "subscription was canceled (reason: slow client)".
    fn subscribe(&self) -> broadcast::Receiver<NodeEvent>;
}
