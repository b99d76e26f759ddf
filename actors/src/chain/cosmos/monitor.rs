//! The event source of one CometBFT chain: tells relayd, height after height, which IBC events each block
//! emitted, without gaps or duplicates, whatever the node and the network do in between.
//!
//! A WebSocket `NewBlock` notification (push mode) or a polled `status` (pull mode, and push mode while the
//! WebSocket is down or silent) only says how far the chain has got; every height from the next expected one up
//! to there is then read over HTTP (`block_results` and `block`) and delivered in order. No actix here: the
//! ChainMonitor actor runs [`EventMonitor::run`] and forwards what it delivers.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;
use futures::{FutureExt, StreamExt};
use relayd_config::{ChainConfig, EventSourceMode};
use tendermint::crypto::Sha256 as _;
use tendermint_rpc::event::{Event, EventData};
use tendermint_rpc::query::EventType;
use tendermint_rpc::{SubscriptionClient, WebSocketClient, WebSocketClientUrl};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, error, info, warn};

use super::events::decode_block_results;
use super::rpc::{CosmosRpc, RpcError};
use crate::chain_monitor::{
    BlockEvents, EventError, MonitorStatus, SourceMode, Stalled, StopReason,
};

/// Configuration errors; the monitor itself never fails once running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    /// A URL the monitor cannot use.
    #[error("{chain}: bad {what} address {url:?}: {reason}")]
    BadAddress {
        /// The chain.
        chain: String,
        /// Which address: `rpc` or `websocket`.
        what: &'static str,
        /// The address as given.
        url: String,
        /// Why it is unusable.
        reason: String,
    },
    /// A setting out of range.
    #[error("{chain}: {setting} must be greater than zero")]
    Zero {
        /// The chain.
        chain: String,
        /// The setting's name.
        setting: &'static str,
    },
}

/// How one chain's monitor runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// The chain id; the node must report it.
    pub chain: String,
    /// CometBFT RPC (HTTP) URL.
    pub rpc_url: String,
    /// CometBFT WebSocket URL (`ws://host:port/websocket`).
    pub websocket_url: String,
    /// Push (WebSocket) or pull (polling).
    pub mode: EventSourceMode,
    /// Polling interval in pull mode and while push mode falls back to polling.
    pub poll_interval: Duration,
    /// Longest expected time between blocks.
    pub max_block_time: Duration,
    /// The WebSocket counts as dead after this many `max_block_time`s without a `NewBlock`.
    pub watchdog_blocks: u32,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
    /// Deadline of one HTTP request and of one WebSocket connection attempt.
    pub request_timeout: Duration,
    /// Failed attempts at one height before it is reported as [`Stalled`].
    pub stall_after: u32,
}

impl MonitorConfig {
    /// Push mode with default timings for `chain` at the given addresses.
    pub fn new(chain: &str, rpc_url: &str, websocket_url: &str) -> Self {
        Self {
            chain: chain.to_owned(),
            rpc_url: rpc_url.to_owned(),
            websocket_url: websocket_url.to_owned(),
            mode: EventSourceMode::Push,
            poll_interval: Duration::from_secs(1),
            max_block_time: Duration::from_secs(30),
            watchdog_blocks: 3,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            stall_after: 5,
        }
    }

    /// The settings of a `[[chains]]` entry (`event_source`, `max_block_time`, the WebSocket address or
    /// `/websocket` on the RPC host) with the given retry backoff.
    pub fn from_chain_config(
        chain: &ChainConfig,
        backoff_base: Duration,
        backoff_cap: Duration,
    ) -> Result<Self, MonitorError> {
        let id = chain.id.to_string();
        let rpc_url = chain.rpc_addr.to_string();
        let websocket_url = match &chain.websocket_addr {
            Some(ws) => ws.to_string(),
            None => {
                let scheme = if chain.rpc_addr.url().scheme() == "https" {
                    "wss"
                } else {
                    "ws"
                };
                chain
                    .rpc_addr
                    .with_scheme_and_path(scheme, "/websocket")
                    .ok_or_else(|| MonitorError::BadAddress {
                        chain: id.clone(),
                        what: "rpc",
                        url: rpc_url.clone(),
                        reason: "no host and port to derive the WebSocket address from".into(),
                    })?
                    .to_string()
            }
        };
        let mut config = Self::new(&id, &rpc_url, &websocket_url);
        config.mode = chain.event_source.mode;
        config.poll_interval = chain.event_source.interval.get();
        config.max_block_time = chain.max_block_time.get();
        config.backoff_base = backoff_base;
        config.backoff_cap = backoff_cap;
        Ok(config)
    }

    fn validate(&self) -> Result<(), MonitorError> {
        let zero = |setting| MonitorError::Zero {
            chain: self.chain.clone(),
            setting,
        };
        let durations = [
            ("poll_interval", self.poll_interval),
            ("max_block_time", self.max_block_time),
            ("backoff_base", self.backoff_base),
            ("backoff_cap", self.backoff_cap),
            ("request_timeout", self.request_timeout),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return Err(zero(name));
        }
        if self.watchdog_blocks == 0 {
            return Err(zero("watchdog_blocks"));
        }
        if self.stall_after == 0 {
            return Err(zero("stall_after"));
        }
        CosmosRpc::new(
            &self.chain,
            &self.rpc_url,
            tendermint_rpc::client::CompatMode::latest(),
        )
        .map_err(|e| MonitorError::BadAddress {
            chain: self.chain.clone(),
            what: "rpc",
            url: self.rpc_url.clone(),
            reason: e.reason,
        })?;
        Ok(())
    }

    /// The parsed WebSocket URL in push mode; pull mode never opens one.
    fn ws_url(&self) -> Result<Option<WebSocketClientUrl>, MonitorError> {
        if self.mode == EventSourceMode::Pull {
            return Ok(None);
        }
        self.websocket_url
            .parse::<WebSocketClientUrl>()
            .map(Some)
            .map_err(|e| MonitorError::BadAddress {
                chain: self.chain.clone(),
                what: "websocket",
                url: self.websocket_url.clone(),
                reason: e.to_string(),
            })
    }

    fn watchdog(&self) -> Duration {
        self.max_block_time.saturating_mul(self.watchdog_blocks)
    }

    fn backoff(&self) -> ExponentialBackoff {
        // A little jitter so that monitors of many chains behind one proxy do not retry in lock-step.
        crate::retry::exponential(self.backoff_base, self.backoff_cap, 0.1)
    }
}

/// Delivers a chain's IBC events block by block; see the module documentation.
pub struct EventMonitor {
    config: MonitorConfig,
    ws_url: Option<WebSocketClientUrl>,
    status: watch::Sender<MonitorStatus>,
}

impl EventMonitor {
    /// A monitor with a checked configuration; nothing is contacted until [`EventMonitor::run`].
    pub fn new(config: MonitorConfig) -> Result<Self, MonitorError> {
        config.validate()?;
        let ws_url = config.ws_url()?;
        let (status, _) = watch::channel(MonitorStatus {
            // Push mode polls too until its subscription is up.
            mode: SourceMode::Polling,
            connected: false,
            last_height: None,
            latest_seen: None,
            reconnects: 0,
            errors: 0,
            last_error: None,
            stalled: None,
        });
        Ok(Self {
            config,
            ws_url,
            status,
        })
    }

    /// A live view of what the monitor is doing; stays readable after `run` returns.
    pub fn status(&self) -> watch::Receiver<MonitorStatus> {
        self.status.subscribe()
    }

    /// Delivers the events of every height from `start_height` on (heights start at 1; 0 is read as 1) into
    /// `sink`, strictly in order, waiting for room in the sink, until `shutdown` completes or the sink's receiver
    /// is dropped. Node and network failures are retried forever and show in [`EventMonitor::status`].
    pub async fn run(
        self,
        start_height: u64,
        sink: mpsc::Sender<BlockEvents>,
        shutdown: impl Future<Output = ()>,
    ) -> StopReason {
        let closed = sink.clone();
        let chain = self.config.chain.clone();
        let mut runner = Runner {
            config: self.config,
            ws_url: self.ws_url,
            status: self.status,
            sink,
            next: start_height.max(1),
        };
        // Everything the runner awaits may be abandoned at any point: nothing is half-delivered, since a
        // height counts as delivered only once the sink has accepted it.
        let reason = tokio::select! {
            () = shutdown => StopReason::Shutdown,
            () = closed.closed() => StopReason::SinkClosed,
            reason = runner.run() => reason,
        };
        info!(chain = %chain, ?reason, "event monitor stopped");
        reason
    }
}

/// Control flow out of the delivery loops: the only way out is a stop.
type Flow<T = ()> = Result<T, StopReason>;

struct Runner {
    config: MonitorConfig,
    ws_url: Option<WebSocketClientUrl>,
    status: watch::Sender<MonitorStatus>,
    sink: mpsc::Sender<BlockEvents>,
    next: u64,
}

/// A live WebSocket subscription; dropping it aborts the driver, which closes the socket.
struct WsConn {
    subscription: tendermint_rpc::Subscription,
    // Never used after subscribing, but dropping it would close the driver's command channel early; the
    // connection is given up as a whole, driver first.
    _client: WebSocketClient,
    driver: DriverTask,
}

/// The WebSocket driver task, aborted when the connection is given up, so that a half-open socket cannot
/// linger until the driver's own 30 s receive timeout.
struct DriverTask(JoinHandle<Result<(), tendermint_rpc::Error>>);

impl WsConn {
    /// Why the driver ended, if it has: the subscription only says that it ended.
    fn driver_error(&mut self) -> Option<String> {
        match (&mut self.driver.0).now_or_never()? {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("driver task: {e}")),
        }
    }
}

impl Drop for DriverTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<WsConn, String>> + Send>>;

impl Runner {
    async fn run(&mut self) -> StopReason {
        let rpc = self.connect_rpc().await;
        let flow = match self.ws_url.clone() {
            None => self.pull(&rpc).await,
            Some(url) => self.push(&rpc, url).await,
        };
        match flow {
            Err(reason) => reason,
            // Both loops only end by stopping.
            Ok(never) => match never {},
        }
    }

    fn chain(&self) -> &str {
        &self.config.chain
    }

    fn record_error(&self, error: &str) {
        self.status.send_modify(|s| {
            s.errors += 1;
            s.last_error = Some(error.to_owned());
        });
    }

    fn set_connected(&self, mode: SourceMode, connected: bool) {
        self.status.send_if_modified(|s| {
            let changed = s.mode != mode || s.connected != connected;
            s.mode = mode;
            s.connected = connected;
            changed
        });
    }

    fn saw_height(&self, height: u64) {
        self.status.send_if_modified(|s| {
            if s.latest_seen.is_some_and(|h| h >= height) {
                return false;
            }
            s.latest_seen = Some(height);
            true
        });
    }

    /// An RPC client in the node's dialect, for the configured chain; retried until the node answers.
    async fn connect_rpc(&self) -> CosmosRpc {
        let mut backoff = self.config.backoff();
        loop {
            match self.try_connect_rpc().await {
                Ok(rpc) => return rpc,
                Err(e) => {
                    let delay = backoff.next_backoff().unwrap_or(self.config.backoff_cap);
                    warn!(chain = %self.chain(), error = %e, retry_in = ?delay, "cannot reach the node's RPC");
                    self.record_error(&e);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn try_connect_rpc(&self) -> Result<CosmosRpc, String> {
        let c = &self.config;
        let rpc = CosmosRpc::connect_with_timeout(&c.chain, &c.rpc_url, c.request_timeout)
            .await
            .map_err(|e| e.to_string())?;
        let (network, _) = rpc.status().await.map_err(|e| e.to_string())?;
        // A node of another chain would feed relayd foreign events; keep retrying so that the error stays
        // visible until the address is fixed.
        if network != c.chain {
            return Err(format!(
                "{}: the node at {} serves chain {network}",
                c.chain, c.rpc_url
            ));
        }
        info!(chain = %c.chain, compat = ?rpc.compat_mode(), "connected to the node's RPC");
        Ok(rpc)
    }

    /// Pull mode: poll the latest height every `poll_interval` and deliver up to it.
    async fn pull(&mut self, rpc: &CosmosRpc) -> Flow<std::convert::Infallible> {
        let mut backoff = self.config.backoff();
        loop {
            let delay = match self.poll_once(rpc).await? {
                true => {
                    backoff.reset();
                    self.config.poll_interval
                }
                false => self
                    .config
                    .poll_interval
                    .max(backoff.next_backoff().unwrap_or(self.config.backoff_cap)),
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Asks the node for its latest height and delivers up to it; `false` if the node did not answer.
    async fn poll_once(&mut self, rpc: &CosmosRpc) -> Flow<bool> {
        match rpc.status().await {
            Ok((_, latest)) => {
                self.status.send_if_modified(|s| {
                    let changed = !s.connected;
                    s.connected = true;
                    changed
                });
                self.saw_height(latest);
                self.deliver_up_to(rpc, latest).await?;
                Ok(true)
            }
            Err(e) => {
                warn!(chain = %self.chain(), error = %e, "polling the latest height failed");
                self.record_error(&e.to_string());
                self.status.send_if_modified(|s| {
                    let changed = s.connected;
                    s.connected = false;
                    changed
                });
                Ok(false)
            }
        }
    }

    /// Push mode: follow `NewBlock` over WebSocket; poll while the WebSocket is down or silent, and keep
    /// reconnecting with backoff.
    async fn push(
        &mut self,
        rpc: &CosmosRpc,
        url: WebSocketClientUrl,
    ) -> Flow<std::convert::Infallible> {
        let mut reconnect = self.config.backoff();
        let mut ws: Option<WsConn> = None;
        // Whether the current connection has delivered a NewBlock, which proves it works end to end.
        let mut ws_proven = false;
        let mut connecting: Option<Connecting> = Some(Box::pin(connect_ws(
            url.clone(),
            rpc.compat_mode(),
            self.config.request_timeout,
        )));
        let mut retry_at: Option<Instant> = None;
        let mut poll_at = Instant::now();
        let mut watchdog_at = Instant::now() + self.config.watchdog();

        loop {
            tokio::select! {
                // Notifications first: ones that queued up during a long catch-up reset the watchdog before it
                // is looked at.
                biased;

                event = next_event(&mut ws), if ws.is_some() => match event {
                    Some(Ok(event)) => {
                        watchdog_at = Instant::now() + self.config.watchdog();
                        if let Some(height) = new_block_height(&event) {
                            if !ws_proven {
                                ws_proven = true;
                                reconnect.reset();
                            }
                            debug!(chain = %self.chain(), height, "NewBlock");
                            self.saw_height(height);
                            self.deliver_up_to(rpc, height).await?;
                        }
                    }
                    Some(Err(e)) => {
                        let e = format!("WebSocket subscription failed: {e}");
                        self.lose_ws(&mut ws, &e);
                        retry_at = Some(Instant::now() + reconnect.next_backoff().unwrap_or(self.config.backoff_cap));
                        poll_at = Instant::now();
                    }
                    None => {
                        let e = match ws.as_mut().and_then(WsConn::driver_error) {
                            Some(reason) => format!("WebSocket connection closed: {reason}"),
                            None => "WebSocket connection closed".to_owned(),
                        };
                        self.lose_ws(&mut ws, &e);
                        retry_at = Some(Instant::now() + reconnect.next_backoff().unwrap_or(self.config.backoff_cap));
                        poll_at = Instant::now();
                    }
                },

                () = sleep_until(watchdog_at), if ws.is_some() => {
                    let e = format!(
                        "no NewBlock for {:?} ({} x max_block_time); reconnecting and polling meanwhile",
                        self.config.watchdog(), self.config.watchdog_blocks
                    );
                    self.lose_ws(&mut ws, &e);
                    retry_at = Some(Instant::now() + reconnect.next_backoff().unwrap_or(self.config.backoff_cap));
                    poll_at = Instant::now();
                }

                result = poll_connecting(&mut connecting), if connecting.is_some() => {
                    connecting = None;
                    match result {
                        Ok(conn) => {
                            info!(chain = %self.chain(), url = %self.config.websocket_url, "subscribed to NewBlock");
                            ws = Some(conn);
                            ws_proven = false;
                            watchdog_at = Instant::now() + self.config.watchdog();
                            self.set_connected(SourceMode::Push, true);
                            // Blocks made while the subscription was being set up are announced by no
                            // notification; catch up now instead of at the next block.
                            self.poll_once(rpc).await?;
                        }
                        Err(e) => {
                            let delay = reconnect.next_backoff().unwrap_or(self.config.backoff_cap);
                            warn!(chain = %self.chain(), error = %e, retry_in = ?delay, "WebSocket connection attempt failed");
                            self.record_error(&e);
                            retry_at = Some(Instant::now() + delay);
                        }
                    }
                }

                () = sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() && connecting.is_none() && ws.is_none() => {
                    retry_at = None;
                    let attempt = self.status.borrow().reconnects + 1;
                    self.status.send_modify(|s| s.reconnects += 1);
                    info!(chain = %self.chain(), attempt, url = %self.config.websocket_url, "reconnecting WebSocket");
                    connecting = Some(Box::pin(connect_ws(url.clone(), rpc.compat_mode(), self.config.request_timeout)));
                }

                () = sleep_until(poll_at), if ws.is_none() => {
                    self.poll_once(rpc).await?;
                    poll_at = Instant::now() + self.config.poll_interval;
                }
            }
        }
    }

    /// Gives up the WebSocket connection and switches to polling until a new one works.
    fn lose_ws(&self, ws: &mut Option<WsConn>, error: &str) {
        warn!(chain = %self.chain(), error, "WebSocket lost; polling until it is back");
        self.record_error(error);
        *ws = None;
        self.set_connected(SourceMode::Polling, false);
    }

    /// Delivers every height from the next expected one up to `tip`.
    async fn deliver_up_to(&mut self, rpc: &CosmosRpc, tip: u64) -> Flow {
        while self.next <= tip {
            let height = self.next;
            let Some(block) = self.fetch_until_done(rpc, height).await else {
                // Announced but not made yet: wait for the next announcement or poll.
                return Ok(());
            };
            self.sink
                .send(block)
                .await
                .map_err(|_| StopReason::SinkClosed)?;
            self.next = height + 1;
            self.status.send_modify(|s| s.last_height = Some(height));
        }
        Ok(())
    }

    /// Fetches one height, retrying with backoff for as long as it takes: a height is never skipped. `None` when
    /// the node says it has not made that height yet, so that a notification announcing a height the node does
    /// not have (a lying or lagging node) cannot turn into endless retries.
    async fn fetch_until_done(&self, rpc: &CosmosRpc, height: u64) -> Option<BlockEvents> {
        let mut backoff = self.config.backoff();
        let mut attempts = 0u32;
        loop {
            match fetch_block(rpc, &self.config.chain, height).await {
                Ok(block) => {
                    if attempts > 0 {
                        info!(chain = %self.chain(), height, attempts, "height fetched after retries");
                        self.status.send_if_modified(|s| s.stalled.take().is_some());
                    }
                    return Some(block);
                }
                Err(e) => {
                    let error = e.to_string();
                    if let Ok((_, latest)) = rpc.status().await {
                        if latest < height {
                            warn!(
                                chain = %self.chain(), height, latest, error = %error,
                                "height announced but not made yet by the node; waiting"
                            );
                            self.status.send_if_modified(|s| s.stalled.take().is_some());
                            return None;
                        }
                    }
                    attempts += 1;
                    let delay = backoff.next_backoff().unwrap_or(self.config.backoff_cap);
                    self.record_error(&error);
                    if attempts >= self.config.stall_after {
                        let likely_pruned = looks_pruned(&error);
                        error!(
                            chain = %self.chain(), height, attempts, likely_pruned, error = %error, retry_in = ?delay,
                            "cannot fetch this height; nothing after it is delivered until it is fetched{}",
                            if likely_pruned { " (the node seems to have pruned it)" } else { "" }
                        );
                        self.status.send_modify(|s| {
                            s.stalled = Some(Stalled {
                                height,
                                attempts,
                                error: error.clone(),
                                likely_pruned,
                            })
                        });
                    } else {
                        warn!(chain = %self.chain(), height, attempts, error = %error, retry_in = ?delay, "fetching a height failed");
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Why one height could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The node could not be asked.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The node answered about another height.
    #[error("{chain}: asked for height {asked}, the node answered with height {got}")]
    WrongHeight {
        /// The chain.
        chain: String,
        /// The height asked for.
        asked: u64,
        /// The height in the answer.
        got: u64,
    },
}

/// Reads the block and its results at `height` and decodes the IBC events.
pub async fn fetch_block(
    rpc: &CosmosRpc,
    chain: &str,
    height: u64,
) -> Result<BlockEvents, FetchError> {
    let (results, block) = tokio::try_join!(rpc.block_results(height), rpc.block(height))?;
    for got in [results.height.value(), block.header.height.value()] {
        if got != height {
            return Err(FetchError::WrongHeight {
                chain: chain.to_owned(),
                asked: height,
                got,
            });
        }
    }
    let time_ns = block_time_ns(&block.header.time);
    let txs = block.data;
    let results_count = results.txs_results.as_ref().map_or(0, Vec::len);
    let mut errors = Vec::new();
    // Results name their transaction by position only; if the counts disagree, positions cannot be trusted.
    let tx_hashes: Vec<String> = if txs.len() == results_count {
        txs.iter().map(|tx| tx_hash(tx)).collect()
    } else {
        errors.push(EventError {
            height,
            event: "txs_results".into(),
            reason: format!(
                "the block has {} transactions but block_results has {results_count} results; transaction hashes left out",
                txs.len()
            ),
        });
        Vec::new()
    };
    let decoded = decode_block_results(&results, &tx_hashes);
    errors.extend(decoded.errors);
    for e in &errors {
        warn!(chain, height, error = %e, "malformed block results");
    }
    Ok(BlockEvents {
        chain: chain.to_owned(),
        height,
        time_ns,
        events: decoded.events,
        errors,
    })
}

/// A block time as ns since the epoch (0 for times before it, which no real chain has).
pub fn block_time_ns(time: &tendermint::Time) -> u64 {
    u64::try_from(time.unix_timestamp_nanos()).unwrap_or(0)
}

/// A transaction's hash as CometBFT prints it: SHA-256 of the raw bytes, upper-case hex.
fn tx_hash(tx: &[u8]) -> String {
    hex::encode_upper(tendermint::crypto::default::Sha256::digest(tx))
}

/// Whether a node's error says the height is gone for good rather than not yet there or unreachable.
fn looks_pruned(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("lowest height") || e.contains("pruned") || e.contains("is not available")
}

/// The height a `NewBlock` notification announces.
fn new_block_height(event: &Event) -> Option<u64> {
    match &event.data {
        EventData::NewBlock { block, .. } | EventData::LegacyNewBlock { block, .. } => {
            block.as_ref().map(|b| b.header.height.value())
        }
        _ => None,
    }
}

async fn next_event(ws: &mut Option<WsConn>) -> Option<Result<Event, tendermint_rpc::Error>> {
    match ws {
        Some(conn) => conn.subscription.next().await,
        // The select arm is disabled without a connection; never resolve.
        None => std::future::pending().await,
    }
}

async fn poll_connecting(connecting: &mut Option<Connecting>) -> Result<WsConn, String> {
    match connecting {
        Some(fut) => fut.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Opens a WebSocket and subscribes to `NewBlock`, all within `deadline`.
async fn connect_ws(
    url: WebSocketClientUrl,
    compat: tendermint_rpc::client::CompatMode,
    deadline: Duration,
) -> Result<WsConn, String> {
    let attempt = async {
        let (client, driver) = WebSocketClient::builder(url)
            .compat_mode(compat)
            .build()
            .await
            .map_err(|e| format!("WebSocket connect: {e}"))?;
        let driver = DriverTask(tokio::spawn(driver.run()));
        let subscription = client
            .subscribe(EventType::NewBlock.into())
            .await
            .map_err(|e| format!("subscribe to NewBlock: {e}"))?;
        Ok(WsConn {
            subscription,
            _client: client,
            driver,
        })
    };
    timeout(deadline, attempt)
        .await
        .map_err(|_| format!("WebSocket connect and subscribe took longer than {deadline:?}"))?
}
