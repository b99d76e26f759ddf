//! The configuration file's shape: ADR-002's `[global]`, `[[chains]]` and `[[connections]]`, extended with the
//! sections relayd needs to run as a service.

use std::net::SocketAddr;
use std::path::PathBuf;

use relayd_messages::{ChainId, ChannelId, ClientId, ConnectionId, PortId};
use serde::{Deserialize, Serialize};

use crate::values::{
    Address, ChannelPattern, GasPrice, HumanDuration, PositiveDuration, TrustThreshold,
};

/// A whole configuration file.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsConfig {
    /// A client is updated once this fraction of its trusting period has passed since its latest consensus
    /// state, even with no packets to relay.
    #[serde(default = "defaults::refresh_fraction")]
    pub refresh_fraction: f64,
    /// Below this much time to expiry the client is in alarm (a warning, shown by the admin API) and its update
    /// goes ahead of any other work on its chain.
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
#[derive(Debug, Clone, Deserialize)]
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

/// What kind of chain software a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainType {
    /// Cosmos SDK on CometBFT.
    #[default]
    Cosmos,
    /// NEAR Protocol with an IBC contract.
    Near,
}

impl ChainType {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cosmos => "cosmos",
            Self::Near => "near",
        }
    }
}

/// One `[[chains]]` entry. Keys that apply to one chain type only are `Option`s here and checked against
/// `type` by validation, so a stray key is reported instead of ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The chain id.
    pub id: ChainId,
    /// The chain software.
    #[serde(default, rename = "type")]
    pub chain_type: ChainType,
    /// RPC endpoint (CometBFT JSON-RPC or NEAR JSON-RPC).
    pub rpc_addr: Address,
    /// Ids of the IBC clients hosted on this chain that relayd relays through.
    #[serde(default)]
    pub client_ids: Vec<ClientId>,
    /// How long a verified header stays trusted.
    #[serde(default = "defaults::trusting_period")]
    pub trusting_period: PositiveDuration,
    /// Share of validator power needed to skip verification steps.
    #[serde(default = "defaults::trust_threshold")]
    pub trust_threshold: TrustThreshold,
    /// Allowed clock difference between relayd and the chain.
    #[serde(default = "defaults::clock_drift")]
    pub clock_drift: HumanDuration,
    /// Upper bound of the chain's block interval; used for liveness checks.
    #[serde(default = "defaults::max_block_time")]
    pub max_block_time: PositiveDuration,
    /// How new blocks and events are learned.
    #[serde(default)]
    pub event_source: EventSource,
    /// Run packet clearing every this many blocks; 0 turns periodic clearing off.
    #[serde(default = "defaults::clear_interval")]
    pub clear_interval: u64,
    /// Which channels are relayed.
    #[serde(default)]
    pub packet_filter: PacketFilter,
    /// Most messages in one transaction.
    #[serde(default = "defaults::max_msg_num")]
    pub max_msg_num: usize,
    /// Largest transaction in bytes.
    #[serde(default = "defaults::max_tx_size")]
    pub max_tx_size: usize,

    // --- cosmos ---
    /// CometBFT WebSocket endpoint; defaults to `/websocket` on the RPC host.
    #[serde(default)]
    pub websocket_addr: Option<Address>,
    /// gRPC endpoint; listings fall back to gRPC-over-ABCI when absent.
    #[serde(default)]
    pub grpc_addr: Option<Address>,
    /// Bech32 prefix of account addresses.
    #[serde(default)]
    pub account_prefix: Option<String>,
    /// Name of the signing key in relayd's key store.
    #[serde(default)]
    pub key_name: Option<String>,
    /// Store key of the IBC module (the commitment prefix).
    #[serde(default)]
    pub store_prefix: Option<String>,
    /// Gas limit used when simulation is not available.
    #[serde(default)]
    pub gas: Option<u64>,
    /// Factor applied to simulated gas.
    #[serde(default, alias = "gas_adjustement")]
    pub gas_adjustment: Option<f64>,
    /// Fee per unit of gas.
    #[serde(default)]
    pub gas_price: Option<GasPrice>,
    /// Highest gas limit relayd will ever set.
    #[serde(default)]
    pub max_gas: Option<u64>,
    /// Most transactions admitted to the chain's mempool and not yet in a block at once.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// ICS-23 proof specs of the chain's store; absent means "take them from the client state".
    #[serde(default)]
    pub proof_specs: Option<Vec<ProofSpecName>>,

    // --- near ---
    /// Account of the IBC contract.
    #[serde(default)]
    pub contract_account: Option<String>,
    /// Account that signs relayd's transactions.
    #[serde(default)]
    pub signer_account: Option<String>,
    /// near-cli style credentials file of the signer's access key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Development only: with no NEAR head stored, trust the node's latest light-client block.
    #[serde(default)]
    pub trust_on_first_use: Option<bool>,
}

/// Settings of a Cosmos chain, with defaults filled in; see [`ChainConfig::cosmos`].
#[derive(Debug, Clone, PartialEq)]
pub struct CosmosSettings {
    /// WebSocket endpoint.
    pub websocket_addr: Address,
    /// gRPC endpoint, if any.
    pub grpc_addr: Option<Address>,
    /// Bech32 account prefix.
    pub account_prefix: String,
    /// Key name in the key store.
    pub key_name: String,
    /// IBC store key.
    pub store_prefix: String,
    /// Fallback gas limit.
    pub gas: u64,
    /// Simulation multiplier.
    pub gas_adjustment: f64,
    /// Fee per unit of gas.
    pub gas_price: GasPrice,
    /// Gas limit cap.
    pub max_gas: u64,
    /// Most transactions waiting for their block at once.
    pub max_in_flight: usize,
    /// Proof specs from config, if given.
    pub proof_specs: Option<Vec<ProofSpecName>>,
}

/// Settings of a NEAR chain; see [`ChainConfig::near`].
#[derive(Debug, Clone, PartialEq)]
pub struct NearSettings {
    /// IBC contract account.
    pub contract_account: String,
    /// Signer account.
    pub signer_account: String,
    /// Credentials file.
    pub key_file: PathBuf,
    /// Whether a start without a stored NEAR head trusts the node's latest light-client block (default false).
    pub trust_on_first_use: bool,
}

impl ChainConfig {
    /// The Cosmos settings with defaults applied, or `None` for other chain types or an invalid entry
    /// (validation reports those).
    pub fn cosmos(&self) -> Option<CosmosSettings> {
        if self.chain_type != ChainType::Cosmos {
            return None;
        }
        Some(CosmosSettings {
            websocket_addr: match &self.websocket_addr {
                Some(addr) => addr.clone(),
                None => self.default_websocket_addr()?,
            },
            grpc_addr: self.grpc_addr.clone(),
            account_prefix: self.account_prefix.clone()?,
            key_name: self.key_name.clone()?,
            store_prefix: self
                .store_prefix
                .clone()
                .unwrap_or_else(|| defaults::STORE_PREFIX.to_owned()),
            gas: self.gas.unwrap_or(defaults::GAS),
            gas_adjustment: self.gas_adjustment.unwrap_or(defaults::GAS_ADJUSTMENT),
            gas_price: self.gas_price.clone()?,
            max_gas: self.max_gas.unwrap_or(defaults::MAX_GAS),
            max_in_flight: self.max_in_flight.unwrap_or(defaults::MAX_IN_FLIGHT),
            proof_specs: self.proof_specs.clone(),
        })
    }

    /// The NEAR settings, or `None` for other chain types or an invalid entry.
    pub fn near(&self) -> Option<NearSettings> {
        if self.chain_type != ChainType::Near {
            return None;
        }
        Some(NearSettings {
            contract_account: self.contract_account.clone()?,
            signer_account: self.signer_account.clone()?,
            key_file: self.key_file.clone()?,
            trust_on_first_use: self.trust_on_first_use.unwrap_or(false),
        })
    }

    fn default_websocket_addr(&self) -> Option<Address> {
        let scheme = if self.rpc_addr.url().scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        self.rpc_addr.with_scheme_and_path(scheme, "/websocket")
    }
}

/// Named ICS-23 proof specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofSpecName {
    /// The Cosmos SDK's IAVL store.
    Iavl,
    /// CometBFT's simple Merkle tree (multistore roots).
    Tendermint,
    /// The AVL+ store of basecoin-style chains (ibc-rs's test chains).
    Avl,
    /// Penumbra's Jellyfish Merkle tree (Penumbra, and relayd's devnet).
    Jmt,
}

/// How a chain's blocks and events reach relayd.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSource {
    /// Push (WebSocket subscription) or pull (polling).
    #[serde(default)]
    pub mode: EventSourceMode,
    /// Polling interval in pull mode, and after a push subscription falls back to polling.
    #[serde(default = "defaults::poll_interval")]
    pub interval: PositiveDuration,
}

impl Default for EventSource {
    fn default() -> Self {
        Self {
            mode: EventSourceMode::default(),
            interval: defaults::poll_interval(),
        }
    }
}

/// Event source modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSourceMode {
    /// Subscribe over WebSocket.
    #[default]
    Push,
    /// Poll block results.
    Pull,
}

/// Channel allow and deny lists. With an empty allow list every channel is allowed; deny wins over allow.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketFilter {
    /// Patterns of channels to relay.
    #[serde(default)]
    pub allow: Vec<ChannelPattern>,
    /// Patterns of channels never to relay.
    #[serde(default)]
    pub deny: Vec<ChannelPattern>,
}

impl PacketFilter {
    /// Whether packets on this port and channel are relayed.
    pub fn allows(&self, port: &str, channel: &str) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|p| p.matches(port, channel));
        allowed && !self.deny.iter().any(|p| p.matches(port, channel))
    }
}

/// One `[[connections]]` entry (ADR-002). `None` ends mean "any".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// The source end.
    #[serde(default)]
    pub src: Option<ConnectionEnd>,
    /// The destination end.
    #[serde(default)]
    pub dest: Option<ConnectionEnd>,
    /// Which ports and channels to relay; `None` means every port, bidirectionally.
    #[serde(default)]
    pub paths: Option<Vec<RelayPath>>,
}

/// One end of a connection, named by the client it is built on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionEnd {
    /// The chain of this end; needed only when `client_id` is listed on more than one chain.
    #[serde(default)]
    pub chain_id: Option<ChainId>,
    /// The client on this end's chain (one of that chain's `client_ids`).
    pub client_id: ClientId,
    /// The connection; `None` means every connection on this client.
    #[serde(default)]
    pub connection_id: Option<ConnectionId>,
}

/// Ports and channels relayed over a connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayPath {
    /// Source port; `None` means any.
    #[serde(default)]
    pub src_port: Option<PortId>,
    /// Destination port; `None` means any.
    #[serde(default)]
    pub dest_port: Option<PortId>,
    /// Source channel; `None` means any.
    #[serde(default)]
    pub src_channel: Option<ChannelId>,
    /// Destination channel; `None` means any.
    #[serde(default)]
    pub dest_channel: Option<ChannelId>,
    /// Direction of packet flow.
    #[serde(default)]
    pub direction: Direction,
    /// Relative priority of this path's packets when a chain's transactions are contended: higher goes first.
    #[serde(default)]
    pub priority: u8,
}

/// Direction of packet flow on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Source to destination only.
    Unidirectional,
    /// Both ways.
    #[default]
    Bidirectional,
}

/// Built-in defaults, in one place so `docs/config.md` can be checked against them.
pub mod defaults {
    use super::*;

    /// Default IBC store key.
    pub const STORE_PREFIX: &str = "ibc";
    /// Default fallback gas limit.
    pub const GAS: u64 = 200_000;
    /// Default simulation multiplier.
    pub const GAS_ADJUSTMENT: f64 = 1.3;
    /// Default gas limit cap.
    pub const MAX_GAS: u64 = 400_000;
    /// Default number of transactions admitted and waiting for their block at once.
    pub const MAX_IN_FLIGHT: usize = 4;

    pub(crate) fn timeout() -> PositiveDuration {
        PositiveDuration::from_secs(10)
    }
    pub(crate) fn record_retention() -> PositiveDuration {
        PositiveDuration::from_secs(7 * 24 * 3600)
    }
    pub(crate) fn admin_listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 3000))
    }
    pub(crate) fn yes() -> bool {
        true
    }
    pub(crate) fn latency_buckets() -> Vec<f64> {
        vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
    }
    pub(crate) fn restart_intensity() -> u32 {
        5
    }
    pub(crate) fn refresh_fraction() -> f64 {
        1.0 / 3.0
    }
    pub(crate) fn expiry_alarm() -> PositiveDuration {
        PositiveDuration::from_secs(24 * 3600)
    }
    pub(crate) fn check_interval() -> PositiveDuration {
        PositiveDuration::from_secs(30)
    }
    pub(crate) fn restart_period() -> PositiveDuration {
        PositiveDuration::from_secs(60)
    }
    pub(crate) fn backoff_base() -> PositiveDuration {
        PositiveDuration::from_millis(100)
    }
    pub(crate) fn backoff_cap() -> PositiveDuration {
        PositiveDuration::from_secs(30)
    }
    pub(crate) fn trusting_period() -> PositiveDuration {
        PositiveDuration::from_secs(336 * 3600)
    }
    pub(crate) fn trust_threshold() -> TrustThreshold {
        TrustThreshold::TWO_THIRDS
    }
    pub(crate) fn clock_drift() -> HumanDuration {
        HumanDuration(std::time::Duration::from_secs(5))
    }
    pub(crate) fn max_block_time() -> PositiveDuration {
        PositiveDuration::from_secs(30)
    }
    pub(crate) fn poll_interval() -> PositiveDuration {
        PositiveDuration::from_secs(1)
    }
    pub(crate) fn clear_interval() -> u64 {
        100
    }
    pub(crate) fn max_msg_num() -> usize {
        30
    }
    pub(crate) fn max_tx_size() -> usize {
        2 * 1024 * 1024
    }
}
