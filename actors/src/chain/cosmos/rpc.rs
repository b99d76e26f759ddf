//! The CometBFT RPC connection of one Cosmos chain: light blocks for the light client, chain status, and the
//! blocks and block results the event monitor reads.

use std::time::Duration;

use cosmrs::proto::cosmos::tx::v1beta1::{TxBody, TxRaw};
use prost::Message;
use relayd_messages::Datagram;
use tendermint::block::Height;
use tendermint::{node, validator};
use tendermint_light_client_verifier::types::LightBlock;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::endpoint::block_results;
use tendermint_rpc::{Client, HttpClient, Paging};

use super::light_client::LightBlockSource;
use crate::chain::endpoint::ChainError;
use crate::rpc_pool::{PoolSettings, RpcPool};

pub mod bounded;
pub mod prober;

pub use bounded::{BoundedHttp, MAX_RESPONSE_BYTES};

/// RPC errors, naming the chain and the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{chain}: {call}: {reason}")]
pub struct RpcError {
    /// The chain.
    pub chain: String,
    /// The RPC call that failed.
    pub call: String,
    /// The transport or node error.
    pub reason: String,
}

/// Why a node's reported version names no RPC dialect relayd speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialectError {
    /// Not `major.minor[.patch...]`.
    #[error("node version {0:?} is not a version number")]
    Unparsable(String),
    /// A version of no known dialect.
    #[error(
        "node version {0} speaks no RPC dialect relayd knows (CometBFT 0.34, 0.37, 0.38 or 1.x)"
    )]
    Unsupported(String),
}

/// The RPC dialect of a node that reports `version` in `status`. CometBFT 0.34 (base64 event attributes,
/// begin/end block events) and 0.37 (plain attributes, begin/end block events) have their own; 0.38 and 1.x
/// share 0.38's (`finalize_block_events`). tendermint-rpc alone refuses 1.x.
pub fn dialect_of(version: &str) -> Result<CompatMode, DialectError> {
    let unparsable = || DialectError::Unparsable(version.to_owned());
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split(['.', '-', '+']);
    let mut number = || {
        parts
            .next()
            .and_then(|p| p.parse::<u64>().ok())
            .ok_or_else(unparsable)
    };
    match (number()?, number()?) {
        (0, 34) => Ok(CompatMode::V0_34),
        (0, 37) => Ok(CompatMode::V0_37),
        (0, 38) | (1, _) => Ok(CompatMode::V0_38),
        _ => Err(DialectError::Unsupported(version.to_owned())),
    }
}

/// A chain's CometBFT RPC endpoint.
#[derive(Clone)]
pub struct CosmosRpc {
    chain: String,
    http: BoundedHttp,
    compat: CompatMode,
    // Boxed: tonic's endpoint settings are large, and most chains have none.
    grpc: Option<std::sync::Arc<super::grpc::GrpcEndpoint>>,
}

/// Most validators read for one height: CometBFT chains run with a few hundred at most; the bound keeps a node
/// whose pages never end from holding relayd.
const MAX_VALIDATORS: usize = 10_000;
/// Validators asked for per page: CometBFT's largest page.
const VALIDATORS_PER_PAGE: u8 = 100;

/// How long one request may take when the caller does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl CosmosRpc {
    /// A client for `chain` at `url`, speaking CometBFT 0.37/0.38 (`compat`) or 0.34.
    pub fn new(chain: &str, url: &str, compat: CompatMode) -> Result<Self, RpcError> {
        Self::with_timeout(chain, url, compat, DEFAULT_TIMEOUT)
    }

    /// Like [`CosmosRpc::new`], with every request bounded by `timeout` (connecting included).
    pub fn with_timeout(
        chain: &str,
        url: &str,
        compat: CompatMode,
        timeout: Duration,
    ) -> Result<Self, RpcError> {
        Self::with_limit(chain, url, compat, timeout, MAX_RESPONSE_BYTES)
    }

    /// Like [`CosmosRpc::with_timeout`], with every answer bounded by `limit` bytes.
    pub fn with_limit(
        chain: &str,
        url: &str,
        compat: CompatMode,
        timeout: Duration,
        limit: usize,
    ) -> Result<Self, RpcError> {
        let urls = [url.to_owned()];
        let pool = RpcPool::new(chain, &urls, PoolSettings::default());
        Self::pooled(chain, &urls, pool, compat, timeout, limit)
    }

    /// A client of every endpoint in `urls` (one chain's nodes, all speaking `compat`), choosing by `pool`, whose
    /// entries must be these URLs in this order.
    pub fn pooled(
        chain: &str,
        urls: &[String],
        pool: RpcPool,
        compat: CompatMode,
        timeout: Duration,
        limit: usize,
    ) -> Result<Self, RpcError> {
        let err = |reason: String| RpcError {
            chain: chain.to_owned(),
            call: "connect".into(),
            reason,
        };
        let mut nodes = Vec::new();
        for url in urls {
            let parsed: tendermint_rpc::HttpClientUrl = url
                .parse()
                .map_err(|e: tendermint_rpc::Error| err(format!("{url}: {e}")))?;
            let fallback = HttpClient::builder(parsed.clone())
                .compat_mode(compat)
                .timeout(timeout)
                .build()
                .map_err(|e| err(e.to_string()))?;
            let endpoint: url::Url = parsed.into();
            nodes.push((endpoint.as_str().to_owned(), fallback));
        }
        let http = BoundedHttp::new(nodes, pool, compat, timeout, limit).map_err(err)?;
        Ok(Self {
            chain: chain.to_owned(),
            http,
            compat,
            grpc: None,
        })
    }

    /// Connects to every endpoint of `urls` through one pool, the dialect read from the first that answers
    /// `status` (within `timeout`); `Err` when none answers.
    pub async fn connect_pooled(
        chain: &str,
        urls: &[String],
        timeout: Duration,
    ) -> Result<Self, RpcError> {
        let compat = Self::probe_dialect(chain, urls, timeout).await?;
        let pool = RpcPool::new(chain, urls, PoolSettings::default());
        Self::pooled(chain, urls, pool, compat, timeout, MAX_RESPONSE_BYTES)
    }

    /// The RPC dialect of the first endpoint of `urls` that answers `status` within `timeout`.
    pub async fn probe_dialect(
        chain: &str,
        urls: &[String],
        timeout: Duration,
    ) -> Result<CompatMode, RpcError> {
        let mut last = RpcError {
            chain: chain.to_owned(),
            call: "status".into(),
            reason: "no RPC endpoint configured".into(),
        };
        for url in urls {
            match Self::connect_with_timeout(chain, url, timeout).await {
                Ok(rpc) => return Ok(rpc.compat),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The pool of endpoints this client chooses by.
    pub fn pool(&self) -> &RpcPool {
        self.http.pool()
    }

    /// This client asking only the endpoint the pool prefers now, so that everything it serves comes from one
    /// node, which [`CosmosRpc::blame`] can then quarantine.
    pub fn pinned(&self) -> Self {
        let at = self.pool().current();
        Self {
            http: self.http.pinned_to(at),
            ..self.clone()
        }
    }

    /// Quarantines the endpoint a [`CosmosRpc::pinned`] client asks, for serving data the light client refused;
    /// on an unpinned client, nothing can be blamed and nothing happens.
    pub fn blame(&self, reason: &str) {
        if let Some(at) = self.http.pinned() {
            self.pool().quarantine(at, reason);
        }
    }

    /// This client, calling the query services on the node's gRPC endpoint at `url` (the chain's `grpc_addr`)
    /// instead of through `abci_query`, each call bounded by `timeout`.
    pub fn with_grpc(mut self, url: &str, timeout: Duration) -> Result<Self, RpcError> {
        let endpoint = super::grpc::GrpcEndpoint::new(&self.chain, url, timeout)
            .map_err(|e| self.err("grpc connect", e))?;
        self.grpc = Some(std::sync::Arc::new(endpoint));
        Ok(self)
    }

    /// Connects to a configured chain: every endpoint of its `rpc_addr`/`rpc_addrs` through one pool (see
    /// [`CosmosRpc::connect_pooled`]), and its `grpc_addr` for the query services when one is set.
    pub async fn connect_configured(chain: &relayd_config::ChainConfig) -> Result<Self, RpcError> {
        let rpc = Self::connect_endpoints(chain).await?;
        match &chain.grpc_addr {
            Some(url) => rpc.with_grpc(&url.to_string(), DEFAULT_TIMEOUT),
            None => Ok(rpc),
        }
    }

    /// Connects to every RPC endpoint of a configured chain through one pool (see [`CosmosRpc::connect_pooled`]),
    /// without its gRPC endpoint.
    pub async fn connect_endpoints(chain: &relayd_config::ChainConfig) -> Result<Self, RpcError> {
        let urls: Vec<String> = chain
            .rpc_endpoints()
            .iter()
            .map(ToString::to_string)
            .collect();
        Self::connect_pooled(chain.id.as_str(), &urls, DEFAULT_TIMEOUT).await
    }

    /// The gRPC endpoint query services are called on, if one is configured.
    pub fn grpc_endpoint(&self) -> Option<&super::grpc::GrpcEndpoint> {
        self.grpc.as_deref()
    }

    /// Connects to `chain` at `url`, choosing the RPC dialect from the version the node reports.
    pub async fn connect(chain: &str, url: &str) -> Result<Self, RpcError> {
        Self::connect_with_timeout(chain, url, DEFAULT_TIMEOUT).await
    }

    /// Like [`CosmosRpc::connect`], with every request bounded by `timeout`.
    pub async fn connect_with_timeout(
        chain: &str,
        url: &str,
        timeout: Duration,
    ) -> Result<Self, RpcError> {
        let probe = Self::with_timeout(chain, url, CompatMode::latest(), timeout)?;
        let status = probe
            .http
            .status()
            .await
            .map_err(|e| probe.err("status", e))?;
        let compat = dialect_of(&status.node_info.version.to_string())
            .map_err(|e| probe.err("status", e))?;
        Self::with_timeout(chain, url, compat, timeout)
    }

    /// The RPC dialect this client speaks; a WebSocket client to the same node must speak it too.
    pub fn compat_mode(&self) -> CompatMode {
        self.compat
    }

    fn err(&self, call: &str, e: impl std::fmt::Display) -> RpcError {
        RpcError {
            chain: self.chain.clone(),
            call: call.to_owned(),
            reason: e.to_string(),
        }
    }

    /// The chain this client talks to.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// The underlying HTTP client (answers bounded by [`MAX_RESPONSE_BYTES`]).
    pub fn http(&self) -> &BoundedHttp {
        &self.http
    }

    /// The chain id the node reports, and its latest height.
    pub async fn status(&self) -> Result<(String, u64), RpcError> {
        let status = self
            .http
            .status()
            .await
            .map_err(|e| self.err("status", e))?;
        let (network, latest) = (
            status.node_info.network.to_string(),
            status.sync_info.latest_block_height.value(),
        );
        if network == self.chain {
            self.pool().saw_height(latest);
        }
        Ok((network, latest))
    }

    /// The ABCI results (events included) of the block at `height`.
    pub async fn block_results(&self, height: u64) -> Result<block_results::Response, RpcError> {
        let call = || format!("block_results {height}");
        let h = Height::try_from(height).map_err(|e| self.err(&call(), e))?;
        self.http
            .block_results(h)
            .await
            .map_err(|e| self.err(&call(), e))
    }

    /// The block at `height`.
    pub async fn block(&self, height: u64) -> Result<tendermint::Block, RpcError> {
        let call = || format!("block {height}");
        let h = Height::try_from(height).map_err(|e| self.err(&call(), e))?;
        let response = self.http.block(h).await.map_err(|e| self.err(&call(), e))?;
        Ok(response.block)
    }

    /// The messages of the committed transaction `tx_hash` (hex), in order. A failed transaction is an error:
    /// its messages changed nothing.
    pub async fn tx_messages(&self, tx_hash: &str) -> Result<Vec<Datagram>, ChainError> {
        let call = format!("tx {tx_hash}");
        let bytes: [u8; 32] = hex::decode(tx_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ChainError::rpc(&self.chain, &call, "not a SHA-256 hash in hex"))?;
        let hash = tendermint::Hash::Sha256(bytes);
        let r = self
            .http
            .tx(hash, false)
            .await
            .map_err(|e| ChainError::rpc(&self.chain, &call, e))?;
        if r.tx_result.code.is_err() {
            return Err(ChainError::Query {
                chain: self.chain.clone(),
                call,
                code: r.tx_result.code.value(),
                log: r.tx_result.log,
            });
        }
        decode_tx_messages(&r.tx).map_err(|e| ChainError::rpc(&self.chain, &call, e))
    }

    /// The validator set at `height`, read page by page. tendermint-rpc's own `Paging::All` asks for pages until
    /// the count matches the node's `total`, so a node whose pages never add up kept it asking forever; and
    /// `validator::Set` panics on a total voting power above CometBFT's bound. Both are refused here.
    async fn validator_set(&self, height: Height) -> Result<validator::Set, RpcError> {
        let call = format!("validators {height}");
        let mut validators = Vec::new();
        for page in 1usize.. {
            let response = self
                .http
                .validators(
                    height,
                    Paging::Specific {
                        page_number: page.into(),
                        per_page: VALIDATORS_PER_PAGE.into(),
                    },
                )
                .await
                .map_err(|e| self.err(&call, e))?;
            let total = usize::try_from(response.total)
                .ok()
                .filter(|t| *t <= MAX_VALIDATORS)
                .ok_or_else(|| {
                    self.err(
                        &call,
                        format!(
                            "the node reports {} validators; 0 to {MAX_VALIDATORS} are read",
                            response.total
                        ),
                    )
                })?;
            if response.validators.is_empty() && validators.len() < total {
                return Err(self.err(
                    &call,
                    format!(
                        "page {page} is empty with {} of {total} validators read",
                        validators.len()
                    ),
                ));
            }
            validators.extend(response.validators);
            match validators.len().cmp(&total) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => break,
                std::cmp::Ordering::Greater => {
                    return Err(self.err(
                        &call,
                        format!("the pages hold more than the {total} validators reported"),
                    ))
                }
            }
        }
        let power = validators
            .iter()
            .fold(0u64, |sum, v| sum.saturating_add(v.power.value()));
        if power > validator::Set::MAX_TOTAL_VOTING_POWER {
            return Err(self.err(
                &call,
                format!(
                    "total voting power {power} is above CometBFT's bound {}",
                    validator::Set::MAX_TOTAL_VOTING_POWER
                ),
            ));
        }
        // The proposer does not enter verification and the set's hash does not depend on it.
        Ok(validator::Set::without_proposer(validators))
    }

    /// The signed header at `height` with the validator sets at `height` and `height + 1`.
    pub async fn fetch_light_block(&self, height: u64) -> Result<LightBlock, RpcError> {
        let h = Height::try_from(height).map_err(|e| self.err("commit", e))?;
        let commit = self
            .http
            .commit(h)
            .await
            .map_err(|e| self.err(&format!("commit {height}"), e))?;
        let validators = self.validator_set(h).await?;
        let next = self.validator_set(h.increment()).await?;
        Ok(LightBlock::new(
            commit.signed_header,
            validators,
            next,
            node::Id::new([0; 20]),
        ))
    }
}

/// The messages of an encoded Cosmos SDK transaction (`TxRaw`), as `Any`s in their order.
pub fn decode_tx_messages(tx: &[u8]) -> Result<Vec<Datagram>, prost::DecodeError> {
    let raw = TxRaw::decode(tx)?;
    let body = TxBody::decode(raw.body_bytes.as_slice())?;
    Ok(body
        .messages
        .into_iter()
        .map(|m| Datagram {
            type_url: m.type_url,
            value: m.value,
        })
        .collect())
}

impl LightBlockSource for CosmosRpc {
    async fn light_block(&self, height: u64) -> Result<LightBlock, String> {
        self.fetch_light_block(height)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialect_follows_the_reported_version() {
        for (version, dialect) in [
            ("0.34.27", CompatMode::V0_34),
            ("v0.34.29-sei-1", CompatMode::V0_34),
            ("0.37.4", CompatMode::V0_37),
            ("0.38.12", CompatMode::V0_38),
            ("1.0.0", CompatMode::V0_38),
            ("v1.0.1", CompatMode::V0_38),
        ] {
            assert_eq!(dialect_of(version), Ok(dialect), "{version}");
        }
        assert_eq!(
            dialect_of("0.35.9"),
            Err(DialectError::Unsupported("0.35.9".into()))
        );
        assert_eq!(
            dialect_of("2.0.0"),
            Err(DialectError::Unsupported("2.0.0".into()))
        );
        assert_eq!(
            dialect_of("devel"),
            Err(DialectError::Unparsable("devel".into()))
        );
    }
}
