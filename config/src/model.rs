//! The configuration file's shape: ADR-002's `[global]`, `[[chains]]` and `[[connections]]`, extended with the
//! sections relayd needs to run as a service.

mod chain;
mod connection;
pub mod defaults;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use chain::*;
pub use connection::*;

use crate::values::PositiveDuration;

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Free text naming the setup; shown nowhere but kept so ADR-002 files parse.
    #[serde(default)]
    pub title: Option<String>,
    /// Process-wide settings.
    #[serde(default)]
    pub global: GlobalConfig,
    /// The admin HTTP server.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Metrics.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Restart policy defaults for supervised actors.
    #[serde(default)]
    pub supervision: SupervisionConfig,
    /// Keeping the IBC clients relayd relays through alive.
    #[serde(default)]
    pub clients: ClientsConfig,
    /// Every chain relayd talks to, source or destination.
    #[serde(default)]
    pub chains: Vec<ChainConfig>,
    /// What to relay between the chains; absent means nothing is relayed until configured.
    #[serde(default)]
    pub connections: Option<Vec<Connection>>,
}

/// `[global]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// How often relaying work is retried, and the default deadline for node requests.
    #[serde(default = "defaults::timeout")]
    pub timeout: PositiveDuration,
    /// The relaying algorithm.
    #[serde(default)]
    pub strategy: Strategy,
    /// Where packet state, checkpoints and trusted light-client states are kept.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Minimum level of log lines.
    #[serde(default)]
    pub log_level: LogLevel,
    /// Log line format.
    #[serde(default)]
    pub log_format: LogFormat,
    /// How long the records of acknowledged and timed-out packets are kept before compaction removes them
    /// (their per-channel counts stay).
    #[serde(default = "defaults::record_retention")]
    pub record_retention: PositiveDuration,
    /// ICS-20 packets (source port `transfer`) whose memo is longer than this many bytes are not relayed.
    #[serde(default = "defaults::ics20_max_memo_size")]
    pub ics20_max_memo_size: u64,
    /// ICS-20 packets whose receiver is longer than this many bytes are not relayed.
    #[serde(default = "defaults::ics20_max_receiver_size")]
    pub ics20_max_receiver_size: u64,
    /// How many packet builders run at once; further pending packets wait (as stored records) for a slot, so a
    /// backlog of any length costs a fixed number of builders.
    #[serde(default = "defaults::max_builders")]
    pub max_builders: std::num::NonZeroUsize,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            timeout: defaults::timeout(),
            strategy: Strategy::default(),
            data_dir: None,
            log_level: LogLevel::default(),
            log_format: LogFormat::default(),
            record_retention: defaults::record_retention(),
            ics20_max_memo_size: defaults::ics20_max_memo_size(),
            ics20_max_receiver_size: defaults::ics20_max_receiver_size(),
            max_builders: defaults::max_builders(),
        }
    }
}

/// The relaying algorithm (ADR-002 `strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// React to chain events and clear pending packets (ICS-18's naive relayer).
    #[default]
    Naive,
}

/// Log levels, lowest volume last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Problems relayd works around.
    Warn,
    /// Problems that stop work.
    Error,
}

impl LogLevel {
    /// The level's name as tracing filters spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[admin]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address the admin HTTP server binds to.
    #[serde(
        default = "defaults::admin_listen",
        deserialize_with = "crate::values::socket_addr"
    )]
    pub listen_addr: SocketAddr,
    /// File holding the bearer token for mutating endpoints; without it they are disabled.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen_addr: defaults::admin_listen(),
            token_file: None,
        }
    }
}

/// `[telemetry]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Whether metrics are collected and served at the admin server's `/metrics`.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Upper bounds, in seconds, of the relay-latency histogram buckets; strictly increasing.
    #[serde(default = "defaults::latency_buckets")]
    pub latency_buckets: Vec<f64>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            latency_buckets: defaults::latency_buckets(),
        }
    }
}

/// `[clients]`: the lifecycle of the clients relayd relays through (both ends of every configured connection).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsConfig {
    /// A client is updated once this fraction of its trusting period has passed since its latest consensus
    /// state, even with no packets to relay.
    #[serde(default = "defaults::refresh_fraction")]
    pub refresh_fraction: f64,
    /// Below this much time to expiry the client is in alarm (a warning, shown by the admin API) and its update
    /// goes ahead of any other work on its chain. For a client whose trusting period is shorter than twice this, half
    /// its trusting period is used instead.
    #[serde(default = "defaults::expiry_alarm")]
    pub expiry_alarm: PositiveDuration,
    /// How often every client is read and judged.
    #[serde(default = "defaults::check_interval")]
    pub check_interval: PositiveDuration,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self {
            refresh_fraction: defaults::refresh_fraction(),
            expiry_alarm: defaults::expiry_alarm(),
            check_interval: defaults::check_interval(),
        }
    }
}

/// `[supervision]`: OTP-style restart policy defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionConfig {
    /// Which siblings restart with a failed per-chain actor.
    #[serde(default)]
    pub strategy: RestartStrategy,
    /// Most restarts allowed within `restart_period` before the failure escalates.
    #[serde(default = "defaults::restart_intensity")]
    pub restart_intensity: u32,
    /// The window `restart_intensity` is counted over.
    #[serde(default = "defaults::restart_period")]
    pub restart_period: PositiveDuration,
    /// First restart delay; doubles per consecutive restart.
    #[serde(default = "defaults::backoff_base")]
    pub backoff_base: PositiveDuration,
    /// Longest restart delay.
    #[serde(default = "defaults::backoff_cap")]
    pub backoff_cap: PositiveDuration,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            strategy: RestartStrategy::default(),
            restart_intensity: defaults::restart_intensity(),
            restart_period: defaults::restart_period(),
            backoff_base: defaults::backoff_base(),
            backoff_cap: defaults::backoff_cap(),
        }
    }
}

/// Which children restart when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartStrategy {
    /// Only the failed child.
    #[default]
    OneForOne,
    /// The failed child and every child started after it.
    RestForOne,
}
