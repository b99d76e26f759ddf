//! The NEAR devnet's JSON-RPC 2.0 server (HTTP POST, as nearcore's): requests and responses use nearcore's own
//! types from `near-primitives` and `near-jsonrpc-primitives`, so clients decode them as they decode a real node's.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use near_jsonrpc_primitives::errors::{RpcError, RpcParseError};
use near_jsonrpc_primitives::types::blocks::{RpcBlockError, RpcBlockRequest};
use near_jsonrpc_primitives::types::light_client::{
    RpcLightClientExecutionProofRequest, RpcLightClientNextBlockError,
    RpcLightClientNextBlockRequest,
};
use near_jsonrpc_primitives::types::query::{
    QueryResponseKind, RpcQueryError, RpcQueryRequest, RpcQueryResponse,
};
use near_jsonrpc_primitives::types::transactions::{
    RpcSendTransactionRequest, RpcTransactionError, RpcTransactionResponse,
    RpcTransactionStatusRequest, TransactionInfo,
};
use near_jsonrpc_primitives::types::validator::RpcValidatorError;
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{BlockId, BlockReference, Finality, TransactionOrReceiptId};
use near_primitives::views::{
    AccessKeyView, AccountView, CallResult, CurrentEpochValidatorInfo, EpochValidatorInfo,
    FinalExecutionOutcomeViewEnum, GasPriceView, NextEpochValidatorInfo, QueryRequest, StateItem,
    StatusResponse, StatusSyncInfo, TxExecutionStatus, ValidatorInfo, ViewStateResult,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::chain::{NearChain, StoredBlock};
use super::ibc::{contract_data_key, ContractStorage};
use super::runtime::{self, GAS_PRICE};
use super::trie::Trie;

/// What the server shares with the block producer.
#[derive(Clone)]
pub struct Shared {
    /// The chain.
    pub chain: Arc<Mutex<NearChain>>,
    /// Latest block height, bumped after every block.
    pub head: watch::Receiver<u64>,
    /// How long transaction waits last before `TimeoutError`.
    pub tx_timeout: Duration,
    /// When the node started, for `uptime_sec`.
    pub started: std::time::Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, NearChain> {
        // A panic while holding the lock leaves a usable chain (every step writes whole values).
        self.chain.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves JSON-RPC on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    shared: Shared,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route("/", post(handle)).with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}

async fn handle(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = RpcError::parse_error(format!("Failed to parse JSON-RPC request: {e}"));
            return reply(Value::Null, Err(err));
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let result = dispatch(&shared, &method, params).await;
    reply(id, result)
}

fn reply(id: Value, result: Result<Value, RpcError>) -> Response {
    let body = match result {
        Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
    };
    axum::Json(body).into_response()
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::serialization_error(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| RpcError::from(RpcParseError(e.to_string())))
}

async fn dispatch(shared: &Shared, method: &str, params: Value) -> Result<Value, RpcError> {
    match method {
        "status" => status(shared),
        "block" => block(shared, params),
        "query" => query(shared, params),
        "next_light_client_block" => next_light_client_block(shared, params),
        "light_client_proof" | "EXPERIMENTAL_light_client_proof" => {
            let req: RpcLightClientExecutionProofRequest = parse(params)?;
            let id = match &req.id {
                TransactionOrReceiptId::Transaction {
                    transaction_hash, ..
                } => *transaction_hash,
                TransactionOrReceiptId::Receipt { receipt_id, .. } => *receipt_id,
            };
            let proof = shared
                .lock()
                .light_client_proof(&id, &req.light_client_head)?;
            to_value(&proof)
        }
        "broadcast_tx_async" => {
            let tx = signed_tx_from_params(&params)?;
            let hash = tx.get_hash();
            if let Err(e) = shared.lock().submit(tx) {
                // nearcore forwards asynchronously and reports nothing; the log tells the devnet user.
                tracing::info!("broadcast_tx_async {hash}: rejected: {e:?}");
            }
            to_value(&hash)
        }
        "broadcast_tx_commit" => {
            let tx = signed_tx_from_params(&params)?;
            let hash = submit(shared, tx)?;
            let resp = wait_tx(shared, hash, TxExecutionStatus::ExecutedOptimistic).await?;
            match resp.final_execution_outcome {
                Some(o) => to_value(&o.into_outcome()),
                None => Err(RpcTransactionError::TimeoutError.into()),
            }
        }
        "send_tx" => {
            let req: RpcSendTransactionRequest = parse(params)?;
            let wait = req.wait_until;
            let hash = submit(shared, req.signed_transaction)?;
            if wait == TxExecutionStatus::None {
                return to_value(&RpcTransactionResponse {
                    final_execution_outcome: None,
                    final_execution_status: TxExecutionStatus::None,
                });
            }
            to_value(&wait_tx(shared, hash, wait).await?)
        }
        "tx" | "EXPERIMENTAL_tx_status" => {
            let (hash, wait) = match params {
                Value::Array(a) => {
                    let hash: CryptoHash =
                        a.first().cloned().map(parse).transpose()?.ok_or_else(|| {
                            RpcError::from(RpcParseError("missing tx hash".into()))
                        })?;
                    (hash, TxExecutionStatus::ExecutedOptimistic)
                }
                p => {
                    let req: RpcTransactionStatusRequest = parse(p)?;
                    let hash = match req.transaction_info {
                        TransactionInfo::Transaction { signed_tx } => signed_tx.get_hash(),
                        TransactionInfo::TransactionId { tx_hash, .. } => tx_hash,
                    };
                    (hash, req.wait_until)
                }
            };
            {
                let chain = shared.lock();
                if chain.tx(&hash).is_none() && !chain.is_pending(&hash) {
                    return Err(RpcTransactionError::UnknownTransaction {
                        requested_transaction_hash: hash,
                    }
                    .into());
                }
            }
            to_value(&wait_tx(shared, hash, wait).await?)
        }
        "gas_price" => to_value(&GasPriceView {
            gas_price: near_primitives::types::Balance::from_yoctonear(GAS_PRICE),
        }),
        "validators" => validators(shared, params),
        "EXPERIMENTAL_validators_ordered" => validators_ordered(shared, params),
        _ => Err(RpcError::method_not_found(method.to_owned())),
    }
}

fn signed_tx_from_params(params: &Value) -> Result<SignedTransaction, RpcError> {
    let b64 = params
        .get(0)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::from(RpcParseError("Require at least one parameter".into())))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| RpcError::from(RpcParseError(format!("Failed to decode transaction: {e}"))))?;
    borsh::from_slice::<SignedTransaction>(&bytes)
        .map_err(|e| RpcError::from(RpcParseError(format!("Failed to decode transaction: {e}"))))
}

fn submit(shared: &Shared, tx: SignedTransaction) -> Result<CryptoHash, RpcError> {
    shared
        .lock()
        .submit(tx)
        .map_err(|context| RpcTransactionError::InvalidTransaction { context }.into())
}

/// Waits until `hash` reached `wait` (executed, or in a final block for the final levels).
async fn wait_tx(
    shared: &Shared,
    hash: CryptoHash,
    wait: TxExecutionStatus,
) -> Result<RpcTransactionResponse, RpcError> {
    let mut head = shared.head.clone();
    let deadline = tokio::time::Instant::now() + shared.tx_timeout;
    loop {
        {
            let chain = shared.lock();
            if let Some(rec) = chain.tx(&hash) {
                let is_final = chain.final_block().height() >= rec.height;
                let needs_final = matches!(
                    wait,
                    TxExecutionStatus::IncludedFinal
                        | TxExecutionStatus::Executed
                        | TxExecutionStatus::Final
                );
                if is_final || !needs_final {
                    let status = if is_final {
                        TxExecutionStatus::Final
                    } else {
                        TxExecutionStatus::ExecutedOptimistic
                    };
                    return Ok(RpcTransactionResponse {
                        final_execution_outcome: Some(
                            FinalExecutionOutcomeViewEnum::FinalExecutionOutcome(
                                rec.outcome.clone(),
                            ),
                        ),
                        final_execution_status: status,
                    });
                }
            }
        }
        match tokio::time::timeout_at(deadline, head.changed()).await {
            Ok(Ok(())) => {}
            _ => return Err(RpcTransactionError::TimeoutError.into()),
        }
    }
}

fn status(shared: &Shared) -> Result<Value, RpcError> {
    let chain = shared.lock();
    let head = chain.head();
    let genesis = chain.genesis_block();
    let epoch = chain.epoch_of(head.height());
    let validators = chain
        .block_producers(epoch)
        .into_iter()
        .map(|v| ValidatorInfo {
            account_id: v.account_id().clone(),
        })
        .collect();
    let resp = StatusResponse {
        version: near_primitives::version::Version {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            build: "relayd-devnet".to_owned(),
            commit: String::new(),
            rustc_version: String::new(),
        },
        chain_id: chain.genesis().chain_id.clone(),
        protocol_version: near_primitives::version::PROTOCOL_VERSION,
        latest_protocol_version: near_primitives::version::PROTOCOL_VERSION,
        rpc_addr: None,
        validators,
        sync_info: StatusSyncInfo {
            latest_block_hash: head.hash(),
            latest_block_height: head.height(),
            latest_state_root: head.header.inner_lite().prev_state_root,
            latest_block_time: head.header.timestamp(),
            syncing: false,
            earliest_block_hash: Some(genesis.hash()),
            earliest_block_height: Some(genesis.height()),
            earliest_block_time: Some(genesis.header.timestamp()),
            epoch_id: Some(*head.header.epoch_id()),
            epoch_start_height: Some(epoch * chain.epoch_length() + 1),
        },
        validator_account_id: None,
        validator_public_key: None,
        node_public_key: chain.genesis().validators[0].public_key(),
        node_key: None,
        uptime_sec: i64::try_from(shared.started.elapsed().as_secs()).unwrap_or(i64::MAX),
        genesis_hash: genesis.hash(),
        detailed_debug_status: None,
    };
    to_value(&resp)
}

/// The block a reference points at: `final` = last final block, `optimistic`/`near-final` = head (minus one).
fn resolve<'a>(chain: &'a NearChain, r: &BlockReference) -> Option<&'a StoredBlock> {
    match r {
        BlockReference::BlockId(BlockId::Height(h)) => chain.block_at(*h),
        BlockReference::BlockId(BlockId::Hash(h)) => chain.block_by_hash(h),
        BlockReference::Finality(Finality::Final) => Some(chain.final_block()),
        BlockReference::Finality(Finality::DoomSlug) => {
            chain.block_at(chain.head().height().saturating_sub(1))
        }
        BlockReference::Finality(Finality::None) => Some(chain.head()),
        BlockReference::SyncCheckpoint(_) => Some(chain.genesis_block()),
    }
}

fn block(shared: &Shared, params: Value) -> Result<Value, RpcError> {
    let req: RpcBlockRequest = match params {
        // Legacy form: `[height]` or `[hash]`.
        Value::Array(a) => RpcBlockRequest {
            block_reference: BlockReference::BlockId(parse(
                a.first().cloned().unwrap_or(Value::Null),
            )?),
        },
        p => parse(p)?,
    };
    let chain = shared.lock();
    match resolve(&chain, &req.block_reference) {
        Some(b) => to_value(&b.view()),
        None => Err(RpcBlockError::UnknownBlock {
            error_message: format!("DB Not Found Error: {:?}", req.block_reference),
        }
        .into()),
    }
}

fn query(shared: &Shared, params: Value) -> Result<Value, RpcError> {
    let req: RpcQueryRequest = parse(params)?;
    let chain = shared.lock();
    let b = resolve(&chain, &req.block_reference).ok_or_else(|| {
        RpcError::from(RpcQueryError::UnknownBlock {
            block_reference: req.block_reference.clone(),
        })
    })?;
    let (block_height, block_hash) = (b.height(), b.hash());
    let state = chain
        .state_at(block_height)
        .ok_or(RpcQueryError::GarbageCollectedBlock {
            block_height,
            block_hash,
        })?;
    let unknown_account = |id: &near_primitives::types::AccountId| RpcQueryError::UnknownAccount {
        requested_account_id: id.clone(),
        block_height,
        block_hash,
    };
    let kind = match &req.request {
        QueryRequest::ViewAccount { account_id } => {
            let acc = runtime::get_account(&state, account_id)
                .ok_or_else(|| unknown_account(account_id))?;
            QueryResponseKind::ViewAccount(AccountView::from(&acc))
        }
        QueryRequest::ViewAccessKey {
            account_id,
            public_key,
        } => {
            let key = runtime::get_access_key(&state, account_id, public_key).ok_or_else(|| {
                RpcQueryError::UnknownAccessKey {
                    public_key: public_key.clone(),
                    block_height,
                    block_hash,
                }
            })?;
            QueryResponseKind::AccessKey(AccessKeyView::from(key))
        }
        QueryRequest::ViewState {
            account_id,
            prefix,
            include_proof,
        } => {
            runtime::get_account(&state, account_id).ok_or_else(|| unknown_account(account_id))?;
            let full_prefix = contract_data_key(account_id, prefix.as_ref());
            let base = contract_data_key(account_id, b"").len();
            let values = state
                .range(full_prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&full_prefix))
                .map(|(k, v)| StateItem {
                    key: k[base..].to_vec().into(),
                    value: v.clone().into(),
                })
                .collect();
            let proof = if *include_proof {
                Trie::build(&state)
                    .prefix_proof(&full_prefix)
                    .into_iter()
                    .map(Arc::from)
                    .collect()
            } else {
                vec![]
            };
            QueryResponseKind::ViewState(ViewStateResult { values, proof })
        }
        QueryRequest::CallFunction {
            account_id,
            method_name,
            args,
        } => {
            runtime::get_account(&state, account_id).ok_or_else(|| unknown_account(account_id))?;
            if account_id != chain.ibc().account() {
                return Err(RpcQueryError::NoContractCode {
                    contract_account_id: account_id.clone(),
                    block_height,
                    block_hash,
                }
                .into());
            }
            let storage = ContractStorage::new(&state, account_id);
            let result = chain
                .ibc()
                .view(&storage, block_height, method_name, args.as_ref())
                .map_err(|e| RpcQueryError::ContractExecutionError {
                    vm_error: e.vm_error(),
                    block_height,
                    block_hash,
                })?;
            QueryResponseKind::CallResult(CallResult {
                result,
                logs: vec![],
            })
        }
        QueryRequest::ViewCode { account_id }
        | QueryRequest::ViewAccessKeyList { account_id }
        | QueryRequest::ViewGlobalContractCodeByAccountId { account_id } => {
            return Err(RpcQueryError::InternalError {
                error_message: format!(
                    "this query on {account_id} is not served by the relayd NEAR devnet"
                ),
            }
            .into())
        }
        QueryRequest::ViewGlobalContractCode { .. } => {
            return Err(RpcQueryError::InternalError {
                error_message: "global contracts are not served by the relayd NEAR devnet"
                    .to_owned(),
            }
            .into())
        }
    };
    to_value(&RpcQueryResponse {
        kind,
        block_height,
        block_hash,
    })
}

fn next_light_client_block(shared: &Shared, params: Value) -> Result<Value, RpcError> {
    let req: RpcLightClientNextBlockRequest = match params {
        Value::Array(a) => RpcLightClientNextBlockRequest {
            last_block_hash: parse(a.first().cloned().unwrap_or(Value::Null))?,
        },
        p => parse(p)?,
    };
    let chain = shared.lock();
    match chain.next_light_client_block(&req.last_block_hash) {
        Ok(b) => to_value(&b),
        Err(_) => Err(RpcLightClientNextBlockError::UnknownBlock {
            error_message: format!("DB Not Found Error: {}", req.last_block_hash),
        }
        .into()),
    }
}

/// nearcore's `EXPERIMENTAL_validators_ordered`: the block producers of a block's epoch (the head's when no block
/// is named), in the order their approvals appear in headers and light-client blocks.
fn validators_ordered(shared: &Shared, params: Value) -> Result<Value, RpcError> {
    let chain = shared.lock();
    let block_id: Option<BlockId> = match &params {
        Value::Array(a) => a
            .first()
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok()),
        Value::Object(o) => o
            .get("block_id")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok()),
        _ => None,
    };
    let epoch = match block_id {
        Some(bid) => {
            resolve(&chain, &BlockReference::BlockId(bid))
                .ok_or(RpcValidatorError::UnknownEpoch)?
                .epoch
        }
        None => chain.epoch_of(chain.head().height()),
    };
    let ordered: Vec<near_primitives::views::validator_stake_view::ValidatorStakeView> = chain
        .block_producers(epoch)
        .into_iter()
        .map(Into::into)
        .collect();
    to_value(&ordered)
}

fn validators(shared: &Shared, params: Value) -> Result<Value, RpcError> {
    let chain = shared.lock();
    // `[null]`, `{"latest": null}` and `null` ask for the current epoch; a block id asks for its epoch.
    let block_id: Option<BlockId> = match &params {
        Value::Array(a) => a
            .first()
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok()),
        Value::Object(o) => o
            .get("block_id")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok()),
        _ => None,
    };
    let epoch_id_param: Option<CryptoHash> = params
        .get("epoch_id")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok());
    let epoch = if let Some(id) = epoch_id_param {
        chain
            .epoch_index(&near_primitives::types::EpochId(id))
            .ok_or(RpcValidatorError::UnknownEpoch)?
    } else if let Some(bid) = block_id {
        let b = resolve(&chain, &BlockReference::BlockId(bid))
            .ok_or(RpcValidatorError::UnknownEpoch)?;
        b.epoch
    } else {
        chain.epoch_of(chain.head().height())
    };
    let len = chain.epoch_length();
    let current = chain
        .block_producers(epoch)
        .into_iter()
        .map(|v| CurrentEpochValidatorInfo {
            account_id: v.account_id().clone(),
            public_key: v.public_key().clone(),
            is_slashed: false,
            stake: v.stake(),
            num_produced_blocks: 0,
            num_expected_blocks: 0,
            num_produced_chunks: 0,
            num_expected_chunks: 0,
            num_produced_chunks_per_shard: vec![],
            num_expected_chunks_per_shard: vec![],
            num_produced_endorsements: 0,
            num_expected_endorsements: 0,
            num_produced_endorsements_per_shard: vec![],
            num_expected_endorsements_per_shard: vec![],
            shards_produced: vec![0.into()],
            shards_endorsed: vec![],
        })
        .collect();
    let next = chain
        .block_producers(epoch + 1)
        .into_iter()
        .map(|v| NextEpochValidatorInfo {
            account_id: v.account_id().clone(),
            public_key: v.public_key().clone(),
            stake: v.stake(),
            shards: vec![0.into()],
        })
        .collect();
    to_value(&EpochValidatorInfo {
        current_validators: current,
        next_validators: next,
        current_fishermen: vec![],
        next_fishermen: vec![],
        current_proposals: vec![],
        prev_epoch_kickout: vec![],
        epoch_start_height: epoch * len + 1,
        epoch_height: epoch + 1,
    })
}
