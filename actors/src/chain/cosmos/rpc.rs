//! The CometBFT RPC connection of one Cosmos chain: light blocks for the light client and chain status.

use tendermint::block::Height;
use tendermint::{node, validator};
use tendermint_light_client_verifier::types::LightBlock;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client, HttpClient, Paging};

use super::light_client::LightBlockSource;

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
    http: HttpClient,
}

impl CosmosRpc {
    /// A client for `chain` at `url`, speaking CometBFT 0.37/0.38 (`compat`) or 0.34.
    pub fn new(chain: &str, url: &str, compat: CompatMode) -> Result<Self, RpcError> {
        let err = |reason: String| RpcError {
            chain: chain.to_owned(),
            call: "connect".into(),
            reason,
        };
        let url = url
            .parse()
            .map_err(|e: tendermint_rpc::Error| err(e.to_string()))?;
        let http = HttpClient::builder(url)
            .compat_mode(compat)
            .build()
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            chain: chain.to_owned(),
            http,
        })
    }

    /// Connects to `chain` at `url`, choosing the RPC dialect from the version the node reports.
    pub async fn connect(chain: &str, url: &str) -> Result<Self, RpcError> {
        let probe = Self::new(chain, url, CompatMode::latest())?;
        let status = probe
            .http
            .status()
            .await
            .map_err(|e| probe.err("status", e))?;
        let compat = CompatMode::from_version(status.node_info.version)
            .map_err(|e| probe.err("status", format!("unsupported node version: {e}")))?;
        Self::new(chain, url, compat)
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

    /// The underlying HTTP client.
    pub fn http(&self) -> &HttpClient {
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
