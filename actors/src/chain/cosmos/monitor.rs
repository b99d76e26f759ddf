//! The event source of one CometBFT chain: tells relayd, height after height, which IBC events each block
//! emitted, without gaps or duplicates, whatever the node and the network do in between.
//!
//! A WebSocket `NewBlock` notification (push mode) or a polled `status` (pull mode, and push mode while the
//! WebSocket is down or silent) only says how far the chain has got; every height from the next expected one up
//! to there is then read over HTTP (`block_results` and `block`) and delivered in order. No actix here: the
//! ChainMonitor actor runs [`EventMonitor::run`] and forwards what it delivers.

use std::future::Future;

use backoff::backoff::Backoff;
use tendermint_rpc::WebSocketClientUrl;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, error, info, warn};

mod config;
mod fetch;
mod ws;

use crate::chain_monitor::consistency::{self, Judgement};
pub use config::{MonitorConfig, MonitorError};
pub use fetch::{block_time_ns, fetch_block, FetchError};
use ws::{connect_ws, new_block_height, next_event, poll_connecting, Connecting, WsConn};

use super::rpc::CosmosRpc;
use crate::chain_monitor::{BlockEvents, MonitorStatus, SourceMode, Stalled, StopReason};

/// Delivers a chain's IBC events block by block; see the module documentation.
pub struct EventMonitor {
    config: MonitorConfig,
    ws_url: Option<WebSocketClientUrl>,
    status: watch::Sender<MonitorStatus>,
    shared: Option<CosmosRpc>,
    announce: Option<crate::rpc_pool::RpcPool>,
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
            inconsistent: None,
        });
        Ok(Self {
            config,
            ws_url,
            status,
            shared: None,
            announce: None,
        })
    }

    /// This monitor telling `pool` every height it learns of, so that whatever waits for the chain's next block
    /// (an update's target height, a transaction's inclusion) wakes on the block instead of polling the node.
    pub fn announcing(mut self, pool: crate::rpc_pool::RpcPool) -> Self {
        self.announce = Some(pool);
        self
    }

    /// This monitor reading through `rpc`, the chain's pooled client, instead of a client of its own: its reads
    /// move with the pool to the best endpoint, and with [`MonitorConfig::websocket_urls`] its subscription
    /// follows the pool's current endpoint too.
    pub fn sharing(mut self, rpc: CosmosRpc) -> Self {
        self.shared = Some(rpc);
        self
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
            followed_hash: None,
            recheck: false,
            shared: self.shared,
            announce: self.announce,
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

/// How often a subscription that follows the chain's RPC pool checks that its endpoint is still the one to use.
const FOLLOW_POOL_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Control flow out of the delivery loops: the only way out is a stop.
type Flow<T = ()> = Result<T, StopReason>;

struct Runner {
    config: MonitorConfig,
    ws_url: Option<WebSocketClientUrl>,
    status: watch::Sender<MonitorStatus>,
    sink: mpsc::Sender<BlockEvents>,
    next: u64,
    /// The hash of the last delivered block (height `next - 1`), once one was delivered by this runner.
    followed_hash: Option<String>,
    /// Set when the connection to the node was lost: whatever answers now must show the followed block before
    /// anything more is delivered (a restored node, or another chain's node, may answer at the same address
    /// already past the followed height).
    recheck: bool,
    /// The chain's pooled client, when the monitor shares it.
    shared: Option<CosmosRpc>,
    /// The chain's pool, told of every height seen (see [`EventMonitor::announcing`]).
    announce: Option<crate::rpc_pool::RpcPool>,
}

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
        if let Some(pool) = &self.announce {
            pool.saw_height(height);
        }
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
        let rpc = match &self.shared {
            Some(rpc) => rpc.clone(),
            None => CosmosRpc::connect_with_timeout(&c.chain, &c.rpc_url, c.request_timeout)
                .await
                .map_err(|e| e.to_string())?,
        };
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
                self.follow(rpc, latest).await?;
                Ok(true)
            }
            Err(e) => {
                warn!(chain = %self.chain(), error = %e, "polling the latest height failed");
                self.recheck = true;
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
        // The pool endpoint the subscription is (being) opened on, when it follows the pool.
        let (mut ws_at, target) = self.ws_target(rpc, &url);
        info!(chain = %self.chain(), url = %target, "subscribing to NewBlock");
        let mut connecting: Option<Connecting> = Some(Box::pin(connect_ws(
            target,
            rpc.compat_mode(),
            self.config.request_timeout,
        )));
        let mut check_at = Instant::now() + FOLLOW_POOL_EVERY;
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
                            if consistency::notification_behind(self.next.saturating_sub(1), height) {
                                // Queued while a catch-up went past it: where the node is now is the node's to say.
                                self.poll_once(rpc).await?;
                            } else {
                                self.follow(rpc, height).await?;
                            }
                        }
                    }
                    Some(Err(e)) => {
                        let e = format!("WebSocket subscription failed: {e}");
                        self.blame_ws(rpc, ws_at, &e);
                        self.lose_ws(&mut ws, &e);
                        retry_at = Some(Instant::now() + reconnect.next_backoff().unwrap_or(self.config.backoff_cap));
                        poll_at = Instant::now();
                    }
                    None => {
                        let e = match ws.as_mut().and_then(WsConn::driver_error) {
                            Some(reason) => format!("WebSocket connection closed: {reason}"),
                            None => "WebSocket connection closed".to_owned(),
                        };
                        self.blame_ws(rpc, ws_at, &e);
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
                            info!(chain = %self.chain(), endpoint = ?ws_at, "subscribed to NewBlock");
                            ws = Some(conn);
                            ws_proven = false;
                            watchdog_at = Instant::now() + self.config.watchdog();
                            self.set_connected(SourceMode::Push, true);
                            // Blocks made while the subscription was being set up are announced by no
                            // notification; catch up now instead of at the next block.
                            self.poll_once(rpc).await?;
                        }
                        Err(e) => {
                            self.blame_ws(rpc, ws_at, &e);
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
                    let (at, target) = self.ws_target(rpc, &url);
                    ws_at = at;
                    info!(chain = %self.chain(), attempt, url = %target, "reconnecting WebSocket");
                    connecting = Some(Box::pin(connect_ws(target, rpc.compat_mode(), self.config.request_timeout)));
                }

                // A subscription on an endpoint the pool has left (failing, lagging or quarantined) moves to the
                // pool's current one; delivery resumes at the next undelivered height, so none is skipped.
                () = sleep_until(check_at), if ws.is_some() && ws_at.is_some() => {
                    check_at = Instant::now() + FOLLOW_POOL_EVERY;
                    if let Some(at) = ws_at {
                        let pool = rpc.pool();
                        let current = pool.current();
                        if current != at && pool.health(at) != crate::rpc_pool::Health::Healthy {
                            let e = format!(
                                "the subscription's endpoint {} is {}; moving to {}",
                                pool.url(at), pool.health(at).as_str(), pool.url(current)
                            );
                            self.lose_ws(&mut ws, &e);
                            retry_at = Some(Instant::now());
                            poll_at = Instant::now();
                        }
                    }
                }

                () = sleep_until(poll_at), if ws.is_none() => {
                    self.poll_once(rpc).await?;
                    poll_at = Instant::now() + self.config.poll_interval;
                }
            }
        }
    }

    /// Where the subscription goes now: the WebSocket of the pool's current endpoint when the monitor follows the
    /// pool (with its index), else the configured one.
    fn ws_target(
        &self,
        rpc: &CosmosRpc,
        configured: &WebSocketClientUrl,
    ) -> (Option<usize>, WebSocketClientUrl) {
        let urls = &self.config.websocket_urls;
        if self.shared.is_none() || urls.len() < 2 || urls.len() != rpc.pool().len() {
            return (None, configured.clone());
        }
        let at = rpc.pool().current();
        match urls.get(at).map(|u| u.parse::<WebSocketClientUrl>()) {
            Some(Ok(url)) => (Some(at), url),
            _ => (None, configured.clone()),
        }
    }

    /// Records a lost or failed subscription against the pool endpoint it was on.
    fn blame_ws(&self, rpc: &CosmosRpc, at: Option<usize>, error: &str) {
        if let Some(at) = at {
            rpc.pool().failed(at, error);
        }
    }

    /// Gives up the WebSocket connection and switches to polling until a new one works.
    fn lose_ws(&mut self, ws: &mut Option<WsConn>, error: &str) {
        warn!(chain = %self.chain(), error, "WebSocket lost; polling until it is back");
        self.recheck = true;
        self.record_error(error);
        *ws = None;
        self.set_connected(SourceMode::Polling, false);
    }

    /// Follows the node's `latest` height: delivers up to it while the node is consistent with what was followed,
    /// and reports (ERROR, status) when it is not — its height went below the last delivered one, or, back at
    /// that height, the block there is another — delivering nothing until it is consistent again.
    async fn follow(&mut self, rpc: &CosmosRpc, latest: u64) -> Flow {
        let followed = self.next - 1;
        let was = self.status.borrow().inconsistent.clone();
        let verdict = match consistency::judge(followed, latest, was.is_some() || self.recheck) {
            Judgement::Consistent => None,
            Judgement::WentBack => Some(format!(
                "the node's latest height {latest} is below height {followed}, which relayd already followed"
            )),
            Judgement::CheckBlock => match &self.followed_hash {
                // Nothing delivered by this runner to compare with: the height alone decides.
                None => None,
                Some(hash) => match rpc.block(followed).await {
                    Ok(block) if block.header.hash().to_string() == *hash => None,
                    Ok(block) => Some(format!(
                        "block {followed} on the node is {}, not {hash} as followed: another chain",
                        block.header.hash()
                    )),
                    Err(e) => {
                        // Not judged: keep the verdict as it was, deliver nothing, ask again next time.
                        warn!(chain = %self.chain(), followed, error = %e, "cannot read the followed block to check the node; retrying");
                        self.record_error(&e.to_string());
                        return Ok(());
                    }
                },
            },
        };
        if verdict.is_none() {
            self.recheck = false;
        }
        if verdict != was {
            match &verdict {
                Some(reason) => {
                    error!(chain = %self.chain(), latest, followed, reason = %reason, "the node is not consistent with what relayd followed; its paths stop")
                }
                None => {
                    info!(chain = %self.chain(), latest, followed, "the node is consistent again with what relayd followed")
                }
            }
            self.status
                .send_modify(|s| s.inconsistent = verdict.clone());
        }
        if verdict.is_some() {
            return Ok(());
        }
        self.saw_height(latest);
        self.deliver_up_to(rpc, latest).await
    }

    /// Delivers every height from the next expected one up to `tip`.
    async fn deliver_up_to(&mut self, rpc: &CosmosRpc, tip: u64) -> Flow {
        while self.next <= tip {
            let height = self.next;
            let Some(block) = self.fetch_until_done(rpc, height).await else {
                // Announced but not made yet: wait for the next announcement or poll.
                return Ok(());
            };
            let hash = block.block_hash.clone();
            self.sink
                .send(block)
                .await
                .map_err(|_| StopReason::SinkClosed)?;
            self.next = height + 1;
            self.followed_hash = Some(hash);
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

/// Whether a node's error says the height is gone for good rather than not yet there or unreachable.
fn looks_pruned(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("lowest height") || e.contains("pruned") || e.contains("is not available")
}
