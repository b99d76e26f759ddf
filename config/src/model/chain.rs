//! One `[[chains]]` entry: the keys every chain has, those of one chain type, and the per-type settings with
//! defaults applied that the actors read.

use std::path::PathBuf;

use relayd_messages::{ChainId, ClientId};
use serde::{Deserialize, Serialize};

use super::defaults;
use crate::values::{
    Address, ChannelPattern, Coin, GasPrice, HumanDuration, PositiveDuration, TrustThreshold,
};

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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The chain id.
    pub id: ChainId,
    /// The chain software.
    #[serde(default, rename = "type")]
    pub chain_type: ChainType,
    /// RPC endpoint (CometBFT JSON-RPC or NEAR JSON-RPC): the one-element form of `rpc_addrs`; exactly one of
    /// the two is set (validation checks it). Read the endpoints with [`ChainConfig::rpc_endpoints`].
    #[serde(default)]
    pub rpc_addr: Option<Address>,
    /// Several RPC endpoints of the same chain (Cosmos only): relayd scores them and reads from the best healthy
    /// one, moving its event subscription when that one fails.
    #[serde(default)]
    pub rpc_addrs: Option<Vec<Address>>,
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
    /// Name of the signing key in relayd's key store: the one-element form of `key_names`; exactly one of the two
    /// is set on a Cosmos chain (validation checks it). Read the names with [`ChainConfig::key_list`].
    #[serde(default)]
    pub key_name: Option<String>,
    /// Several signing keys of the same chain (Cosmos only): each signs on its own account sequence, so
    /// transactions go out on several accounts in parallel. The first one is the chain's primary signer.
    #[serde(default)]
    pub key_names: Option<Vec<String>>,
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
    /// Lowest balance, in the fee denom, a signing account may hold and still take new transactions: below
    /// it the account's lane is drained (its work finishes, new work goes to the other keys) and an alarm is
    /// raised; once topped up it takes work again. With every key below it relaying goes on, alarmed.
    #[serde(default)]
    pub min_balance: Option<Coin>,
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
    /// near-cli style credentials file of the signer's access key: the one-element form of `key_files`; exactly
    /// one of the two is set on a NEAR chain (validation checks it). Read the files with
    /// [`ChainConfig::key_file_list`].
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Credentials files of several access keys of `signer_account` (NEAR only): each key has its own nonce, so
    /// transactions go out on several keys in parallel. The first one is the chain's primary key.
    #[serde(default)]
    pub key_files: Option<Vec<PathBuf>>,
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
    /// Key name in the key store: the primary signer (the first of `key_names`).
    pub key_name: String,
    /// Every signing key, the primary first; each one is a sequence lane of the chain's TxSubmitter.
    pub key_names: Vec<String>,
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
    /// Lowest balance in the fee denom a key's lane takes new transactions at, if set.
    pub min_balance: Option<u128>,
    /// Proof specs from config, if given.
    pub proof_specs: Option<Vec<ProofSpecName>>,
}

/// Settings of a NEAR chain; see [`ChainConfig::near`].
#[derive(Debug, Clone, PartialEq)]
pub struct NearSettings {
    /// The first RPC endpoint (what one-off commands use).
    pub rpc_addr: Address,
    /// Every RPC endpoint, in file order (`rpc_addrs`, or `rpc_addr` as a list of one).
    pub rpc_addrs: Vec<Address>,
    /// IBC contract account.
    pub contract_account: String,
    /// Signer account.
    pub signer_account: String,
    /// Credentials file of the primary key (the first of `key_files`).
    pub key_file: PathBuf,
    /// Every key's credentials file, the primary first; each one is a nonce lane of the chain's TxSubmitter.
    pub key_files: Vec<PathBuf>,
    /// Whether a start without a stored NEAR head trusts the node's latest light-client block (default false).
    pub trust_on_first_use: bool,
}

/// A chain entry without any RPC endpoint; validation refuses such a file, so only entries built in code hit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain {0}: no rpc_addr or rpc_addrs configured")]
pub struct NoRpcAddr(pub String);

impl ChainConfig {
    /// Every configured RPC endpoint, in file order: `rpc_addrs`, or `rpc_addr` as a list of one.
    pub fn rpc_endpoints(&self) -> &[Address] {
        match (&self.rpc_addrs, &self.rpc_addr) {
            (Some(list), _) if !list.is_empty() => list,
            (_, Some(one)) => std::slice::from_ref(one),
            _ => &[],
        }
    }

    /// Every configured signing key name, in file order: `key_names`, or `key_name` as a list of one.
    pub fn key_list(&self) -> &[String] {
        match (&self.key_names, &self.key_name) {
            (Some(list), _) if !list.is_empty() => list,
            (_, Some(one)) => std::slice::from_ref(one),
            _ => &[],
        }
    }

    /// Every configured NEAR credentials file, in file order: `key_files`, or `key_file` as a list of one.
    pub fn key_file_list(&self) -> &[PathBuf] {
        match (&self.key_files, &self.key_file) {
            (Some(list), _) if !list.is_empty() => list,
            (_, Some(one)) => std::slice::from_ref(one),
            _ => &[],
        }
    }

    /// The first configured RPC endpoint: the one single-endpoint tools (the CLI's queries and transactions)
    /// talk to when they do not take the whole list.
    pub fn primary_rpc(&self) -> Result<&Address, NoRpcAddr> {
        self.rpc_endpoints()
            .first()
            .ok_or_else(|| NoRpcAddr(self.id.to_string()))
    }

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
            key_name: self.key_list().first()?.clone(),
            key_names: self.key_list().to_vec(),
            store_prefix: self
                .store_prefix
                .clone()
                .unwrap_or_else(|| defaults::STORE_PREFIX.to_owned()),
            gas: self.gas.unwrap_or(defaults::GAS),
            gas_adjustment: self.gas_adjustment.unwrap_or(defaults::GAS_ADJUSTMENT),
            gas_price: self.gas_price.clone()?,
            max_gas: self.max_gas.unwrap_or(defaults::MAX_GAS),
            max_in_flight: self.max_in_flight.unwrap_or(defaults::MAX_IN_FLIGHT),
            min_balance: self.min_balance.as_ref().map(|c| c.amount),
            proof_specs: self.proof_specs.clone(),
        })
    }

    /// The NEAR settings, or `None` for other chain types or an invalid entry.
    pub fn near(&self) -> Option<NearSettings> {
        if self.chain_type != ChainType::Near {
            return None;
        }
        Some(NearSettings {
            rpc_addr: self.primary_rpc().ok()?.clone(),
            rpc_addrs: self.rpc_endpoints().to_vec(),
            contract_account: self.contract_account.clone()?,
            signer_account: self.signer_account.clone()?,
            key_file: self.key_file_list().first()?.clone(),
            key_files: self.key_file_list().to_vec(),
            trust_on_first_use: self.trust_on_first_use.unwrap_or(false),
        })
    }

    fn default_websocket_addr(&self) -> Option<Address> {
        websocket_of(self.rpc_endpoints().first()?)
    }
}

/// The CometBFT WebSocket endpoint of an RPC endpoint: `/websocket` on the same host, `wss` for `https`.
pub fn websocket_of(rpc: &Address) -> Option<Address> {
    let scheme = if rpc.url().scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    rpc.with_scheme_and_path(scheme, "/websocket")
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
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
