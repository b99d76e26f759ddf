//! How one chain's event monitor runs: its settings, read from a `[[chains]]` entry or given directly, and their
//! checks.

use std::time::Duration;

use backoff::ExponentialBackoff;
use relayd_config::{ChainConfig, EventSourceMode};
use tendermint_rpc::WebSocketClientUrl;

use super::super::rpc::CosmosRpc;

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
    /// With several RPC endpoints, the WebSocket URL of each, in the order of the chain's RPC pool: the
    /// subscription follows the pool's current endpoint. Empty: `websocket_url` only.
    pub websocket_urls: Vec<String>,
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
            websocket_urls: Vec::new(),
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
        let endpoints = chain.rpc_endpoints();
        let rpc_url = endpoints
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let derive = |rpc: &relayd_config::values::Address| {
            relayd_config::websocket_of(rpc)
                .map(|ws| ws.to_string())
                .ok_or_else(|| MonitorError::BadAddress {
                    chain: id.clone(),
                    what: "rpc",
                    url: rpc.to_string(),
                    reason: "no host and port to derive the WebSocket address from".into(),
                })
        };
        let websocket_url = match (&chain.websocket_addr, endpoints.first()) {
            (Some(ws), _) => ws.to_string(),
            (None, Some(first)) => derive(first)?,
            (None, None) => {
                return Err(MonitorError::BadAddress {
                    chain: id.clone(),
                    what: "rpc",
                    url: String::new(),
                    reason: "no rpc_addr configured".into(),
                })
            }
        };
        let websocket_urls = match (&chain.websocket_addr, endpoints.len()) {
            (None, n) if n > 1 => endpoints.iter().map(derive).collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let mut config = Self::new(&id, &rpc_url, &websocket_url);
        config.websocket_urls = websocket_urls;
        config.mode = chain.event_source.mode;
        config.poll_interval = chain.event_source.interval.get();
        config.max_block_time = chain.max_block_time.get();
        config.backoff_base = backoff_base;
        config.backoff_cap = backoff_cap;
        Ok(config)
    }

    pub(super) fn validate(&self) -> Result<(), MonitorError> {
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
    pub(super) fn ws_url(&self) -> Result<Option<WebSocketClientUrl>, MonitorError> {
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

    pub(super) fn watchdog(&self) -> Duration {
        self.max_block_time.saturating_mul(self.watchdog_blocks)
    }

    pub(super) fn backoff(&self) -> ExponentialBackoff {
        // A little jitter so that monitors of many chains behind one proxy do not retry in lock-step.
        crate::retry::exponential(self.backoff_base, self.backoff_cap, 0.1)
    }
}
