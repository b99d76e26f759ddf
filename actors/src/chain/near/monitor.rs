//! The NEAR event source: every final height in order, with the IBC events the contract recorded at it
//! (`get_ibc_events_at`), delivered as the same `BlockEvents` stream the Cosmos monitor produces, so the per-chain
//! actors consume either unchanged. NEAR has no event subscription for contract state, so it polls.
//!
//! A node whose final height goes below the last height followed (restored from an older copy, or another chain
//! behind the same address) is judged as the Cosmos monitor judges it (`chain_monitor::consistency`): ERROR, the
//! status says why and nothing is delivered until the node is back at that height with the block followed there.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::endpoint::NearEndpoint;
use crate::chain::endpoint::{ChainEndpoint, ChainError};
use crate::chain_monitor::consistency::{self, Judgement};
use crate::chain_monitor::{BlockEvents, MonitorStatus, SourceMode, Stalled, StopReason};

/// How the NEAR monitor polls.
#[derive(Debug, Clone)]
pub struct NearMonitorConfig {
    /// Time between looks at the final height when caught up.
    pub poll_interval: Duration,
    /// Longest wait between retries of a failing request.
    pub retry_cap: Duration,
    /// Failed attempts at one height before it is reported as stalled.
    pub stall_after: u32,
}

impl Default for NearMonitorConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            retry_cap: Duration::from_secs(10),
            stall_after: 3,
        }
    }
}

/// Polls a NEAR node's final blocks and the IBC contract's events.
pub struct NearEventMonitor {
    endpoint: NearEndpoint,
    config: NearMonitorConfig,
    status: watch::Sender<MonitorStatus>,
}

/// Whether a height holds a block: NEAR producers may skip heights, which then have neither block nor events.
enum Height {
    Block(BlockEvents),
    Skipped,
}

impl NearEventMonitor {
    /// A monitor of `endpoint`'s chain; nothing is contacted until [`NearEventMonitor::run`].
    pub fn new(endpoint: NearEndpoint, config: NearMonitorConfig) -> Self {
        let (status, _) = watch::channel(MonitorStatus {
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
        Self {
            endpoint,
            config,
            status,
        }
    }

    /// A live view of what the monitor is doing.
    pub fn status(&self) -> watch::Receiver<MonitorStatus> {
        self.status.subscribe()
    }

    /// Delivers the events of every final height from `start_height` on into `sink`, strictly in order (skipped
    /// heights are not delivered), until `shutdown` completes or the sink's receiver is dropped. Failures are
    /// retried with capped backoff and show in [`NearEventMonitor::status`].
    pub async fn run(
        self,
        start_height: u64,
        sink: mpsc::Sender<BlockEvents>,
        shutdown: impl Future<Output = ()>,
    ) -> StopReason {
        let chain = self.endpoint.chain_id().to_owned();
        let closed = sink.clone();
        let reason = tokio::select! {
            () = shutdown => StopReason::Shutdown,
            () = closed.closed() => StopReason::SinkClosed,
            reason = self.deliver(start_height.max(1), sink) => reason,
        };
        info!(chain = %chain, ?reason, "NEAR event monitor stopped");
        reason
    }

    async fn deliver(&self, mut next: u64, sink: mpsc::Sender<BlockEvents>) -> StopReason {
        let mut attempts = 0u32;
        // The last height delivered with its block hash, and whether the node must be checked against it even at
        // or above that height (it stopped answering, so what answers next may be another node).
        let mut followed: Option<(u64, String)> = None;
        let mut recheck = false;
        loop {
            let latest = match self.endpoint.final_height().await {
                Ok(h) => {
                    self.status.send_modify(|s| {
                        s.connected = true;
                        s.latest_seen = Some(h);
                    });
                    h
                }
                Err(e) => {
                    recheck = true;
                    self.failed(next, &mut attempts, &e).await;
                    continue;
                }
            };
            if !self
                .consistent(followed.as_ref(), next - 1, latest, &mut recheck)
                .await
            {
                tokio::time::sleep(self.config.poll_interval).await;
                continue;
            }
            if next > latest {
                tokio::time::sleep(self.config.poll_interval).await;
                continue;
            }
            match self.height(next, latest).await {
                Ok(found) => {
                    attempts = 0;
                    if let Height::Block(events) = found {
                        let hash = events.block_hash.clone();
                        if sink.send(events).await.is_err() {
                            return StopReason::SinkClosed;
                        }
                        followed = Some((next, hash));
                        self.status.send_modify(|s| {
                            s.last_height = Some(next);
                            s.stalled = None;
                        });
                    }
                    next += 1;
                }
                Err(e) => {
                    recheck = true;
                    self.failed(next, &mut attempts, &e).await;
                }
            }
        }
    }

    /// Whether the node, whose final height is `latest`, agrees with what was followed up to height `below`
    /// (`followed`: the last block delivered, if this run delivered any). Reports each change (ERROR when it stops
    /// agreeing, status `inconsistent`); a block that cannot be read leaves the verdict as it was.
    async fn consistent(
        &self,
        followed: Option<&(u64, String)>,
        below: u64,
        latest: u64,
        recheck: &mut bool,
    ) -> bool {
        let chain = self.endpoint.chain_id();
        let was = self.status.borrow().inconsistent.clone();
        let verdict = match consistency::judge(below, latest, was.is_some() || *recheck) {
            Judgement::Consistent => None,
            Judgement::WentBack => Some(format!(
                "the node's final height {latest} is below height {below}, which relayd already followed"
            )),
            Judgement::CheckBlock => match followed {
                // Nothing delivered by this run to compare with: the height alone decides.
                None => None,
                Some((height, hash)) => match self.endpoint.rpc().block(Some(*height)).await {
                    Ok(block) if block.header.hash.to_string() == *hash => None,
                    Ok(block) => Some(format!(
                        "block {height} on the node is {}, not {hash} as followed: another chain",
                        block.header.hash
                    )),
                    Err(ChainError::Node { .. }) => Some(format!(
                        "the node has no block {height}, which relayd followed as {hash}: another chain"
                    )),
                    Err(e) => {
                        warn!(chain, height, error = %e, "cannot read the followed block to check the node; retrying");
                        self.status.send_modify(|s| {
                            s.errors += 1;
                            s.last_error = Some(e.to_string());
                        });
                        return false;
                    }
                },
            },
        };
        if verdict.is_none() {
            *recheck = false;
        }
        if verdict != was {
            match &verdict {
                Some(reason) => {
                    error!(chain, latest, followed = below, reason = %reason, "the node is not consistent with what relayd followed; its paths stop")
                }
                None => {
                    info!(
                        chain,
                        latest,
                        followed = below,
                        "the node is consistent again with what relayd followed"
                    )
                }
            }
            self.status
                .send_modify(|s| s.inconsistent = verdict.clone());
        }
        verdict.is_none()
    }

    /// The events of `height`, which is at or below the final height `latest`.
    async fn height(&self, height: u64, latest: u64) -> Result<Height, ChainError> {
        let (time_ns, block_hash) = match self.endpoint.rpc().block(Some(height)).await {
            Ok(block) => (
                block.header.timestamp_nanosec,
                block.header.hash.to_string(),
            ),
            // Below the final height a missing block is a skipped height, not a lagging node.
            Err(ChainError::Node { .. }) if height < latest => return Ok(Height::Skipped),
            Err(e) => return Err(e),
        };
        let method = "get_ibc_events_at";
        let result = self
            .endpoint
            .view(method, super::contract::events_args(height))
            .await?;
        let (events, errors) = super::contract::events(height, &result)
            .map_err(|e| ChainError::rpc(self.endpoint.chain_id(), method, e))?;
        for e in &errors {
            warn!(chain = self.endpoint.chain_id(), error = %e, "unreadable IBC event");
        }
        Ok(Height::Block(BlockEvents {
            chain: self.endpoint.chain_id().to_owned(),
            height,
            time_ns,
            block_hash,
            events,
            errors,
        }))
    }

    async fn failed(&self, height: u64, attempts: &mut u32, error: &ChainError) {
        *attempts = attempts.saturating_add(1);
        warn!(chain = self.endpoint.chain_id(), height, attempts = *attempts, %error, "NEAR monitor request failed");
        let stalled = (*attempts >= self.config.stall_after).then(|| Stalled {
            height,
            attempts: *attempts,
            error: error.to_string(),
            likely_pruned: false,
        });
        self.status.send_modify(|s| {
            s.connected = !matches!(error, ChainError::Rpc { .. });
            s.errors += 1;
            s.last_error = Some(error.to_string());
            if stalled.is_some() {
                s.stalled = stalled.clone();
            }
        });
        let base = self.config.poll_interval;
        let cap = self.config.retry_cap.min(base.saturating_mul(64));
        let backoff = crate::retry::delay(base, cap, *attempts);
        tokio::time::sleep(backoff).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::near::light_client::sha256;
    use crate::chain::near::rpc::NearRpc;
    use crate::chain::near::test_rpc::{block, serve, Reply};
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// A chain whose final block is 5, with height 3 skipped, a send at height 4, and one failed events read.
    #[tokio::test]
    async fn final_heights_are_delivered_in_order_skipping_missing_blocks_and_retrying_failures() {
        let failures = Arc::new(AtomicU32::new(0));
        let failed = failures.clone();
        let rpc = serve(Arc::new(move |method: &str, params: &Value| match method {
            "block" if params["finality"] == "final" => {
                Reply::Result(block(5, 4, sha256(b"5"), sha256(b"root")))
            }
            "block" => match params["block_id"].as_u64() {
                Some(3) => Reply::Error(json!({
                    "name": "HANDLER_ERROR",
                    "cause": {"name": "UNKNOWN_BLOCK", "info": {"error_message": "DB Not Found Error"}},
                    "code": -32000, "message": "Server error", "data": "DB Not Found Error"
                })),
                Some(h) => Reply::Result(block(h, h.saturating_sub(1), sha256(&h.to_le_bytes()), sha256(b"root"))),
                None => Reply::Error(json!({"code": -32602, "message": "bad params"})),
            },
            "query" => {
                let args: Value = serde_json::from_slice(
                    &base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        params["args_base64"].as_str().unwrap_or_default(),
                    )
                    .unwrap_or_default(),
                )
                .unwrap_or(Value::Null);
                let h = args["height"]["revision_height"].as_u64().unwrap_or(0);
                if h == 2 && failed.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Reply::Error(json!({"code": -32000, "message": "Server error", "data": "overloaded"}));
                }
                let events = if h == 4 {
                    json!([{"ChannelOpenInit": {}}]).to_string() // malformed: reported, not delivered
                } else {
                    "[]".to_owned()
                };
                Reply::Result(json!({
                    "result": events.into_bytes(), "logs": [],
                    "block_height": 5, "block_hash": sha256(b"5").to_string(),
                }))
            }
            other => Reply::Error(json!({"code": -32601, "message": format!("no method {other}")})),
        }))
        .await;
        let endpoint = NearEndpoint::new(
            NearRpc::new("near-0", &rpc.url),
            "ibc.near".parse().expect("id"),
        );
        let monitor = NearEventMonitor::new(
            endpoint,
            NearMonitorConfig {
                poll_interval: Duration::from_millis(10),
                retry_cap: Duration::from_millis(20),
                stall_after: 1,
            },
        );
        let status = monitor.status();
        let (sink, mut stream) = mpsc::channel(8);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(monitor.run(1, sink, async {
            let _ = stopped.await;
        }));
        let mut heights = Vec::new();
        let mut errors = 0;
        while heights.len() < 4 {
            let b = stream.recv().await.expect("a block");
            errors += b.errors.len();
            heights.push(b.height);
        }
        assert_eq!(heights, vec![1, 2, 4, 5]);
        assert_eq!(errors, 1, "the malformed event at height 4 is reported");
        assert!(failures.load(Ordering::SeqCst) >= 2, "height 2 was retried");
        {
            let s = status.borrow();
            assert!(s.errors >= 1);
            assert_eq!(s.last_height, Some(5));
            assert_eq!(s.latest_seen, Some(5));
        }
        let _ = stop.send(());
        assert_eq!(running.await.expect("join"), StopReason::Shutdown);
    }

    /// A node that answers as `(final height, chain)`: chain 0 is the one followed, chain 1 another with the same
    /// heights and other block hashes.
    fn node(state: Arc<std::sync::Mutex<(u64, u8)>>) -> crate::chain::near::test_rpc::Handler {
        Arc::new(move |method: &str, params: &Value| {
            let (fin, chain) = *state.lock().expect("node state");
            let hash = |h: u64| sha256(&[h.to_le_bytes().as_slice(), &[chain]].concat());
            match method {
                "block" if params["finality"] == "final" => {
                    Reply::Result(block(fin, fin - 1, hash(fin), sha256(b"root")))
                }
                "block" => match params["block_id"].as_u64() {
                    Some(h) if h <= fin => {
                        Reply::Result(block(h, h.saturating_sub(1), hash(h), sha256(b"root")))
                    }
                    _ => Reply::Error(json!({
                        "name": "HANDLER_ERROR",
                        "cause": {"name": "UNKNOWN_BLOCK", "info": {"error_message": "DB Not Found Error"}},
                        "code": -32000, "message": "Server error", "data": "DB Not Found Error"
                    })),
                },
                "query" => Reply::Result(json!({
                    "result": b"[]".to_vec(), "logs": [],
                    "block_height": fin, "block_hash": hash(fin).to_string(),
                })),
                other => {
                    Reply::Error(json!({"code": -32601, "message": format!("no method {other}")}))
                }
            }
        })
    }

    /// Waits until the monitor's status satisfies `check`.
    async fn status_until(
        status: &mut watch::Receiver<MonitorStatus>,
        check: impl Fn(&MonitorStatus) -> bool,
    ) {
        tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| check(s)))
            .await
            .expect("the status changed")
            .expect("the monitor runs");
    }

    #[tokio::test]
    async fn a_node_that_went_back_delivers_nothing_until_the_followed_block_is_back() {
        let state = Arc::new(std::sync::Mutex::new((5u64, 0u8)));
        let rpc = serve(node(state.clone())).await;
        let endpoint = NearEndpoint::new(
            NearRpc::new("near-0", &rpc.url),
            "ibc.near".parse().expect("id"),
        );
        let monitor = NearEventMonitor::new(
            endpoint,
            NearMonitorConfig {
                poll_interval: Duration::from_millis(10),
                retry_cap: Duration::from_millis(20),
                stall_after: 1,
            },
        );
        let mut status = monitor.status();
        let (sink, mut stream) = mpsc::channel(8);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(monitor.run(1, sink, async {
            let _ = stopped.await;
        }));
        for h in 1..=5 {
            assert_eq!(stream.recv().await.expect("a block").height, h);
        }
        status_until(&mut status, |s| s.last_height == Some(5)).await;

        // Restored from an older copy: the final height is below the one followed.
        *state.lock().unwrap() = (2, 0);
        status_until(&mut status, |s| {
            s.inconsistent
                .as_deref()
                .is_some_and(|r| r.contains("below height 5"))
        })
        .await;
        // Another chain past that height: its block 5 is not the one followed.
        *state.lock().unwrap() = (7, 1);
        status_until(&mut status, |s| {
            s.inconsistent
                .as_deref()
                .is_some_and(|r| r.contains("another chain"))
        })
        .await;
        assert!(stream.try_recv().is_err(), "nothing delivered meanwhile");
        // The followed chain is back, ahead: consistent again, and it goes on from height 6.
        *state.lock().unwrap() = (7, 0);
        assert_eq!(stream.recv().await.expect("a block").height, 6);
        assert_eq!(stream.recv().await.expect("a block").height, 7);
        assert_eq!(status.borrow().inconsistent, None);
        let _ = stop.send(());
        assert_eq!(running.await.expect("join"), StopReason::Shutdown);
    }
}
