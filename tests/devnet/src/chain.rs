//! Starting a whole chain in-process: genesis, application, node, block timer, RPC and gRPC servers, each
//! chain on its own loopback ports.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{App, AppError};
use crate::consensus::Schedule;
use crate::genesis::{Genesis, GenesisError, GenesisOptions, DENOM};
use crate::home::{write_home, ChainInfo, HomeError};
use crate::node::{run_blocks, Node, NodeError};
use crate::persist::{self, PersistError, StoredOptions};
use crate::rpc::{self, NodeView, RpcConfig, RpcServerHandle};

/// How to run one chain.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// Keys, accounts and chain id.
    pub genesis: GenesisOptions,
    /// JSON-RPC and WebSocket address; port 0 picks a free port.
    pub rpc_addr: SocketAddr,
    /// gRPC address; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// Time between blocks (100 ms or more).
    pub block_time: Duration,
    /// Where to write key files and `chain.json`, if anywhere.
    pub home: Option<PathBuf>,
    /// Decide a validator-set change every this many blocks ([`crate::consensus::Schedule::rotating`]);
    /// `None` keeps the genesis validators.
    pub rotate_validators_every: Option<u64>,
    /// Whether `update_client` events carry the installed header, as ibc-go up to v8 (and ibc-rs) write them;
    /// off by default, as ibc-go v9 and later emit them.
    pub update_client_header: bool,
    /// The CometBFT version the RPC answers as.
    pub cometbft: rpc::Dialect,
    /// Keep the chain under `home/data` ([`crate::persist`]) and, when a chain is stored there already, replay
    /// it and go on as the same chain (its stored genesis options and validator rotation win over these).
    pub persist: bool,
}

impl ChainOptions {
    /// A chain with this id on free loopback ports, producing a block every `block_time`.
    pub fn local(chain_id: &str, block_time: Duration) -> Self {
        Self {
            genesis: GenesisOptions {
                chain_id: chain_id.to_owned(),
                ..GenesisOptions::default()
            },
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            block_time,
            home: None,
            rotate_validators_every: None,
            update_client_header: false,
            cometbft: rpc::Dialect::default(),
            persist: false,
        }
    }
}

/// Why a chain could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// Bad genesis options.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The application rejected the genesis.
    #[error(transparent)]
    App(#[from] AppError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The home folder could not be written.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The block time is below the supported minimum.
    #[error("block time {0:?} is below the 100ms minimum")]
    BlockTime(Duration),
    /// Validators cannot change every 0 blocks.
    #[error("rotate_validators_every must be at least 1")]
    RotateEvery,
    /// Keeping the chain needs a home to keep it in.
    #[error("persisting a chain needs a home folder")]
    PersistWithoutHome,
    /// The stored chain could not be read, or replaying it failed.
    #[error("stored chain: {0}")]
    Stored(#[from] NodeError),
    /// The stored chain could not be opened.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// A running chain. Dropping it stops nothing; call [`RunningChain::shutdown`].
pub struct RunningChain {
    /// The genesis, with every account's key.
    pub genesis: Genesis,
    /// The node, for in-process inspection.
    pub node: Arc<Node<App>>,
    /// Where RPC listens.
    pub rpc_addr: SocketAddr,
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// The CometBFT version the RPC answers as.
    pub cometbft: rpc::Dialect,
    stop: watch::Sender<bool>,
    pause: watch::Sender<bool>,
    blocks: JoinHandle<Result<(), NodeError>>,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    rpc: RpcServerHandle,
}

impl RunningChain {
    /// `http://` URL of the RPC endpoint.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// `ws://` URL of the WebSocket endpoint.
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/websocket", self.rpc_addr)
    }

    /// `http://` URL of the gRPC endpoint.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The chain id.
    pub fn chain_id(&self) -> String {
        self.genesis.chain_id.to_string()
    }

    /// What `chain.json` says about this chain.
    pub fn info(&self) -> ChainInfo {
        ChainInfo {
            chain_id: self.chain_id(),
            rpc_addr: self.rpc_url(),
            websocket_addr: self.websocket_url(),
            grpc_addr: self.grpc_url(),
            denom: DENOM.to_owned(),
            min_gas_price: self.genesis.min_gas_price,
            accounts: self
                .genesis
                .accounts
                .iter()
                .map(|a| (a.name.clone(), format!("keys/{}.json", a.name)))
                .collect(),
        }
    }

    /// Waits until the chain has produced a block at `height` or later.
    pub async fn wait_for_height(&self, height: u64) {
        let mut events = self.node.subscribe();
        while self.node.latest_height() < height {
            // A lagging receiver only means blocks went by; the loop re-checks the height.
            let _ = events.recv().await;
        }
    }

    /// Halts block production (`true`) or resumes it (`false`); RPC keeps answering and the mempool keeps
    /// taking transactions, which go into the first block after the chain resumes.
    pub fn pause_blocks(&self, paused: bool) {
        let _ = self.pause.send(paused);
    }

    /// Stops block production and both servers, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.blocks.await;
        let _ = self.rpc.shutdown().await;
        let _ = self.grpc.await;
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, DevnetError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DevnetError::Bind { addr, source })
}

/// Starts a chain; must run inside a tokio runtime.
pub async fn start_chain(opts: ChainOptions) -> Result<RunningChain, DevnetError> {
    if opts.block_time < Duration::from_millis(100) {
        return Err(DevnetError::BlockTime(opts.block_time));
    }
    if opts.rotate_validators_every == Some(0) {
        return Err(DevnetError::RotateEvery);
    }
    let mut opts = opts;
    let stored = if opts.persist {
        let home = opts.home.as_ref().ok_or(DevnetError::PersistWithoutHome)?;
        let stored = persist::open(home, stored_options(&opts))?;
        // The stored chain decides what its genesis and blocks were made of.
        opts.genesis.validators = stored.options.validators;
        opts.genesis.accounts = stored.options.accounts;
        opts.genesis.seed = Some(stored.options.seed.clone());
        opts.rotate_validators_every = stored.options.rotate_validators_every;
        opts.update_client_header = stored.options.update_client_header;
        Some(stored)
    } else {
        None
    };
    let genesis = Genesis::build(&opts.genesis)?;
    let app = App::new(&genesis)?;
    app.set_update_client_header(opts.update_client_header);
    let schedule = match opts.rotate_validators_every {
        Some(every) => {
            Schedule::rotating(genesis.validators.clone(), genesis.standby.clone(), every)
        }
        None => Schedule::fixed(genesis.validators.clone()),
    };
    let node = Arc::new(Node::new(
        genesis.chain_id.clone(),
        genesis.genesis_time,
        schedule,
        app,
    ));
    if let Some(stored) = stored {
        let replayed = stored.blocks.len();
        let replaying = Arc::clone(&node);
        // Re-executing a long chain is CPU work; keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            for block in &stored.blocks {
                replaying.replay(block)?;
            }
            replaying.keep_blocks_in(stored.log)
        })
        .await
        .map_err(|_| NodeError::Poisoned)??;
        tracing::info!(chain = %genesis.chain_id, blocks = replayed, "replayed the stored chain");
    }
    let rpc_listener = bind(opts.rpc_addr).await?;
    let grpc_listener = bind(opts.grpc_addr).await?;
    let rpc_addr = rpc_listener
        .local_addr()
        .map_err(|source| DevnetError::Bind {
            addr: opts.rpc_addr,
            source,
        })?;
    let grpc_addr = grpc_listener
        .local_addr()
        .map_err(|source| DevnetError::Bind {
            addr: opts.grpc_addr,
            source,
        })?;

    let (stop, stopped) = watch::channel(false);
    let view: Arc<dyn NodeView> = node.clone();
    let config = RpcConfig {
        dialect: opts.cometbft,
        ..RpcConfig::default()
    };
    let rpc = rpc::spawn(rpc_listener, view, config).map_err(|source| DevnetError::Bind {
        addr: rpc_addr,
        source,
    })?;
    let mut grpc_stop = stopped.clone();
    let grpc = tokio::spawn(crate::grpc::serve(
        grpc_listener,
        Arc::clone(&node),
        async move {
            let _ = grpc_stop.changed().await;
        },
    ));
    let (pause, paused) = watch::channel(false);
    let blocks = tokio::spawn(run_blocks(
        Arc::clone(&node),
        opts.block_time,
        stopped,
        paused,
    ));

    let chain = RunningChain {
        genesis,
        node,
        rpc_addr,
        grpc_addr,
        cometbft: opts.cometbft,
        stop,
        pause,
        blocks,
        grpc,
        rpc,
    };
    if let Some(home) = &opts.home {
        write_home(home, &chain.genesis, &chain.info())?;
    }
    Ok(chain)
}

/// The options to store for a new persisted chain; without a seed, a random one is chosen so the genesis can be
/// built again.
fn stored_options(opts: &ChainOptions) -> StoredOptions {
    StoredOptions {
        chain_id: opts.genesis.chain_id.clone(),
        validators: opts.genesis.validators,
        accounts: opts.genesis.accounts,
        seed: opts
            .genesis
            .seed
            .clone()
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>())),
        rotate_validators_every: opts.rotate_validators_every,
        update_client_header: opts.update_client_header,
    }
}

/// Starts `n` chains named `ibc-0`, `ibc-1`, ... with the same settings otherwise.
pub async fn start_chains(
    n: usize,
    template: &ChainOptions,
) -> Result<Vec<RunningChain>, DevnetError> {
    let mut chains = Vec::with_capacity(n);
    for i in 0..n {
        let mut opts = template.clone();
        opts.genesis.chain_id = format!("ibc-{i}");
        opts.home = template.home.as_ref().map(|h| h.join(format!("ibc-{i}")));
        chains.push(start_chain(opts).await?);
    }
    Ok(chains)
}
