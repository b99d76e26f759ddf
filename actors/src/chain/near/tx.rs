//! Sends IBC messages to NEAR: one signed `deliver(messages)` function call to the IBC contract per batch, with
//! the deposit near-ibc asks per message. Keeps the access key's nonce, recovers it from the node's InvalidNonce
//! answer, and waits for the outcome, which it classifies.

use ibc_proto::google::protobuf::Any;
use near_crypto::Signer;
use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_primitives::types::transactions::RpcTransactionError;
use near_primitives::action::{Action, FunctionCallAction};
use near_primitives::errors::{InvalidTxError, TxExecutionError};
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{AccountId, Balance, Gas};
use near_primitives::views::{FinalExecutionOutcomeView, FinalExecutionStatus, TxExecutionStatus};
use tokio::sync::Mutex;

use super::bounded::CallError;
use super::contract::{deliver_args, deliver_deposit, deliver_failed};
use super::rpc::NearRpc;
use crate::chain::endpoint::ChainError;

/// How `deliver` transactions are made.
#[derive(Debug, Clone)]
pub struct NearTxConfig {
    /// Gas attached to each call.
    pub gas: Gas,
    /// How long `send_tx` waits: until final by default, so the outcome relayd reads cannot be reverted.
    pub wait_until: TxExecutionStatus,
    /// How many times a stale nonce is refreshed and the call sent again.
    pub nonce_retries: usize,
}

impl Default for NearTxConfig {
    fn default() -> Self {
        Self {
            // NEAR's per-transaction maximum; `deliver` runs light clients and handlers in wasm.
            gas: Gas::from_teragas(300),
            wait_until: TxExecutionStatus::Final,
            nonce_retries: 3,
        }
    }
}

/// A `deliver` call that executed and whose messages the contract accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearTxOutcome {
    /// The transaction hash.
    pub tx_hash: CryptoHash,
    /// The block the transaction was included in.
    pub block_hash: CryptoHash,
    /// The blocks its receipts executed in, in order and without repeats: the contract's IBC events are recorded
    /// at these blocks' heights.
    pub receipt_blocks: Vec<CryptoHash>,
    /// The contract's log lines, in execution order.
    pub logs: Vec<String>,
    /// Gas burnt by the transaction and its receipts.
    pub gas_burnt: u64,
}

/// Why a `deliver` call did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NearTxError {
    /// The node could not be reached, or did not answer in time; the call may or may not have been included.
    #[error(transparent)]
    Rpc(#[from] ChainError),
    /// The node refused the transaction before execution.
    #[error("{chain}: transaction refused: {reason}")]
    Rejected {
        /// The chain.
        chain: String,
        /// The node's reason.
        reason: String,
    },
    /// The nonce stayed stale after every refresh (another sender keeps using the key).
    #[error("{chain}: nonce still stale after {attempts} attempts (access key nonce {ak_nonce})")]
    NonceExhausted {
        /// The chain.
        chain: String,
        /// Attempts made.
        attempts: usize,
        /// The last access key nonce the node reported.
        ak_nonce: u64,
    },
    /// The call executed and failed (a contract panic, too little deposit or gas).
    #[error("{chain}: deliver {tx_hash} failed: {reason}")]
    Failed {
        /// The chain.
        chain: String,
        /// The transaction.
        tx_hash: CryptoHash,
        /// NEAR's error.
        reason: String,
    },
    /// The call succeeded but the contract refused at least one message.
    #[error("{chain}: deliver {tx_hash}: the IBC contract refused a message: {}", logs.join(" | "))]
    MessageRefused {
        /// The chain.
        chain: String,
        /// The transaction.
        tx_hash: CryptoHash,
        /// The contract's logs, which name the refused message and the reason.
        logs: Vec<String>,
    },
    /// `send_tx` answered without an outcome.
    #[error("{chain}: transaction {tx_hash} has no outcome yet")]
    Unconfirmed {
        /// The chain.
        chain: String,
        /// The transaction.
        tx_hash: CryptoHash,
    },
}

impl NearTxError {
    /// Whether sending the same messages again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Rpc(_) | Self::NonceExhausted { .. } | Self::Unconfirmed { .. }
        )
    }
}

/// What a `send_tx` answer means for the submitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// Executed.
    Done {
        /// The block that included the transaction.
        block_hash: CryptoHash,
        /// The blocks its receipts executed in.
        receipt_blocks: Vec<CryptoHash>,
        /// The logs of the transaction and its receipts.
        logs: Vec<String>,
        /// NEAR's error when the execution failed.
        failure: Option<String>,
        /// Whether the contract logged a refused message.
        refused: bool,
        /// Gas burnt by the transaction and its receipts.
        gas_burnt: u64,
    },
    /// The nonce was stale: the access key's nonce on chain.
    StaleNonce(u64),
    /// Refused before execution.
    Rejected(String),
    /// The node did not answer usefully.
    Transport(String),
    /// No outcome in the answer.
    NoOutcome,
}

/// Classifies a `send_tx` outcome.
pub fn classify_outcome(outcome: &FinalExecutionOutcomeView) -> SendResult {
    let logs: Vec<String> = std::iter::once(&outcome.transaction_outcome)
        .chain(&outcome.receipts_outcome)
        .flat_map(|o| o.outcome.logs.iter().cloned())
        .collect();
    let block_hash = outcome.transaction_outcome.block_hash;
    let gas_burnt = std::iter::once(&outcome.transaction_outcome)
        .chain(&outcome.receipts_outcome)
        .map(|o| o.outcome.gas_burnt.as_gas())
        .fold(0u64, u64::saturating_add);
    let mut receipt_blocks: Vec<CryptoHash> = Vec::new();
    for receipt in &outcome.receipts_outcome {
        if !receipt_blocks.contains(&receipt.block_hash) {
            receipt_blocks.push(receipt.block_hash);
        }
    }
    match &outcome.status {
        FinalExecutionStatus::SuccessValue(_) => SendResult::Done {
            block_hash,
            receipt_blocks,
            refused: deliver_failed(&logs),
            logs,
            failure: None,
            gas_burnt,
        },
        FinalExecutionStatus::Failure(TxExecutionError::InvalidTxError(
            InvalidTxError::InvalidNonce { ak_nonce, .. },
        )) => SendResult::StaleNonce(*ak_nonce),
        FinalExecutionStatus::Failure(TxExecutionError::InvalidTxError(e)) => {
            SendResult::Rejected(e.to_string())
        }
        FinalExecutionStatus::Failure(e) => SendResult::Done {
            block_hash,
            receipt_blocks,
            logs,
            failure: Some(e.to_string()),
            refused: false,
            gas_burnt,
        },
        FinalExecutionStatus::NotStarted | FinalExecutionStatus::Started => SendResult::NoOutcome,
    }
}

/// Classifies a `send_tx` error answer.
pub fn classify_error(err: &JsonRpcError<RpcTransactionError>) -> SendResult {
    match err {
        JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
            RpcTransactionError::InvalidTransaction { context },
        )) => match context {
            InvalidTxError::InvalidNonce { ak_nonce, .. } => SendResult::StaleNonce(*ak_nonce),
            other => SendResult::Rejected(other.to_string()),
        },
        other => SendResult::Transport(other.to_string()),
    }
}

/// Signs a `deliver(messages)` call (NEAR signs the sha256 of the borsh transaction).
pub fn sign_deliver(
    signer: &Signer,
    contract: &AccountId,
    messages: &[Any],
    nonce: u64,
    block_hash: CryptoHash,
    gas: Gas,
) -> SignedTransaction {
    let transaction = Transaction::V0(TransactionV0 {
        signer_id: signer.get_account_id(),
        public_key: signer.public_key(),
        nonce,
        receiver_id: contract.clone(),
        block_hash,
        actions: vec![Action::FunctionCall(Box::new(FunctionCallAction {
            method_name: "deliver".to_owned(),
            args: deliver_args(messages),
            gas,
            deposit: Balance::from_yoctonear(deliver_deposit(messages.len())),
        }))],
    });
    let (hash, _) = transaction.get_hash_and_size();
    let signature = signer.sign(hash.as_ref());
    SignedTransaction::new(signature, transaction)
}

/// Sends `deliver` transactions for one access key, one at a time.
pub struct NearTxSubmitter {
    rpc: NearRpc,
    signer: Signer,
    contract: AccountId,
    config: NearTxConfig,
    /// The last nonce used with the key; `None` until read from the chain or after an unclear failure.
    nonce: Mutex<Option<u64>>,
}

impl NearTxSubmitter {
    /// A submitter signing with `signer` for calls to `contract`.
    pub fn new(rpc: NearRpc, signer: Signer, contract: AccountId, config: NearTxConfig) -> Self {
        Self {
            rpc,
            signer,
            contract,
            config,
            nonce: Mutex::new(None),
        }
    }

    /// The signing account.
    pub fn account(&self) -> AccountId {
        self.signer.get_account_id()
    }

    /// Delivers `messages` in order, at most `max_num` messages and `max_size` encoded bytes per transaction (as
    /// configured for the chain), and stops at the first transaction that fails: later messages usually depend
    /// on earlier ones (an update before the proof it makes checkable).
    pub async fn submit_all(
        &self,
        messages: Vec<Any>,
        max_num: usize,
        max_size: usize,
    ) -> Result<Vec<NearTxOutcome>, NearTxError> {
        let mut outcomes = Vec::new();
        for batch in crate::chain::cosmos::tx::batches(messages, max_num, max_size) {
            outcomes.push(self.submit(&batch).await?);
        }
        Ok(outcomes)
    }

    /// Delivers `messages` in one transaction and waits for its outcome.
    pub async fn submit(&self, messages: &[Any]) -> Result<NearTxOutcome, NearTxError> {
        let chain = self.rpc.chain().to_owned();
        let mut last = self.nonce.lock().await;
        let mut ak_nonce = 0;
        for _ in 0..=self.config.nonce_retries {
            // The final block's view of the key gives a recent block hash to sign against; the nonce relayd used
            // last may be ahead of it when the final block lags the transactions relayd saw executed.
            let (key, block_hash) = self
                .rpc
                .access_key(&self.signer.get_account_id(), &self.signer.public_key())
                .await?;
            let used = last.map_or(key.nonce, |n| n.max(key.nonce));
            let nonce = used + 1;
            let signed = sign_deliver(
                &self.signer,
                &self.contract,
                messages,
                nonce,
                block_hash,
                self.config.gas,
            );
            let tx_hash = signed.get_hash();
            let result = match self
                .rpc
                .send_tx(signed, self.config.wait_until.clone())
                .await
            {
                Ok(response) => match response.final_execution_outcome {
                    Some(outcome) => classify_outcome(&outcome.into_outcome()),
                    None => SendResult::NoOutcome,
                },
                Err(CallError::Call(e)) => classify_error(&e),
                // The transaction may have been included all the same.
                Err(e @ CallError::TooLarge { .. }) => SendResult::Transport(e.to_string()),
            };
            match result {
                SendResult::StaleNonce(n) => {
                    tracing::debug!(chain, nonce, ak_nonce = n, "stale nonce, retrying");
                    ak_nonce = n;
                    *last = Some(n);
                }
                SendResult::Rejected(reason) => {
                    // Refused before execution: the nonce was not consumed.
                    return Err(NearTxError::Rejected { chain, reason });
                }
                SendResult::Transport(reason) => {
                    // The transaction may have been included: read the nonce again next time.
                    *last = None;
                    return Err(NearTxError::Rpc(ChainError::rpc(&chain, "send_tx", reason)));
                }
                SendResult::NoOutcome => {
                    *last = Some(nonce);
                    return Err(NearTxError::Unconfirmed { chain, tx_hash });
                }
                SendResult::Done {
                    block_hash,
                    receipt_blocks,
                    logs,
                    failure,
                    refused,
                    gas_burnt,
                } => {
                    *last = Some(nonce);
                    return match (failure, refused) {
                        (Some(reason), _) => Err(NearTxError::Failed {
                            chain,
                            tx_hash,
                            reason,
                        }),
                        (None, true) => Err(NearTxError::MessageRefused {
                            chain,
                            tx_hash,
                            logs,
                        }),
                        (None, false) => Ok(NearTxOutcome {
                            tx_hash,
                            block_hash,
                            receipt_blocks,
                            logs,
                            gas_burnt,
                        }),
                    };
                }
            }
        }
        *last = None;
        Err(NearTxError::NonceExhausted {
            chain,
            attempts: self.config.nonce_retries + 1,
            ak_nonce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::near::light_client::sha256;
    use crate::chain::near::test_rpc::{serve, Reply};
    use base64::Engine;
    use borsh::BorshDeserialize;
    use near_crypto::{InMemorySigner, KeyType};
    use near_primitives::errors::{ActionError, ActionErrorKind, FunctionCallError};
    use near_primitives::views::{
        ExecutionMetadataView, ExecutionOutcomeView, ExecutionOutcomeWithIdView,
        ExecutionStatusView, SignedTransactionView,
    };
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn signer() -> Signer {
        InMemorySigner::from_seed(
            "relayer.test.near".parse().expect("id"),
            KeyType::ED25519,
            "relayer",
        )
    }

    fn contract() -> AccountId {
        "ibc.test.near".parse().expect("id")
    }

    fn message() -> Any {
        Any {
            type_url: "/ibc.core.client.v1.MsgUpdateClient".to_owned(),
            value: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_signed_deliver_carries_the_messages_the_deposit_and_a_valid_signature() {
        let signer = signer();
        let block = sha256(b"block");
        let tx = sign_deliver(
            &signer,
            &contract(),
            &[message(), message()],
            8,
            block,
            Gas::from_teragas(300),
        );
        let (hash, _) = tx.transaction.get_hash_and_size();
        assert!(tx.signature.verify(hash.as_ref(), &signer.public_key()));
        let Transaction::V0(inner) = &tx.transaction else {
            panic!("V0 transaction")
        };
        assert_eq!(
            (inner.nonce, inner.block_hash, inner.receiver_id.as_str()),
            (8, block, "ibc.test.near")
        );
        let [Action::FunctionCall(call)] = inner.actions.as_slice() else {
            panic!("one function call")
        };
        assert_eq!(call.method_name, "deliver");
        assert_eq!(
            call.deposit.as_yoctonear(),
            2 * crate::chain::near::contract::DEPOSIT_PER_MESSAGE
        );
        let args: Value = serde_json::from_slice(&call.args).expect("json");
        assert_eq!(
            args["messages"][1]["typeUrl"],
            "/ibc.core.client.v1.MsgUpdateClient"
        );
    }

    /// A chain's answer to an executed transaction, built from the transaction it received.
    fn outcome(tx: &SignedTransaction, status: FinalExecutionStatus, logs: &[&str]) -> Value {
        let included = sha256(b"inclusion block");
        let receipt = sha256(tx.get_hash().as_ref());
        let view = |id, logs: Vec<String>, status| ExecutionOutcomeWithIdView {
            proof: vec![],
            block_hash: included,
            id,
            outcome: ExecutionOutcomeView {
                logs,
                receipt_ids: vec![],
                gas_burnt: Gas::from_gas(1),
                tokens_burnt: Balance::from_yoctonear(0),
                executor_id: contract(),
                status,
                metadata: ExecutionMetadataView::default(),
            },
        };
        let final_outcome = FinalExecutionOutcomeView {
            status,
            transaction: SignedTransactionView::from(tx.clone()),
            transaction_outcome: view(
                tx.get_hash(),
                vec![],
                ExecutionStatusView::SuccessReceiptId(receipt),
            ),
            receipts_outcome: vec![view(
                receipt,
                logs.iter().map(|l| l.to_string()).collect(),
                ExecutionStatusView::SuccessValue(vec![]),
            )],
        };
        let mut value = serde_json::to_value(final_outcome).expect("json");
        value["final_execution_status"] = json!("FINAL");
        value
    }

    /// nearcore's JSON-RPC error for a transaction with a stale nonce.
    fn invalid_nonce(tx_nonce: u64, ak_nonce: u64) -> Value {
        json!({
            "name": "HANDLER_ERROR",
            "cause": {"name": "INVALID_TRANSACTION", "info": {}},
            "code": -32000,
            "message": "Server error",
            "data": {"TxExecutionError": {"InvalidTxError": {"InvalidNonce": {"tx_nonce": tx_nonce, "ak_nonce": ak_nonce}}}}
        })
    }

    fn decode_tx(params: &Value) -> SignedTransaction {
        let b64 = params["signed_tx_base64"].as_str().expect("signed tx");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        SignedTransaction::try_from_slice(&bytes).expect("borsh")
    }

    /// A chain whose access key was used up to nonce 20 by someone else, while its final view still says 5;
    /// `behaviour` decides what an accepted transaction does.
    async fn chain(
        behaviour: fn(&SignedTransaction) -> Value,
    ) -> (crate::chain::near::test_rpc::TestRpc, Arc<AtomicU64>) {
        let key_nonce = Arc::new(AtomicU64::new(20));
        let nonce = key_nonce.clone();
        let rpc = serve(Arc::new(move |method: &str, params: &Value| match method {
            "query" => Reply::Result(json!({
                "nonce": 5, "permission": "FullAccess",
                "block_height": 100, "block_hash": sha256(b"final block").to_string()
            })),
            "send_tx" => {
                let tx = decode_tx(params);
                let Transaction::V0(inner) = &tx.transaction else {
                    return Reply::Error(json!({"code": -32600, "message": "bad tx"}));
                };
                let (hash, _) = tx.transaction.get_hash_and_size();
                assert!(
                    tx.signature.verify(hash.as_ref(), &inner.public_key),
                    "signature checks"
                );
                let ak = nonce.load(Ordering::SeqCst);
                if inner.nonce <= ak {
                    return Reply::Error(invalid_nonce(inner.nonce, ak));
                }
                nonce.store(inner.nonce, Ordering::SeqCst);
                Reply::Result(behaviour(&tx))
            }
            other => Reply::Error(json!({"code": -32601, "message": format!("no method {other}")})),
        }))
        .await;
        (rpc, key_nonce)
    }

    fn submitter(url: &str) -> NearTxSubmitter {
        NearTxSubmitter::new(
            NearRpc::new("near-0", url),
            signer(),
            contract(),
            NearTxConfig::default(),
        )
    }

    #[tokio::test]
    async fn a_stale_nonce_is_recovered_and_the_next_call_continues_from_it() {
        let (rpc, key_nonce) =
            chain(|tx| outcome(tx, FinalExecutionStatus::SuccessValue(vec![]), &["stored"])).await;
        let submitter = submitter(&rpc.url);
        let first = submitter.submit(&[message()]).await.expect("delivered");
        assert_eq!(first.logs, vec!["stored".to_owned()]);
        assert_eq!(first.block_hash, sha256(b"inclusion block"));
        assert_eq!(first.receipt_blocks, vec![sha256(b"inclusion block")]);
        assert_eq!(key_nonce.load(Ordering::SeqCst), 21);
        submitter
            .submit(&[message()])
            .await
            .expect("delivered again");
        assert_eq!(
            key_nonce.load(Ordering::SeqCst),
            22,
            "no second refusal: the cached nonce is ahead of the final view"
        );
        let sends: Vec<u64> = rpc
            .requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|(m, _)| m == "send_tx")
            .map(|(_, p)| match decode_tx(p).transaction {
                Transaction::V0(t) => t.nonce,
                _ => 0,
            })
            .collect();
        assert_eq!(sends, vec![6, 21, 22]);
    }

    #[tokio::test]
    async fn messages_are_split_into_transactions_in_order() {
        let (rpc, _) =
            chain(|tx| outcome(tx, FinalExecutionStatus::SuccessValue(vec![]), &[])).await;
        let numbered: Vec<Any> = (0..5u8)
            .map(|i| Any {
                type_url: "/ibc.core.client.v1.MsgUpdateClient".to_owned(),
                value: vec![i],
            })
            .collect();
        let outcomes = submitter(&rpc.url)
            .submit_all(numbered, 2, 1 << 20)
            .await
            .expect("delivered");
        assert_eq!(outcomes.len(), 3);
        let sent: Vec<Vec<String>> = rpc
            .requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|(m, _)| m == "send_tx")
            .filter_map(|(_, p)| match decode_tx(p).transaction {
                Transaction::V0(t) => match t.actions.first() {
                    Some(Action::FunctionCall(call)) => {
                        let args: Value = serde_json::from_slice(&call.args).ok()?;
                        Some(
                            args["messages"]
                                .as_array()?
                                .iter()
                                .map(|m| m["value"].as_str().unwrap_or_default().to_owned())
                                .collect(),
                        )
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        // Accepted transactions only (the first try carried a stale nonce): base64 of bytes 0..5, in order.
        let accepted: Vec<Vec<String>> = sent.into_iter().skip(1).collect();
        assert_eq!(
            accepted,
            vec![vec!["AA==", "AQ=="], vec!["Ag==", "Aw=="], vec!["BA=="]]
                .into_iter()
                .map(|b| b.into_iter().map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_contract_panic_is_a_failure_and_a_refused_message_is_reported() {
        let (rpc, _) = chain(|tx| {
            let panic = TxExecutionError::ActionError(ActionError {
                index: Some(0),
                kind: ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(
                    "Smart contract panicked: Need to attach at least 50000000000000000000000 yocto NEAR".to_owned(),
                )),
            });
            outcome(tx, FinalExecutionStatus::Failure(panic), &[])
        })
        .await;
        match submitter(&rpc.url).submit(&[message()]).await {
            Err(e @ NearTxError::Failed { .. }) => {
                assert!(e.to_string().contains("Need to attach"), "{e}");
                assert!(!e.is_retryable());
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        let (rpc, _) = chain(|tx| {
            outcome(
                tx,
                FinalExecutionStatus::SuccessValue(vec![]),
                &[
                    "Error occurred in processing message: client not found",
                    r#"EVENT_JSON:{"standard":"nep297","version":"1.0.0","event":"ERR_DELIVER_MESSAGE"}"#,
                ],
            )
        })
        .await;
        match submitter(&rpc.url).submit(&[message()]).await {
            Err(NearTxError::MessageRefused { logs, .. }) => {
                assert!(logs[0].contains("client not found"))
            }
            other => panic!("expected MessageRefused, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_unreachable_node_is_a_retryable_error() {
        let err = submitter("http://127.0.0.1:9")
            .submit(&[message()])
            .await
            .expect_err("no node");
        assert!(err.is_retryable(), "{err}");
    }
}
