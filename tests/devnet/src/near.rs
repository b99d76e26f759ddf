//! A local NEAR chain for relayd's tests and demo: nearcore's JSON-RPC, block headers and light-client blocks
//! signed by several ed25519 block producers, state in NEAR's trie format, and ibc-rs behind the near-ibc
//! contract interface. Differences from a real NEAR node are listed in `docs/devnet.md`.

pub mod chain;
pub mod genesis;
pub mod ibc;
pub mod ledger;
pub mod persist;
pub mod proof;
pub mod rpc;
pub mod runtime;
pub mod transfer;
pub mod trie;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use chain::NearChain;
use persist::NearLoggedBlock;

use crate::persist::BlockLog;
pub use genesis::{NearAccount, NearGenesis, NearGenesisError, NearGenesisOptions};

/// How to run the NEAR devnet.
#[derive(Debug, Clone)]
pub struct NearOptions {
    /// Accounts, keys, epoch length.
    pub genesis: NearGenesisOptions,
    /// JSON-RPC address; port 0 picks a free port.
    pub rpc_addr: SocketAddr,
    /// Time between blocks (100 ms or more).
    pub block_time: Duration,
    /// Where to write near-cli credential files and `near.json`, if anywhere.
    pub home: Option<PathBuf>,
    /// Keep the chain under `home/data` ([`persist`]) and, when a chain is stored there already, produce its
    /// blocks again and go on as the same chain (its stored genesis options win over these).
    pub persist: bool,
}

impl NearOptions {
    /// A devnet on a free loopback port with default accounts, producing a block every `block_time`.
    pub fn local(block_time: Duration) -> Self {
        Self {
            genesis: NearGenesisOptions::default(),
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            block_time,
            home: None,
            persist: false,
        }
    }
}

/// Why the NEAR devnet could not start.
#[derive(Debug, thiserror::Error)]
pub enum NearDevnetError {
    /// Bad genesis options.
    #[error(transparent)]
    Genesis(#[from] NearGenesisError),
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The block time is below the minimum.
    #[error("block time {0:?} is below the 100ms minimum")]
    BlockTime(Duration),
    /// Keeping the chain needs a home to keep it in.
    #[error("persisting a chain needs a home folder")]
    PersistWithoutHome,
    /// The stored chain could not be opened or produced again.
    #[error("stored chain: {0}")]
    Persist(#[from] crate::persist::PersistError),
    /// Producing the stored blocks again did not finish.
    #[error("replaying the stored chain: {0}")]
    Replay(String),
    /// The home folder could not be written.
    #[error("cannot write {path}: {source}")]
    Home {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running NEAR devnet. Call [`RunningNear::shutdown`] to stop it.
pub struct RunningNear {
    /// The genesis, with every account's key.
    pub genesis: NearGenesis,
    /// The chain, for in-process inspection.
    pub chain: Arc<Mutex<NearChain>>,
    /// Where JSON-RPC listens.
    pub rpc_addr: SocketAddr,
    head: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    blocks: JoinHandle<()>,
    rpc: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for RunningNear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNear")
            .field("rpc_addr", &self.rpc_addr)
            .finish_non_exhaustive()
    }
}

impl RunningNear {
    /// `http://` URL of the JSON-RPC endpoint.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.genesis.chain_id
    }

    /// The latest block height.
    pub fn latest_height(&self) -> u64 {
        *self.head.borrow()
    }

    /// Waits until a block at `height` or above exists.
    pub async fn wait_for_height(&self, height: u64) {
        let mut head = self.head.clone();
        // A closed channel means the producer stopped; nothing more will come.
        let _ = head.wait_for(|h| *h >= height).await;
    }

    /// Stops block production and the server, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.blocks.await;
        let _ = self.rpc.await;
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn write_home(home: &Path, genesis: &NearGenesis, rpc_url: &str) -> Result<(), NearDevnetError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NearDevnetError::Home { path, source }
    };
    let keys = home.join("keys");
    std::fs::create_dir_all(&keys).map_err(err(&keys))?;
    let mut accounts = serde_json::Map::new();
    for acc in genesis.funded() {
        let file = keys.join(format!("{}.json", acc.account_id));
        let body = serde_json::to_vec_pretty(&acc.credentials_json()).unwrap_or_default();
        write_private(&file, &body).map_err(err(&file))?;
        accounts.insert(
            acc.account_id.to_string(),
            serde_json::Value::String(format!("keys/{}.json", acc.account_id)),
        );
    }
    // The relayer's keys: its account's file first, then one file per further key.
    let mut relayer_keys = vec![serde_json::Value::String(format!(
        "keys/{}.json",
        genesis.relayer.account_id
    ))];
    for (i, key) in genesis.relayer_keys.iter().enumerate() {
        let name = format!("keys/{}.key{}.json", key.account_id, i + 1);
        let file = home.join(&name);
        let body = serde_json::to_vec_pretty(&key.credentials_json()).unwrap_or_default();
        write_private(&file, &body).map_err(err(&file))?;
        relayer_keys.push(serde_json::Value::String(name));
    }
    let info = serde_json::json!({
        "chain_id": genesis.chain_id,
        "rpc_addr": rpc_url,
        "ibc_contract": genesis.ibc.account_id.to_string(),
        "relayer": genesis.relayer.account_id.to_string(),
        "relayer_keys": relayer_keys,
        "epoch_length": genesis.epoch_length,
        "accounts": accounts,
    });
    let file = home.join("near.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&info).unwrap_or_default()).map_err(err(&file))
}

/// Writes a key file readable by its owner only, as near-cli does.
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(body)
}

/// Starts the NEAR devnet; must run inside a tokio runtime.
pub async fn start(opts: NearOptions) -> Result<RunningNear, NearDevnetError> {
    if opts.block_time < Duration::from_millis(100) {
        return Err(NearDevnetError::BlockTime(opts.block_time));
    }
    let (genesis, chain, log) = if opts.persist {
        let home = opts
            .home
            .as_ref()
            .ok_or(NearDevnetError::PersistWithoutHome)?;
        let stored = persist::open(home, &opts.genesis, now_ns())?;
        // The stored chain decides what its genesis and blocks were made of.
        let genesis = NearGenesis::build(&stored.options.genesis_options())?;
        let mut chain = NearChain::new(genesis.clone(), stored.options.genesis_time_ns);
        let blocks = stored.blocks;
        // Producing a long chain again is CPU work; keep it off the async workers.
        let chain = tokio::task::spawn_blocking(move || {
            persist::replay(&mut chain, &blocks).map(|()| chain)
        })
        .await
        .map_err(|e| NearDevnetError::Replay(e.to_string()))??;
        tracing::info!(chain = %genesis.chain_id, blocks = chain.head().height(), "replayed the stored chain");
        (genesis, chain, Some(stored.log))
    } else {
        let genesis = NearGenesis::build(&opts.genesis)?;
        let chain = NearChain::new(genesis.clone(), now_ns());
        (genesis, chain, None)
    };
    let head_height = chain.head().height();
    let chain = Arc::new(Mutex::new(chain));
    let listener =
        TcpListener::bind(opts.rpc_addr)
            .await
            .map_err(|source| NearDevnetError::Bind {
                addr: opts.rpc_addr,
                source,
            })?;
    let rpc_addr = listener
        .local_addr()
        .map_err(|source| NearDevnetError::Bind {
            addr: opts.rpc_addr,
            source,
        })?;
    let (head_tx, head) = watch::channel(head_height);
    let (stop, stopped) = watch::channel(false);
    let shared = rpc::Shared {
        chain: Arc::clone(&chain),
        head: head.clone(),
        tx_timeout: (opts.block_time * 20).max(Duration::from_secs(10)),
        started: std::time::Instant::now(),
    };
    let mut rpc_stop = stopped.clone();
    let rpc = tokio::spawn(rpc::serve(listener, shared, async move {
        let _ = rpc_stop.wait_for(|s| *s).await;
    }));
    let blocks = tokio::spawn(produce_blocks(
        Arc::clone(&chain),
        opts.block_time,
        log,
        head_tx,
        stopped,
    ));
    let running = RunningNear {
        genesis,
        chain,
        rpc_addr,
        head,
        stop,
        blocks,
        rpc,
    };
    if let Some(home) = &opts.home {
        write_home(home, &running.genesis, &running.rpc_url())?;
    }
    Ok(running)
}

async fn produce_blocks(
    chain: Arc<Mutex<NearChain>>,
    block_time: Duration,
    mut log: Option<BlockLog<NearLoggedBlock>>,
    head: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(block_time);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let produced = {
            let mut c = chain.lock().unwrap_or_else(|e| e.into_inner());
            // A kept chain writes and syncs each block before the lock lets anyone see it.
            c.produce_block_with(now_ns(), |header, txs| match log.as_mut() {
                Some(log) => log.append(&persist::record(header, txs)),
                None => Ok(()),
            })
            .map(|block| block.height())
        };
        match produced {
            Ok(height) => {
                let _ = head.send(height);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot keep the next block; block production stops");
                return;
            }
        }
    }
}
