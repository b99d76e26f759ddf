//! One chain's node: the mempool, block production on a timer, and the record of blocks, commits, results and
//! transactions that the RPC serves.
//!
//! The node drives any [`Application`] through CometBFT's sequence (begin block, deliver each tx, commit); the
//! app hash a block's execution returns is carried by the next block's header, as on a real chain.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use tendermint::abci;
use tendermint::block::signed_header::SignedHeader;
use tendermint::block::{self, Commit, Header};
use tendermint::{chain, consensus, validator, Block, Hash, Time};
use tokio::sync::broadcast;

use crate::consensus::{results_hash, tx_hash, BlockSigner, ConsensusError, Schedule, Tip};
use crate::persist::{BlockLog, LoggedBlock, PersistError};
use crate::rpc::{BlockResults, NodeEvent, NodeView, TxRecord};

/// The state machine a node runs, in CometBFT's ABCI order.
pub trait Application: Send + 'static {
    /// Mempool admission.
    fn check_tx(&mut self, tx: &[u8]) -> abci::response::CheckTx;
    /// Starts executing the block with this header.
    fn begin_block(&mut self, header: &Header);
    /// Executes one transaction of the current block.
    fn deliver_tx(&mut self, tx: &[u8]) -> abci::types::ExecTxResult;
    /// Ends and commits the block; returns the app hash after it.
    fn commit(&mut self) -> Vec<u8>;
    /// Answers `abci_query`; `height` 0 means the latest committed block.
    fn query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> abci::response::Query;
    /// The app hash of the last commit (at start: the genesis state's).
    fn last_app_hash(&self) -> Vec<u8>;
}

/// Errors from the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Building or signing a block failed.
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    /// A lock was poisoned by a panic elsewhere; the node cannot continue safely.
    #[error("node state lock poisoned")]
    Poisoned,
    /// The application returned an app hash CometBFT cannot carry.
    #[error("invalid app hash: {0}")]
    AppHash(String),
    /// The block log could not be written or replayed.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// Everything recorded about one decided block.
#[derive(Clone, Debug)]
pub struct BlockRecord {
    /// The block id (header hash and part-set header).
    pub id: block::Id,
    /// The block, with its transactions and the previous block's commit.
    pub block: Arc<Block>,
    /// This block's own commit, signed by every validator.
    pub commit: Commit,
    /// Transaction results, events and the app hash after the block.
    pub results: Arc<BlockResults>,
    /// The block's transactions with their results.
    pub txs: Vec<Arc<TxRecord>>,
    /// Time spent executing the block: begin block, every transaction, commit. Benchmarks read it.
    pub exec_time: Duration,
}

/// The decided chain.
#[derive(Default)]
pub struct ChainRecord {
    blocks: Vec<Arc<BlockRecord>>,
    txs: HashMap<Hash, (u64, u32)>,
    heights: HashMap<Hash, u64>,
    /// Every `(type.attribute, value)` a committed transaction emitted, to the transactions that emitted it: the
    /// index a CometBFT node's kv indexer keeps, so `tx_search` on an attribute does not scan the chain. Each list
    /// is in inclusion order (blocks are appended in height order, their transactions in index order).
    attributes: HashMap<(String, String), Vec<(u64, u32)>>,
}

impl ChainRecord {
    /// Height of the newest block, 0 before the first.
    pub fn latest_height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Option<&Arc<BlockRecord>> {
        let index = usize::try_from(height.checked_sub(1)?).ok()?;
        self.blocks.get(index)
    }

    /// Every decided block, oldest first.
    pub fn blocks(&self) -> &[Arc<BlockRecord>] {
        &self.blocks
    }

    /// The included transaction with this hash.
    pub fn tx(&self, hash: &Hash) -> Option<Arc<TxRecord>> {
        let (height, index) = *self.txs.get(hash)?;
        self.block(height)?.txs.get(index as usize).cloned()
    }

    /// Every included transaction that emitted each `(key, value)` of `pairs` under its composite key
    /// (`send_packet.packet_sequence`), oldest first. As CometBFT's kv indexer, it narrows by each pair: the
    /// positions of the rarest pair are checked against the others', and only those left are read.
    pub fn txs_with_attributes(&self, pairs: &[(&str, &str)]) -> Vec<Arc<TxRecord>> {
        let mut lists = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            match self
                .attributes
                .get(&((*key).to_owned(), (*value).to_owned()))
            {
                Some(found) => lists.push(found.as_slice()),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let Some((rarest, others)) = lists.split_first() else {
            return Vec::new();
        };
        rarest
            .iter()
            // Each list is in inclusion order (`index` runs block by block), so a position is found by bisection.
            .filter(|at| others.iter().all(|l| l.binary_search(at).is_ok()))
            .filter_map(|(height, index)| self.block(*height)?.txs.get(*index as usize).cloned())
            .collect()
    }

    fn index(&mut self, tx: &TxRecord) {
        for event in &tx.result.events {
            for attr in &event.attributes {
                let key = format!(
                    "{}.{}",
                    event.kind,
                    String::from_utf8_lossy(attr.key_bytes())
                );
                let value = String::from_utf8_lossy(attr.value_bytes()).into_owned();
                let at = (tx.height, tx.index);
                let entry = self.attributes.entry((key, value)).or_default();
                // One entry per transaction even when it emits the same pair twice (two transfers in one tx).
                if entry.last() != Some(&at) {
                    entry.push(at);
                }
            }
        }
    }

    /// The height of the block with this header hash.
    pub fn height_of(&self, hash: &Hash) -> Option<u64> {
        self.heights.get(hash).copied()
    }
}

/// A running chain: app, mempool, signer and record.
pub struct Node<A: Application> {
    chain_id: chain::Id,
    genesis_time: Time,
    signer: BlockSigner,
    app: Mutex<A>,
    mempool: Mutex<Mempool>,
    record: RwLock<ChainRecord>,
    events: broadcast::Sender<NodeEvent>,
    /// Where decided blocks are written before anyone sees them, for a chain kept under its home.
    log: Mutex<Option<BlockLog>>,
}

/// How many transaction hashes the mempool remembers, as CometBFT's `mempool.cache_size` (default 10,000).
const MEMPOOL_CACHE: usize = 10_000;

#[derive(Default)]
struct Mempool {
    txs: Vec<Vec<u8>>,
    /// The hashes of the last [`MEMPOOL_CACHE`] admitted transactions, whether still waiting or already in a
    /// block: like CometBFT's mempool cache, the same bytes sent again are refused, also after their block.
    hashes: HashSet<Hash>,
    /// The same hashes, oldest first, to forget beyond the cache size.
    order: std::collections::VecDeque<Hash>,
}

/// Why the mempool refused a transaction that CheckTx accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The same bytes are already waiting.
    #[error("tx already exists in cache")]
    Duplicate,
}

impl<A: Application> Node<A> {
    /// A node at height 0 for `app`, its blocks signed by the validators `schedule` names for each height.
    pub fn new(chain_id: chain::Id, genesis_time: Time, schedule: Schedule, app: A) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            signer: BlockSigner::with_schedule(chain_id.clone(), schedule),
            chain_id,
            genesis_time,
            app: Mutex::new(app),
            mempool: Mutex::new(Mempool::default()),
            record: RwLock::new(ChainRecord::default()),
            events,
            log: Mutex::new(None),
        }
    }

    /// From now on every decided block is appended to `log` (and synced) before the node shows it.
    pub fn keep_blocks_in(&self, log: BlockLog) -> Result<(), NodeError> {
        *self.log.lock().map_err(|_| NodeError::Poisoned)? = Some(log);
        Ok(())
    }

    /// Decides a block from the log again: its transactions at its time, through the application. The block must
    /// come out with the id it was logged with.
    pub fn replay(&self, logged: &LoggedBlock) -> Result<(), NodeError> {
        let record = self.decide(Some(logged.txs.clone()), logged.time)?;
        if record.id.hash != logged.id || record.block.header().height.value() != logged.height {
            return Err(PersistError::Diverged {
                height: logged.height,
                recorded: logged.id.to_string(),
                got: record.id.hash.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// The chain id.
    pub fn chain_id(&self) -> &chain::Id {
        &self.chain_id
    }

    /// The genesis time.
    pub fn genesis_time(&self) -> Time {
        self.genesis_time
    }

    /// The block signer (validator set and consensus parameters).
    pub fn signer(&self) -> &BlockSigner {
        &self.signer
    }

    /// Read access to the decided chain.
    pub fn record(&self) -> Result<RwLockReadGuard<'_, ChainRecord>, NodeError> {
        self.record.read().map_err(|_| NodeError::Poisoned)
    }

    /// The application, for queries.
    pub fn app(&self) -> Result<MutexGuard<'_, A>, NodeError> {
        self.app.lock().map_err(|_| NodeError::Poisoned)
    }

    /// Block and transaction events.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Transactions waiting for the next block.
    pub fn mempool_size(&self) -> usize {
        self.mempool.lock().map(|m| m.txs.len()).unwrap_or(0)
    }

    /// Runs CheckTx and, when it passes, queues the transaction for the next block.
    pub fn submit_tx(&self, tx: Vec<u8>) -> Result<abci::response::CheckTx, NodeError> {
        let hash = tx_hash(&tx);
        let mut mempool = self.mempool.lock().map_err(|_| NodeError::Poisoned)?;
        if mempool.hashes.contains(&hash) {
            return Ok(abci::response::CheckTx {
                code: 19.into(),
                codespace: "sdk".into(),
                log: MempoolError::Duplicate.to_string(),
                ..Default::default()
            });
        }
        // Lock order: mempool then app, here and in produce_block, so admission and execution never interleave.
        let response = self.app()?.check_tx(&tx);
        if response.code.is_ok() {
            mempool.hashes.insert(hash);
            mempool.order.push_back(hash);
            if mempool.order.len() > MEMPOOL_CACHE {
                if let Some(old) = mempool.order.pop_front() {
                    mempool.hashes.remove(&old);
                }
            }
            mempool.txs.push(tx);
        }
        Ok(response)
    }

    /// Decides the next block at `now` with every waiting transaction, and announces it.
    pub fn produce_block(&self, now: Time) -> Result<Arc<BlockRecord>, NodeError> {
        self.decide(None, now)
    }

    /// Decides the next block with `txs`, or with the mempool's transactions when `None`.
    fn decide(&self, txs: Option<Vec<Vec<u8>>>, now: Time) -> Result<Arc<BlockRecord>, NodeError> {
        let mut mempool = self.mempool.lock().map_err(|_| NodeError::Poisoned)?;
        let txs = match txs {
            Some(txs) => txs,
            None => std::mem::take(&mut mempool.txs),
        };
        let mut app = self.app()?;
        let tip = self.tip(&app)?;
        let header = self.signer.next_header(&tip, &txs, now)?;
        let started = std::time::Instant::now();
        app.begin_block(&header);
        let tx_results: Vec<_> = txs.iter().map(|tx| app.deliver_tx(tx)).collect();
        let app_hash = app.commit();
        let exec_time = started.elapsed();
        drop(app);
        drop(mempool);

        let (id, block, commit) = self.signer.finalize(header, txs, tip.commit)?;
        let height = block.header().height.value();
        let txs: Vec<Arc<TxRecord>> = block
            .data()
            .iter()
            .zip(&tx_results)
            .enumerate()
            .map(|(index, (tx, result))| {
                Arc::new(TxRecord {
                    hash: tx_hash(tx),
                    height,
                    index: index as u32,
                    tx: tx.clone(),
                    result: result.clone(),
                })
            })
            .collect();
        let results = Arc::new(BlockResults {
            height,
            tx_results,
            finalize_block_events: Vec::new(),
            validator_updates: self.signer.schedule().updates_at(height),
            consensus_param_updates: None,
            app_hash: app_hash
                .try_into()
                .map_err(|e: tendermint::Error| NodeError::AppHash(e.to_string()))?,
        });
        let record = Arc::new(BlockRecord {
            id,
            block: Arc::new(block),
            commit,
            results,
            txs,
            exec_time,
        });
        if let Some(log) = self.log.lock().map_err(|_| NodeError::Poisoned)?.as_mut() {
            log.append(&LoggedBlock {
                height,
                time: record.block.header().time,
                txs: record.block.data().to_vec(),
                id: id.hash,
            })?;
        }
        {
            let mut chain = self.record.write().map_err(|_| NodeError::Poisoned)?;
            for tx in &record.txs {
                chain.txs.insert(tx.hash, (height, tx.index));
                chain.index(tx);
            }
            chain.heights.insert(id.hash, height);
            chain.blocks.push(Arc::clone(&record));
        }
        // Transactions first, then the block, the order the RPC server's waiters rely on. Nobody listening
        // is fine: the record keeps everything.
        for tx in &record.txs {
            let _ = self.events.send(NodeEvent::Tx(Arc::clone(tx)));
        }
        let _ = self.events.send(NodeEvent::NewBlock {
            block_id: record.id,
            block: Arc::clone(&record.block),
            results: Arc::clone(&record.results),
        });
        Ok(record)
    }

    fn tip(&self, app: &A) -> Result<Tip, NodeError> {
        let chain = self.record()?;
        Ok(match chain.blocks.last() {
            None => Tip {
                height: 0,
                block_id: None,
                commit: None,
                app_hash: app.last_app_hash(),
                results_hash: results_hash(&[]),
                time: self.genesis_time,
            },
            Some(last) => Tip {
                height: chain.latest_height(),
                block_id: Some(last.id),
                commit: Some(last.commit.clone()),
                app_hash: last.results.app_hash.as_bytes().to_vec(),
                results_hash: results_hash(&last.results.tx_results),
                time: last.block.header().time,
            },
        })
    }
}

/// What the RPC server reads: the node exposes its record, app and mempool through CometBFT's RPC shapes.
impl<A: Application> NodeView for Node<A> {
    fn chain_id(&self) -> chain::Id {
        self.chain_id.clone()
    }

    #[allow(
        clippy::expect_used,
        reason = "the node info is built from constants and validated ids"
    )]
    fn node_info(&self) -> tendermint::node::Info {
        let id = hex::encode(self.signer.schedule().node_key().info().address.as_bytes());
        let info = serde_json::json!({
            "protocol_version": {"p2p": "8", "block": crate::consensus::BLOCK_PROTOCOL.to_string(), "app": "0"},
            "id": id,
            "listen_addr": "tcp://127.0.0.1:26656",
            "network": self.chain_id.as_str(),
            "version": NODE_VERSION,
            "channels": "40202122233038606100",
            "moniker": "devnet",
            "other": {"tx_index": "on", "rpc_address": ""}
        });
        // Every field above is a constant or an already-valid id, so decoding cannot fail.
        serde_json::from_value(info).expect("static node info is valid")
    }

    fn validator_info(&self) -> validator::Info {
        // The node is the first genesis validator; out of the set, CometBFT reports it with power 0.
        let own = self.signer.schedule().node_key().info();
        let current = self.signer.validator_set(self.latest_height() + 1);
        current.validator(own.address).unwrap_or(validator::Info {
            power: Default::default(),
            ..own
        })
    }

    fn genesis_time(&self) -> Time {
        self.genesis_time
    }

    fn earliest_height(&self) -> u64 {
        1
    }

    fn latest_height(&self) -> u64 {
        self.record().map(|r| r.latest_height()).unwrap_or(0)
    }

    fn block(&self, height: u64) -> Option<(block::Id, Arc<Block>)> {
        let record = self.record().ok()?;
        let b = record.block(height)?;
        Some((b.id, Arc::clone(&b.block)))
    }

    fn height_of_block(&self, hash: &Hash) -> Option<u64> {
        self.record().ok()?.height_of(hash)
    }

    fn commit(&self, height: u64) -> Option<SignedHeader> {
        let record = self.record().ok()?;
        let b = record.block(height)?;
        SignedHeader::new(b.block.header().clone(), b.commit.clone()).ok()
    }

    fn block_results(&self, height: u64) -> Option<Arc<BlockResults>> {
        Some(Arc::clone(&self.record().ok()?.block(height)?.results))
    }

    fn validators(&self, height: u64) -> Option<validator::Set> {
        (height >= 1 && height <= self.latest_height() + 1)
            .then(|| self.signer.validator_set(height))
    }

    fn consensus_params(&self, height: u64) -> Option<consensus::Params> {
        (height >= 1 && height <= self.latest_height() + 1).then(|| self.signer.params().clone())
    }

    fn abci_info(&self) -> abci::response::Info {
        let (height, app_hash) = match self.record() {
            Ok(r) => match r.blocks().last() {
                Some(last) => (r.latest_height(), last.results.app_hash.clone()),
                None => (0, Default::default()),
            },
            Err(_) => (0, Default::default()),
        };
        abci::response::Info {
            data: "devnet".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 0,
            last_block_height: block::Height::try_from(height).unwrap_or_default(),
            last_block_app_hash: app_hash,
        }
    }

    fn abci_query(
        &self,
        path: &str,
        data: &[u8],
        height: u64,
        prove: bool,
    ) -> abci::response::Query {
        // An SDK app registers the node's services (GetTx, GetNodeInfo, ...) on its gRPC query router too, so
        // they answer over ABCI as over gRPC (Hermes's health check asks GetNodeInfo this way).
        if let Some(answer) = crate::grpc::node_service(self, path, data) {
            let at = if height == 0 {
                self.latest_height()
            } else {
                height
            };
            let height = block::Height::try_from(at).unwrap_or_default();
            return match answer {
                Ok(value) => abci::response::Query {
                    value: value.into(),
                    height,
                    ..Default::default()
                },
                Err(e) => abci::response::Query {
                    code: e.abci_code().into(),
                    codespace: "sdk".into(),
                    log: e.message().to_owned(),
                    height,
                    ..Default::default()
                },
            };
        }
        match self.app() {
            Ok(app) => app.query(path, data, height, prove),
            Err(e) => abci::response::Query {
                code: 1.into(),
                log: e.to_string(),
                ..Default::default()
            },
        }
    }

    fn submit_tx(&self, tx: Vec<u8>) -> abci::response::CheckTx {
        Node::submit_tx(self, tx).unwrap_or_else(|e| abci::response::CheckTx {
            code: 1.into(),
            log: e.to_string(),
            ..Default::default()
        })
    }

    fn tx(&self, hash: &Hash) -> Option<Arc<TxRecord>> {
        self.record().ok()?.tx(hash)
    }

    fn txs(&self, heights: RangeInclusive<u64>) -> Vec<Arc<TxRecord>> {
        let Ok(record) = self.record() else {
            return Vec::new();
        };
        heights
            .filter_map(|h| record.block(h))
            .flat_map(|b| b.txs.iter().cloned())
            .collect()
    }

    fn txs_with_attributes(&self, pairs: &[(&str, &str)]) -> Option<Vec<Arc<TxRecord>>> {
        Some(self.record().ok()?.txs_with_attributes(pairs))
    }

    fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        Node::subscribe(self)
    }
}

/// The CometBFT version the devnet reports; relayers pick their RPC dialect from it.
pub const NODE_VERSION: &str = "0.38.12";

/// Produces a block every `block_time` until `shutdown` fires, except while `paused` holds true (a halted chain:
/// RPC still answers and the mempool still takes transactions). Block times follow the wall clock.
pub async fn run_blocks<A: Application>(
    node: Arc<Node<A>>,
    block_time: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    paused: tokio::sync::watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let mut ticker = tokio::time::interval(block_time);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if *paused.borrow() {
                    continue;
                }
                let node = Arc::clone(&node);
                // Executing a block is CPU work; keep it off the async workers that serve RPC.
                tokio::task::spawn_blocking(move || node.produce_block(Time::now()))
                    .await
                    .map_err(|_| NodeError::Poisoned)??;
            }
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
