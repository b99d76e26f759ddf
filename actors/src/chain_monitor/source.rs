//! What a chain backend implements for the ChainMonitor: a source of every block's IBC events, in order, and
//! the one `BlockEvents` and monitor status both kinds of chain deliver. Cosmos implements it in
//! `chain::cosmos::backend`, NEAR in `chain::near::backend`, so the monitor runs over either.

use std::future::Future;

use relayd_messages::ObservedEvent;
use tokio::sync::{mpsc, watch};

/// The IBC events of one block, delivered for every height in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEvents {
    /// The chain id.
    pub chain: String,
    /// The block height.
    pub height: u64,
    /// The block's time, ns since the epoch: what timeouts on this chain are judged against.
    pub time_ns: u64,
    /// The block's hash as the node reports it (hex): what tells the same chain from another one at a height
    /// relayd already followed.
    pub block_hash: String,
    /// The block's IBC events in block order.
    pub events: Vec<ObservedEvent>,
    /// What in the block could not be read (malformed IBC events, inconsistent results); already logged.
    pub errors: Vec<EventError>,
}

/// How the monitor currently learns about new blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceMode {
    /// From a live WebSocket `NewBlock` subscription.
    Push,
    /// By polling the node's latest height: pull mode, or push mode while the WebSocket is down or silent.
    Polling,
}

/// A height the monitor cannot get past: it keeps retrying, and nothing after it is delivered meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    /// The height whose block or results cannot be fetched.
    pub height: u64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last error.
    pub error: String,
    /// Whether the node's answer says it no longer keeps that height (pruned); then retrying cannot help and an
    /// operator must point relayd at an archive node or move the start height.
    pub likely_pruned: bool,
}

/// What the monitor is doing, for status endpoints and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorStatus {
    /// How new blocks are being learned.
    pub mode: SourceMode,
    /// Whether the node answered the last attempt (the WebSocket in push mode, `status` when polling).
    pub connected: bool,
    /// The last height delivered.
    pub last_height: Option<u64>,
    /// The highest height the node has announced.
    pub latest_seen: Option<u64>,
    /// WebSocket (re)connection attempts after the first.
    pub reconnects: u64,
    /// Errors seen so far: failed requests, lost subscriptions, watchdog expiries.
    pub errors: u64,
    /// The last error, for humans.
    pub last_error: Option<String>,
    /// Set while a height cannot be fetched after several attempts.
    pub stalled: Option<Stalled>,
    /// Set while the node is not consistent with what relayd already followed (its height went below the last
    /// delivered one, or the block there is another): why, in words. Nothing is delivered meanwhile.
    pub inconsistent: Option<String>,
}

/// Why [`EventSource::run`] returned. It never returns for any other reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The shutdown signal fired.
    Shutdown,
    /// The receiving end of the sink was dropped.
    SinkClosed,
}

/// Why one event could not be read. Other events of the block are still returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("height {height}: {event} event: {reason}")]
pub struct EventError {
    /// Block height.
    pub height: u64,
    /// The event type.
    pub event: String,
    /// What was wrong.
    pub reason: String,
}

/// Where a chain's blocks and IBC events come from.
pub trait EventSource: Unpin {
    /// Delivers every height from `start` on into `sink`, in order, until `shutdown` resolves or the sink
    /// closes. Node failures are retried inside.
    fn run(
        self,
        start: u64,
        sink: mpsc::Sender<BlockEvents>,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> impl Future<Output = ()>;

    /// The source's live status, when it keeps one: the ChainMonitor tells the coordinator from it when the
    /// node stops or starts again being consistent with what was followed.
    fn status(&self) -> Option<watch::Receiver<MonitorStatus>> {
        None
    }
}
