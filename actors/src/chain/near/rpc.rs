//! NEAR JSON-RPC access with near-jsonrpc-client's method types, every answer bounded in size (`bounded`): the
//! few calls relayd makes, each returning nearcore's own view types or a `ChainError` naming the chain and the
//! call. A chain's endpoints share one [`RpcPool`]; a call that gets no answer from one goes to the next
//! (`rpc/failover.rs`). Nothing here trusts an answer; callers check proofs with the light client,
//! `state_proof` and `execution_proof`.

use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_client::methods;
use near_jsonrpc_primitives::types::light_client::RpcLightClientExecutionProofResponse;
use near_jsonrpc_primitives::types::query::QueryResponseKind;
use near_jsonrpc_primitives::types::transactions::RpcTransactionResponse;
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{
    AccountId, BlockId, BlockReference, Finality, FunctionArgs, StoreKey, TransactionOrReceiptId,
};
use near_primitives::views::{
    AccessKeyView, BlockView, LightClientBlockView, QueryRequest, StatusResponse,
    TxExecutionStatus, ViewStateResult,
};

use super::bounded::{BoundedJsonRpc, CallError, MAX_RESPONSE_BYTES};
use crate::chain::endpoint::ChainError;
use crate::rpc_pool::{PoolSettings, RpcPool};

mod failover;
pub mod prober;

/// How long one call to one NEAR endpoint may take before the next endpoint is asked: above nearcore's own
/// `send_tx` wait (it answers a timeout error itself after about 10 s), so only a node that hangs reaches it.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A NEAR chain's JSON-RPC endpoints: every call goes to the best one its pool names, and on no answer to the
/// next. A client pinned to one endpoint ([`NearRpc::pinned`]) asks that one only, so that what it serves can be
/// blamed on it ([`NearRpc::blame`]).
#[derive(Clone)]
pub struct NearRpc {
    nodes: std::sync::Arc<[BoundedJsonRpc]>,
    pool: RpcPool,
    pinned: Option<usize>,
    chain: String,
}

/// A `next_light_client_block` answer. nearcore serializes "no newer block" as `{}` (its response struct with the
/// block flattened in and absent), which near-jsonrpc-client 0.20's own type refuses; `null` is accepted too.
#[derive(Debug, Clone)]
pub struct NextLightClientBlock(pub Option<LightClientBlockView>);

impl<'de> serde::Deserialize<'de> for NextLightClientBlock {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let empty = match &value {
            serde_json::Value::Null => true,
            serde_json::Value::Object(fields) => fields.is_empty(),
            _ => false,
        };
        if empty {
            return Ok(Self(None));
        }
        serde_json::from_value(value)
            .map(|block| Self(Some(block)))
            .map_err(serde::de::Error::custom)
    }
}

impl methods::RpcHandlerResponse for NextLightClientBlock {}

/// The result of a view call: the method's JSON bytes and the block they were computed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewResult {
    /// The method's return value (JSON).
    pub result: Vec<u8>,
    /// The block height it was read at.
    pub height: u64,
    /// The contract's log lines.
    pub logs: Vec<String>,
}

/// A block to read at: a height, or the latest final block.
pub fn at(height: Option<u64>) -> BlockReference {
    match height {
        Some(h) => BlockReference::BlockId(BlockId::Height(h)),
        None => BlockReference::Finality(Finality::Final),
    }
}

impl NearRpc {
    /// A client for the node at `url`; `chain` names it in errors. Answers are bounded by
    /// [`MAX_RESPONSE_BYTES`].
    pub fn new(chain: &str, url: &str) -> Self {
        Self::with_limit(chain, url, MAX_RESPONSE_BYTES)
    }

    /// A client for the node at `url` whose answers are bounded by `limit` bytes.
    pub fn with_limit(chain: &str, url: &str, limit: usize) -> Self {
        Self::pooled(chain, &[url.to_owned()], limit)
    }

    /// A client of every endpoint in `urls` (one chain's nodes), the first current, answers bounded by `limit`
    /// bytes. An empty list is taken as one unreachable endpoint, so every call fails with a clear error.
    pub fn pooled(chain: &str, urls: &[String], limit: usize) -> Self {
        let urls: Vec<String> = if urls.is_empty() {
            vec![String::new()]
        } else {
            urls.to_vec()
        };
        let nodes: Vec<BoundedJsonRpc> = urls
            .iter()
            .map(|u| BoundedJsonRpc::new(u, limit).with_timeout(CALL_TIMEOUT))
            .collect();
        Self {
            nodes: nodes.into(),
            pool: RpcPool::new(chain, &urls, PoolSettings::default()),
            pinned: None,
            chain: chain.to_owned(),
        }
    }

    /// A client of every RPC endpoint `chain` configures (`rpc_addrs`, or `rpc_addr` as a list of one), answers
    /// bounded by [`MAX_RESPONSE_BYTES`].
    pub fn of_chain(chain: &relayd_config::ChainConfig) -> Self {
        let urls: Vec<String> = chain
            .rpc_endpoints()
            .iter()
            .map(ToString::to_string)
            .collect();
        Self::pooled(chain.id.as_str(), &urls, MAX_RESPONSE_BYTES)
    }

    /// The pool of endpoints this client chooses by.
    pub fn pool(&self) -> &RpcPool {
        &self.pool
    }

    /// How many endpoints it holds.
    pub fn endpoints(&self) -> usize {
        self.nodes.len()
    }

    /// This client asking endpoint `i` only (an index past the end asks the last).
    pub fn pinned_to(&self, i: usize) -> Self {
        Self {
            pinned: Some(i.min(self.nodes.len().saturating_sub(1))),
            ..self.clone()
        }
    }

    /// This client asking only the endpoint the pool prefers now, so that everything it serves comes from one
    /// node, which [`NearRpc::blame`] can then quarantine.
    pub fn pinned(&self) -> Self {
        self.pinned_to(self.pool.current())
    }

    /// Quarantines the endpoint a pinned client asks, for serving data the light client refused; on an unpinned
    /// client nothing can be blamed and nothing happens.
    pub fn blame(&self, reason: &str) {
        if let Some(at) = self.pinned {
            self.pool.quarantine(at, reason);
        }
    }

    /// The chain id.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    fn error<E: std::fmt::Debug + std::fmt::Display>(
        &self,
        call: &str,
        err: CallError<E>,
    ) -> ChainError {
        let err = match err {
            CallError::TooLarge { limit } => {
                return ChainError::TooLarge {
                    chain: self.chain.clone(),
                    call: call.to_owned(),
                    limit,
                }
            }
            CallError::Call(err) => err,
        };
        match err {
            JsonRpcError::ServerError(JsonRpcServerError::HandlerError(e)) => ChainError::Node {
                chain: self.chain.clone(),
                call: call.to_owned(),
                reason: e.to_string(),
            },
            other => ChainError::rpc(&self.chain, call, other),
        }
    }

    /// `status`.
    pub async fn status(&self) -> Result<StatusResponse, ChainError> {
        self.call(|| methods::status::RpcStatusRequest)
            .await
            .map_err(|e| self.error("status", e))
    }

    /// `block` at a height, or the latest final one.
    pub async fn block(&self, height: Option<u64>) -> Result<BlockView, ChainError> {
        self.call(|| methods::block::RpcBlockRequest {
            block_reference: at(height),
        })
        .await
        .map_err(|e| self.error("block", e))
    }

    /// `block` by hash.
    pub async fn block_by_hash(&self, hash: CryptoHash) -> Result<BlockView, ChainError> {
        self.call(|| methods::block::RpcBlockRequest {
            block_reference: BlockReference::BlockId(BlockId::Hash(hash)),
        })
        .await
        .map_err(|e| self.error("block", e))
    }

    async fn query(
        &self,
        call: &str,
        block_reference: BlockReference,
        request: QueryRequest,
    ) -> Result<(QueryResponseKind, u64), ChainError> {
        let response = self
            .call(|| methods::query::RpcQueryRequest {
                block_reference: block_reference.clone(),
                request: request.clone(),
            })
            .await
            .map_err(|e| self.error(call, e))?;
        Ok((response.kind, response.block_height))
    }

    fn unexpected(&self, call: &str, kind: &QueryResponseKind) -> ChainError {
        let name = match kind {
            QueryResponseKind::ViewAccount(_) => "ViewAccount",
            QueryResponseKind::ViewCode(_) => "ViewCode",
            QueryResponseKind::ViewState(_) => "ViewState",
            QueryResponseKind::CallResult(_) => "CallResult",
            QueryResponseKind::AccessKey(_) => "AccessKey",
            QueryResponseKind::AccessKeyList(_) => "AccessKeyList",
        };
        ChainError::rpc(&self.chain, call, format!("answered with a {name} result"))
    }

    /// A view call `method(args)` on `contract`, at a height or the latest final block.
    pub async fn view_call(
        &self,
        contract: &AccountId,
        method: &str,
        args: &serde_json::Value,
        height: Option<u64>,
    ) -> Result<ViewResult, ChainError> {
        let request = QueryRequest::CallFunction {
            account_id: contract.clone(),
            method_name: method.to_owned(),
            args: FunctionArgs::from(args.to_string().into_bytes()),
        };
        match self.query(method, at(height), request).await? {
            (QueryResponseKind::CallResult(r), height) => Ok(ViewResult {
                result: r.result,
                height,
                logs: r.logs,
            }),
            (other, _) => Err(self.unexpected(method, &other)),
        }
    }

    /// `view_state` of `contract` for keys starting with `prefix` at block `height`, with the trie proof if asked.
    pub async fn view_state(
        &self,
        contract: &AccountId,
        prefix: &[u8],
        height: u64,
        include_proof: bool,
    ) -> Result<ViewStateResult, ChainError> {
        let request = QueryRequest::ViewState {
            account_id: contract.clone(),
            prefix: StoreKey::from(prefix.to_vec()),
            include_proof,
        };
        match self.query("view_state", at(Some(height)), request).await? {
            (QueryResponseKind::ViewState(r), _) => Ok(r),
            (other, _) => Err(self.unexpected("view_state", &other)),
        }
    }

    /// The access key of `account` for `public_key` at the latest final block, with that block's hash.
    pub async fn access_key(
        &self,
        account: &AccountId,
        public_key: &near_crypto::PublicKey,
    ) -> Result<(AccessKeyView, CryptoHash), ChainError> {
        let response = self
            .call(|| methods::query::RpcQueryRequest {
                block_reference: at(None),
                request: QueryRequest::ViewAccessKey {
                    account_id: account.clone(),
                    public_key: public_key.clone(),
                },
            })
            .await
            .map_err(|e| self.error("view_access_key", e))?;
        match response.kind {
            QueryResponseKind::AccessKey(key) => Ok((key, response.block_hash)),
            other => Err(self.unexpected("view_access_key", &other)),
        }
    }

    /// The block producers of the epoch of block `hash`, in the order their approvals are listed
    /// (`EXPERIMENTAL_validators_ordered`).
    pub async fn validators_ordered(
        &self,
        hash: CryptoHash,
    ) -> Result<Vec<near_primitives::views::validator_stake_view::ValidatorStakeView>, ChainError>
    {
        self.call(
            || methods::EXPERIMENTAL_validators_ordered::RpcValidatorsOrderedRequest {
                block_id: Some(BlockId::Hash(hash)),
            },
        )
        .await
        .map_err(|e| self.error("EXPERIMENTAL_validators_ordered", e))
    }

    /// `next_light_client_block` after the block `last_block_hash`; `None` when the node has nothing newer.
    pub async fn next_light_client_block(
        &self,
        last_block_hash: CryptoHash,
    ) -> Result<Option<LightClientBlockView>, ChainError> {
        // Sent as a generic call so that nearcore's `{}` ("nothing newer") decodes; the client's own method type
        // only accepts `null` or a block.
        let request = || {
            methods::any::<
                Result<
                    NextLightClientBlock,
                    methods::next_light_client_block::RpcLightClientNextBlockError,
                >,
            >(
                "next_light_client_block",
                serde_json::json!({ "last_block_hash": last_block_hash }),
            )
        };
        self.call(request)
            .await
            .map(|answer| answer.0)
            .map_err(|e| self.error("next_light_client_block", e))
    }

    /// `light_client_proof` of a transaction or receipt outcome against the head `light_client_head`.
    pub async fn light_client_proof(
        &self,
        id: TransactionOrReceiptId,
        light_client_head: CryptoHash,
    ) -> Result<RpcLightClientExecutionProofResponse, ChainError> {
        self.call(
            || methods::light_client_proof::RpcLightClientExecutionProofRequest {
                id: id.clone(),
                light_client_head,
            },
        )
        .await
        .map_err(|e| self.error("light_client_proof", e))
    }

    /// `send_tx`, waiting until `wait_until`. The error is returned as the client reports it (or as too large),
    /// so the submitter can tell a stale nonce from other failures. A transaction no endpoint answered for is
    /// sent to the next one: nearcore identifies it by its hash, so a node that had taken it already reports it
    /// (or its nonce as used) rather than running it twice.
    pub async fn send_tx(
        &self,
        signed_transaction: SignedTransaction,
        wait_until: TxExecutionStatus,
    ) -> Result<
        RpcTransactionResponse,
        CallError<near_jsonrpc_primitives::types::transactions::RpcTransactionError>,
    > {
        self.call(|| methods::send_tx::RpcSendTransactionRequest {
            signed_transaction: signed_transaction.clone(),
            wait_until: wait_until.clone(),
        })
        .await
    }

    /// `tx` status of a sent transaction, waiting until `wait_until`.
    pub async fn tx_status(
        &self,
        tx_hash: CryptoHash,
        sender_account_id: AccountId,
        wait_until: TxExecutionStatus,
    ) -> Result<RpcTransactionResponse, ChainError> {
        self.call(|| methods::tx::RpcTransactionStatusRequest {
            transaction_info: methods::tx::TransactionInfo::TransactionId {
                tx_hash,
                sender_account_id: sender_account_id.clone(),
            },
            wait_until: wait_until.clone(),
        })
        .await
        .map_err(|e| self.error("tx", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::near::light_client::{lite_block_hash, sha256};
    use crate::chain::near::test_rpc::{serve, Reply};
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn recorded() -> Value {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/near-light-client/rpc_result.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
    }

    #[tokio::test]
    async fn a_recorded_light_client_block_response_decodes() {
        let envelope = recorded();
        let result = envelope["result"].clone();
        let rpc = serve(Arc::new(move |method: &str, params: &Value| {
            assert_eq!(method, "next_light_client_block");
            assert!(params["last_block_hash"].is_string());
            Reply::Result(result.clone())
        }))
        .await;
        let client = NearRpc::new("near-mainnet", &rpc.url);
        let block = client
            .next_light_client_block(sha256(b"head"))
            .await
            .expect("decodes")
            .expect("a block");
        assert_eq!(block.inner_lite.height, 134450926);
        assert!(block.next_bps.as_ref().is_some_and(|bps| !bps.is_empty()));
        let lite = near_primitives::views::LightClientBlockLiteView {
            prev_block_hash: block.prev_block_hash,
            inner_rest_hash: block.inner_rest_hash,
            inner_lite: block.inner_lite.clone(),
        };
        assert_ne!(lite_block_hash(&lite), CryptoHash::default());
    }

    #[tokio::test]
    async fn nothing_newer_is_none_whether_the_node_says_null_or_an_empty_object() {
        for answer in [json!({}), json!(null)] {
            let served = answer.clone();
            let rpc = serve(Arc::new(move |_: &str, _: &Value| {
                Reply::Result(served.clone())
            }))
            .await;
            let client = NearRpc::new("near-0", &rpc.url);
            let block = client
                .next_light_client_block(sha256(b"head"))
                .await
                .unwrap_or_else(|e| panic!("{answer}: {e}"));
            assert!(block.is_none(), "{answer}");
        }
        // Anything else must be a whole light-client block.
        let rpc = serve(Arc::new(|_: &str, _: &Value| {
            Reply::Result(json!({"prev_block_hash": "11111111111111111111111111111111"}))
        }))
        .await;
        let client = NearRpc::new("near-0", &rpc.url);
        assert!(matches!(
            client.next_light_client_block(sha256(b"head")).await,
            Err(ChainError::Rpc { .. })
        ));
    }

    #[tokio::test]
    async fn node_errors_and_garbage_are_errors_not_panics() {
        let rpc = serve(Arc::new(|method: &str, _: &Value| match method {
            "next_light_client_block" => Reply::Error(json!({
                "name": "HANDLER_ERROR",
                "cause": {"name": "UNKNOWN_BLOCK", "info": {"error_message": "DB Not Found Error"}},
                "code": -32000, "message": "Server error", "data": "DB Not Found Error"
            })),
            "block" => Reply::Result(json!({"header": "not a header"})),
            _ => Reply::Result(json!(null)),
        }))
        .await;
        let client = NearRpc::new("near-0", &rpc.url);
        match client.next_light_client_block(sha256(b"x")).await {
            Err(ChainError::Node { call, reason, .. }) => {
                assert_eq!(call, "next_light_client_block");
                assert!(reason.contains("never been observed"), "{reason}");
            }
            other => panic!("expected a node error, got {other:?}"),
        }
        assert!(matches!(
            client.block(None).await,
            Err(ChainError::Rpc { .. })
        ));
        // A null result where a block is expected.
        assert!(client.status().await.is_err());
    }
}
