//! The CometBFT RPC connection of one Cosmos chain: light blocks for the light client, chain status, and the
//! blocks and block results the event monitor reads.

use std::time::Duration;

use tendermint::block::Height;
use tendermint::{node, validator};
use tendermint_light_client_verifier::types::LightBlock;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::endpoint::block_results;
use tendermint_rpc::{Client, HttpClient, Paging};

use super::light_client::LightBlockSource;

pub mod bounded;

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

/// A chain's CometBFT RPC endpoint.
#[derive(Clone)]
pub struct CosmosRpc {
    chain: String,
    http: BoundedHttp,
    compat: CompatMode,
    // Boxed: tonic's endpoint settings are large, and most chains have none.
    grpc: Option<std::sync::Arc<super::grpc::GrpcEndpoint>>,
}

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
        let err = |reason: String| RpcError {
            chain: chain.to_owned(),
            call: "connect".into(),
            reason,
        };
        let parsed: tendermint_rpc::HttpClientUrl = url
            .parse()
            .map_err(|e: tendermint_rpc::Error| err(e.to_string()))?;
        let fallback = HttpClient::builder(parsed.clone())
            .compat_mode(compat)
            .timeout(timeout)
            .build()
            .map_err(|e| err(e.to_string()))?;
        let endpoint: url::Url = parsed.into();
        let http =
            BoundedHttp::new(endpoint.as_str(), compat, timeout, limit, fallback).map_err(err)?;
        Ok(Self {
            chain: chain.to_owned(),
            http,
            compat,
            grpc: None,
        })
    }

    /// This client, calling the query services on the node's gRPC endpoint at `url` (the chain's `grpc_addr`)
    /// instead of through `abci_query`, each call bounded by `timeout`.
    pub fn with_grpc(mut self, url: &str, timeout: Duration) -> Result<Self, RpcError> {
        let endpoint = super::grpc::GrpcEndpoint::new(&self.chain, url, timeout)
            .map_err(|e| self.err("grpc connect", e))?;
        self.grpc = Some(std::sync::Arc::new(endpoint));
        Ok(self)
    }

    /// Connects to a configured chain: its `rpc_addr` (see [`CosmosRpc::connect`]), and its `grpc_addr` for the
    /// query services when one is set.
    pub async fn connect_configured(chain: &relayd_config::ChainConfig) -> Result<Self, RpcError> {
        let rpc = Self::connect(chain.id.as_str(), &chain.rpc_addr.to_string()).await?;
        match &chain.grpc_addr {
            Some(url) => rpc.with_grpc(&url.to_string(), DEFAULT_TIMEOUT),
            None => Ok(rpc),
        }
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
        let compat = CompatMode::from_version(status.node_info.version)
            .map_err(|e| probe.err("status", format!("unsupported node version: {e}")))?;
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
        Ok((
            status.node_info.network.to_string(),
            status.sync_info.latest_block_height.value(),
        ))
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

    async fn validator_set(&self, height: Height) -> Result<validator::Set, RpcError> {
        let response = self
            .http
            .validators(height, Paging::All)
            .await
            .map_err(|e| self.err(&format!("validators {height}"), e))?;
        // The proposer does not enter verification and the set's hash does not depend on it.
        Ok(validator::Set::without_proposer(response.validators))
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

impl LightBlockSource for CosmosRpc {
    async fn light_block(&self, height: u64) -> Result<LightBlock, String> {
        self.fetch_light_block(height)
            .await
            .map_err(|e| e.to_string())
    }
}
