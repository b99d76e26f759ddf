//! One chain's node: the mempool, block production on a timer, and the record of blocks, commits, results and
//! transactions that the RPC serves.
//!
//! The node drives any [`Application`] through CometBFT's sequence (begin block, deliver each tx, commit); the
//! app hash a block's execution returns is carried by the next block's header, as on a real chain.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use tendermint::abci;
use tendermint::block::{self, Commit, Header};
use tendermint::{chain, Block, Hash, Time};
use tokio::sync::broadcast;

use crate::consensus::{results_hash, tx_hash, BlockSigner, ConsensusError, Tip};
use crate::genesis::ValidatorKey;

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
}

/// Everything recorded about one decided block.
#[derive(Clone, Debug)]
pub struct BlockRecord {
    /// The block id (header hash and part-set header).
    pub id: block::Id,
    /// The block, with its transactions and the previous block's commit.
    pub block: Block,
    /// This block's own commit, signed by every validator.
    pub commit: Commit,
    /// One result per transaction, in block order.
    pub tx_results: Vec<abci::types::ExecTxResult>,
    /// The app hash after executing this block (in the next header).
    pub app_hash: Vec<u8>,
}

/// A transaction included in a block.
#[derive(Clone, Debug)]
pub struct TxRecord {
    /// sha256 of the transaction bytes.
    pub hash: Hash,
    /// The block that included it.
    pub height: u64,
    /// Its position in the block.
    pub index: u32,
    /// The transaction bytes.
    pub tx: Vec<u8>,
    /// Its execution result.
    pub result: abci::types::ExecTxResult,
}

/// What subscribers are told after each block.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// A block was decided.
    NewBlock(Arc<BlockRecord>),
    /// A transaction was included (one per tx, after its block's `NewBlock`).
    Tx(Arc<TxRecord>),
}

/// The decided chain.
#[derive(Default)]
pub struct ChainRecord {
    blocks: Vec<Arc<BlockRecord>>,
    txs: HashMap<Hash, (u64, u32)>,
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
    pub fn tx(&self, hash: &Hash) -> Option<TxRecord> {
        let (height, index) = *self.txs.get(hash)?;
        let record = self.block(height)?;
        let tx = record.block.data().get(index as usize)?.clone();
        let result = record.tx_results.get(index as usize)?.clone();
        Some(TxRecord {
            hash: *hash,
            height,
            index,
            tx,
            result,
        })
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
}

#[derive(Default)]
struct Mempool {
    txs: Vec<Vec<u8>>,
    hashes: HashSet<Hash>,
}

/// Why the mempool refused a transaction that CheckTx accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The same bytes are already waiting.
    #[error("tx already exists in cache")]
    Duplicate,
}

impl<A: Application> Node<A> {
    /// A node at height 0 for `app`, signing with `validators`.
    pub fn new(
        chain_id: chain::Id,
        genesis_time: Time,
        validators: Vec<ValidatorKey>,
        app: A,
    ) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            signer: BlockSigner::new(chain_id.clone(), validators),
            chain_id,
            genesis_time,
            app: Mutex::new(app),
            mempool: Mutex::new(Mempool::default()),
            record: RwLock::new(ChainRecord::default()),
            events,
        }
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
            mempool.txs.push(tx);
        }
        Ok(response)
    }

    /// Decides the next block at `now` with every waiting transaction, and announces it.
    pub fn produce_block(&self, now: Time) -> Result<Arc<BlockRecord>, NodeError> {
        let mut mempool = self.mempool.lock().map_err(|_| NodeError::Poisoned)?;
        let txs = std::mem::take(&mut mempool.txs);
        mempool.hashes.clear();
        let mut app = self.app()?;
        let tip = self.tip(&app)?;
        let header = self.signer.next_header(&tip, &txs, now)?;
        app.begin_block(&header);
        let tx_results: Vec<_> = txs.iter().map(|tx| app.deliver_tx(tx)).collect();
        let app_hash = app.commit();
        drop(app);
        drop(mempool);

        let (id, block, commit) = self.signer.finalize(header, txs, tip.commit)?;
        let height = block.header().height.value();
        let record = Arc::new(BlockRecord {
            id,
            block,
            commit,
            tx_results,
            app_hash,
        });
        {
            let mut chain = self.record.write().map_err(|_| NodeError::Poisoned)?;
            for (index, tx) in record.block.data().iter().enumerate() {
                chain.txs.insert(tx_hash(tx), (height, index as u32));
            }
            chain.blocks.push(Arc::clone(&record));
        }
        // Nobody listening is fine: the record keeps everything.
        let _ = self.events.send(NodeEvent::NewBlock(Arc::clone(&record)));
        for (index, tx) in record.block.data().iter().enumerate() {
            let tx_record = TxRecord {
                hash: tx_hash(tx),
                height,
                index: index as u32,
                tx: tx.clone(),
                result: record.tx_results[index].clone(),
            };
            let _ = self.events.send(NodeEvent::Tx(Arc::new(tx_record)));
        }
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
                app_hash: last.app_hash.clone(),
                results_hash: results_hash(&last.tx_results),
                time: last.block.header().time,
            },
        })
    }
}

/// Produces a block every `block_time` until `shutdown` fires. Block times follow the wall clock.
pub async fn run_blocks<A: Application>(
    node: Arc<Node<A>>,
    block_time: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let mut ticker = tokio::time::interval(block_time);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
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
mod tests {
    use super::*;
    use crate::genesis::{Genesis, GenesisOptions};
    use sha2::{Digest, Sha256};

    /// A key-value app: `key=value` transactions, app hash = sha256 over all pairs.
    #[derive(Default)]
    struct KvApp {
        committed: std::collections::BTreeMap<String, String>,
        pending: std::collections::BTreeMap<String, String>,
        hash: Vec<u8>,
    }

    impl Application for KvApp {
        fn check_tx(&mut self, tx: &[u8]) -> abci::response::CheckTx {
            if tx.contains(&b'=') {
                return abci::response::CheckTx::default();
            }
            abci::response::CheckTx {
                code: 1.into(),
                log: "not key=value".into(),
                ..Default::default()
            }
        }
        fn begin_block(&mut self, _header: &Header) {}
        fn deliver_tx(&mut self, tx: &[u8]) -> abci::types::ExecTxResult {
            let text = String::from_utf8_lossy(tx);
            let (k, v) = text.split_once('=').unwrap_or((&text, ""));
            self.pending.insert(k.to_owned(), v.to_owned());
            abci::types::ExecTxResult::default()
        }
        fn commit(&mut self) -> Vec<u8> {
            self.committed = self.pending.clone();
            self.hash = Sha256::digest(format!("{:?}", self.committed)).to_vec();
            self.hash.clone()
        }
        fn query(
            &self,
            _path: &str,
            data: &[u8],
            _height: u64,
            _prove: bool,
        ) -> abci::response::Query {
            let mut r = abci::response::Query::default();
            let key = String::from_utf8_lossy(data).into_owned();
            r.value = self
                .committed
                .get(&key)
                .cloned()
                .unwrap_or_default()
                .into_bytes()
                .into();
            r
        }
        fn last_app_hash(&self) -> Vec<u8> {
            self.hash.clone()
        }
    }

    fn node() -> Node<KvApp> {
        let g = Genesis::build(&GenesisOptions {
            seed: Some("node".into()),
            ..Default::default()
        })
        .unwrap();
        Node::new(
            g.chain_id.clone(),
            g.genesis_time,
            g.validators.clone(),
            KvApp::default(),
        )
    }

    #[test]
    fn blocks_carry_the_previous_app_hash_and_index_their_txs() {
        let node = node();
        let mut events = node.subscribe();
        assert!(node.submit_tx(b"a=1".to_vec()).unwrap().code.is_ok());
        assert_eq!(
            node.submit_tx(b"a=1".to_vec()).unwrap().log,
            "tx already exists in cache"
        );
        assert!(node.submit_tx(b"junk".to_vec()).unwrap().code.is_err());
        assert_eq!(node.mempool_size(), 1);

        let now = (node.genesis_time() + Duration::from_secs(1)).unwrap();
        let b1 = node.produce_block(now).unwrap();
        assert_eq!(b1.block.data().len(), 1);
        let b2 = node.produce_block(now).unwrap();
        assert_eq!(
            b2.block.header().app_hash.as_bytes(),
            b1.app_hash.as_slice()
        );
        assert!(
            b2.block.header().time > b1.block.header().time,
            "time moves forward"
        );
        assert_eq!(
            b2.block.last_commit().as_ref().map(|c| c.block_id),
            Some(b1.id)
        );

        let chain = node.record().unwrap();
        assert_eq!(chain.latest_height(), 2);
        let tx = chain.tx(&tx_hash(b"a=1")).unwrap();
        assert_eq!((tx.height, tx.index), (1, 0));
        drop(chain);

        assert!(
            matches!(events.try_recv().unwrap(), NodeEvent::NewBlock(b) if b.block.header().height.value() == 1)
        );
        assert!(matches!(events.try_recv().unwrap(), NodeEvent::Tx(t) if t.tx == b"a=1"));
        assert_eq!(
            node.app().unwrap().query("", b"a", 0, false).value.as_ref(),
            b"1"
        );
    }

    #[tokio::test]
    async fn the_block_loop_produces_until_shutdown() {
        let node = Arc::new(node());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut events = node.subscribe();
        let task = tokio::spawn(run_blocks(
            Arc::clone(&node),
            Duration::from_millis(20),
            stopped,
        ));
        for _ in 0..3 {
            events.recv().await.unwrap();
        }
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        assert!(node.record().unwrap().latest_height() >= 3);
    }
}
