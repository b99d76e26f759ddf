//! What a `deliver` transaction's answers mean: the signed call itself, the node's refusal or acceptance, and the
//! executed outcome, classified from NEAR's structured error kinds (never from their text).

use ibc_proto::google::protobuf::Any;
use near_crypto::Signer;
use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_primitives::types::transactions::RpcTransactionError;
use near_primitives::action::{Action, FunctionCallAction};
use near_primitives::errors::{ActionErrorKind, InvalidTxError, TxExecutionError};
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{AccountId, Balance, Gas};
use near_primitives::views::{FinalExecutionOutcomeView, FinalExecutionStatus};

use crate::chain::endpoint::ChainError;
use crate::chain::near::contract::{deliver_args, deliver_deposit, deliver_failed};

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
    /// Gas burnt by the receipts alone (the `deliver` call's execution, without converting the transaction).
    pub receipt_gas: u64,
    /// The access-key nonce the transaction carried.
    pub nonce: u64,
    /// How many messages the call carried.
    pub messages: usize,
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
    /// The call ran out of its prepaid gas: nothing it carried took effect.
    #[error(
        "{chain}: deliver {tx_hash} of {messages} messages ran out of its {prepaid} prepaid gas"
    )]
    OutOfGas {
        /// The chain.
        chain: String,
        /// The transaction.
        tx_hash: CryptoHash,
        /// Messages the call carried.
        messages: usize,
        /// Gas attached to the call.
        prepaid: u64,
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
        failure: Option<TxExecutionError>,
        /// Whether the contract logged a refused message.
        refused: bool,
        /// Gas burnt by the transaction and its receipts.
        gas_burnt: u64,
        /// Gas burnt by the receipts alone.
        receipt_gas: u64,
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
    let receipt_gas = outcome
        .receipts_outcome
        .iter()
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
            receipt_gas,
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
            failure: Some(e.clone()),
            refused: false,
            gas_burnt,
            receipt_gas,
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

/// Whether a failed call ran out of gas: its function call failed after its receipts burnt at least all the gas
/// prepaid for it (NEAR burns the whole prepaid gas of a call that exceeds it). Decided on the error's kind and
/// the gas figures, not on the error's wording.
pub fn ran_out_of_gas(failure: &TxExecutionError, receipt_gas: u64, prepaid: u64) -> bool {
    matches!(
        failure,
        TxExecutionError::ActionError(e) if matches!(e.kind, ActionErrorKind::FunctionCallError(_))
    ) && receipt_gas >= prepaid
}
