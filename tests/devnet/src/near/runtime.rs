//! Transactions on the NEAR devnet: validation as nearcore's transaction pool does (signature, access key, nonce,
//! balance) and execution of `Transfer` and `FunctionCall` actions, with failures in nearcore's error types.
//!
//! State is the shard's key→value map under nearcore's trie keys (`TrieKey::Account`, `AccessKey`,
//! `ContractData`), values borsh-encoded as nearcore stores them.

use std::collections::BTreeMap;

use near_crypto::PublicKey;
use near_primitives::account::{AccessKey, AccessKeyPermission, Account, AccountContract};
use near_primitives::action::Action;
use near_primitives::errors::{
    ActionError, ActionErrorKind, ActionsValidationError, CompilationError, FunctionCallError,
    InvalidAccessKeyError, InvalidTxError, MethodResolveError, TxExecutionError,
};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::transaction::SignedTransaction;
use near_primitives::trie_key::TrieKey;
use near_primitives::types::{AccountId, Balance, Gas};
use near_primitives::utils::create_receipt_id_from_transaction;
use near_primitives::version::PROTOCOL_VERSION;
use near_primitives::views::{
    ExecutionMetadataView, ExecutionOutcomeView, ExecutionOutcomeWithIdView, ExecutionStatusView,
    FinalExecutionOutcomeView, FinalExecutionStatus, SignedTransactionView,
};

use super::genesis::{NearGenesis, GENESIS_BALANCE};
use super::ibc::{IbcContract, MIN_DEPOSIT_PER_MESSAGE};

/// The shard state: trie key → value.
pub type StateMap = BTreeMap<Vec<u8>, Vec<u8>>;

/// Gas price in yoctoNEAR per gas (nearcore's minimum gas price on mainnet).
pub const GAS_PRICE: u128 = 100_000_000;
/// Gas burnt converting a transaction into its receipt.
pub const TX_GAS: u64 = 2_428_000_000_000;
/// Gas burnt executing a receipt, before what its actions use.
pub const RECEIPT_GAS: u64 = 2_428_000_000_000;
/// Gas a `deliver` call uses besides its messages.
pub const DELIVER_BASE_GAS: u64 = 5_000_000_000_000;
/// Gas a `deliver` call uses per message.
pub const DELIVER_GAS_PER_MESSAGE: u64 = 15_000_000_000_000;
/// Storage cost per byte (nearcore's `storage_amount_per_byte`).
pub const STORAGE_BYTE_COST: u128 = 10_000_000_000_000_000_000;
/// nearcore's `num_bytes_account`: bytes an account record is charged for.
const ACCOUNT_BYTES: u64 = 100;
/// nearcore's `num_extra_bytes_record`: overhead charged per stored record.
const RECORD_BYTES: u64 = 40;
/// Marker standing in for the IBC contract's wasm code; its hash is the account's `code_hash`.
pub const IBC_CODE_MARKER: &[u8] = b"relayd devnet: near-ibc interface served natively by ibc-rs";

fn account_key(id: &AccountId) -> Vec<u8> {
    TrieKey::Account {
        account_id: id.clone(),
    }
    .to_vec()
}

fn access_key_key(id: &AccountId, pk: &PublicKey) -> Vec<u8> {
    TrieKey::AccessKey {
        account_id: id.clone(),
        public_key: pk.clone(),
    }
    .to_vec()
}

/// The account record of `id`.
pub fn get_account(state: &StateMap, id: &AccountId) -> Option<Account> {
    state
        .get(&account_key(id))
        .and_then(|b| borsh::from_slice(b).ok())
}

fn set_account(state: &mut StateMap, id: &AccountId, account: &Account) {
    if let Ok(b) = borsh::to_vec(account) {
        state.insert(account_key(id), b);
    }
}

/// The access key `pk` of `id`.
pub fn get_access_key(state: &StateMap, id: &AccountId, pk: &PublicKey) -> Option<AccessKey> {
    state
        .get(&access_key_key(id, pk))
        .and_then(|b| borsh::from_slice(b).ok())
}

fn set_access_key(state: &mut StateMap, id: &AccountId, pk: &PublicKey, key: &AccessKey) {
    if let Ok(b) = borsh::to_vec(key) {
        state.insert(access_key_key(id, pk), b);
    }
}

/// The genesis state: every funded account with its full-access key; the IBC account with contract code.
pub fn genesis_state(genesis: &NearGenesis) -> StateMap {
    let mut state = StateMap::new();
    let ibc_code_hash = hash(IBC_CODE_MARKER);
    for acc in genesis.funded() {
        let contract = if acc.account_id == genesis.ibc.account_id {
            AccountContract::Local(ibc_code_hash)
        } else {
            AccountContract::None
        };
        set_account(
            &mut state,
            &acc.account_id,
            &Account::new(
                Balance::from_yoctonear(GENESIS_BALANCE),
                Balance::ZERO,
                contract,
                0,
            ),
        );
        set_access_key(
            &mut state,
            &acc.account_id,
            &acc.public_key(),
            &AccessKey::full_access(),
        );
    }
    for key in &genesis.relayer_keys {
        set_access_key(
            &mut state,
            &key.account_id,
            &key.public_key(),
            &AccessKey::full_access(),
        );
    }
    refresh_storage_usage(&mut state);
    state
}

/// Recomputes every account's `storage_usage` as nearcore charges it: the account record, plus key and value
/// bytes and a fixed overhead for each access key and contract-data record.
pub fn refresh_storage_usage(state: &mut StateMap) {
    let mut usage: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for (k, v) in state.iter() {
        let (col, rest) = match k.split_first() {
            Some(x) => x,
            None => continue,
        };
        // AccessKey = 2 ‖ account ‖ 2 ‖ borsh(pk); ContractData = 9 ‖ account ‖ ',' ‖ key.
        let sep = match *col {
            2 => 2u8,
            9 => b',',
            _ => continue,
        };
        let Some(pos) = rest.iter().position(|b| *b == sep) else {
            continue;
        };
        let (account, tail) = (&rest[..pos], &rest[pos + 1..]);
        *usage.entry(account.to_vec()).or_default() +=
            tail.len() as u64 + v.len() as u64 + RECORD_BYTES;
    }
    let accounts: Vec<Vec<u8>> = state
        .keys()
        .filter(|k| k.first() == Some(&0))
        .cloned()
        .collect();
    for key in accounts {
        let Some(mut account) = state
            .get(&key)
            .and_then(|b| borsh::from_slice::<Account>(b).ok())
        else {
            continue;
        };
        let want = ACCOUNT_BYTES + usage.get(&key[1..]).copied().unwrap_or(0);
        if account.storage_usage() != want {
            account.set_storage_usage(want);
            if let Ok(b) = borsh::to_vec(&account) {
                state.insert(key, b);
            }
        }
    }
}

fn unsupported(action: &Action) -> Option<&'static str> {
    match action {
        Action::FunctionCall(_) | Action::Transfer(_) => None,
        Action::CreateAccount(_) => Some("CreateAccount"),
        Action::DeployContract(_) => Some("DeployContract"),
        Action::Stake(_) => Some("Stake"),
        Action::AddKey(_) => Some("AddKey"),
        Action::DeleteKey(_) => Some("DeleteKey"),
        Action::DeleteAccount(_) => Some("DeleteAccount"),
        Action::Delegate(_) => Some("Delegate"),
        Action::DeployGlobalContract(_) => Some("DeployGlobalContract"),
        Action::UseGlobalContract(_) => Some("UseGlobalContract"),
        Action::DeterministicStateInit(_) => Some("DeterministicStateInit"),
    }
}

/// What the signer is charged up front: conversion gas, all prepaid function-call gas at the gas price, and
/// every deposit.
pub fn total_cost(tx: &SignedTransaction) -> Result<u128, InvalidTxError> {
    let mut gas = u128::from(TX_GAS);
    let mut deposit: u128 = 0;
    for a in tx.transaction.actions() {
        match a {
            Action::FunctionCall(f) => {
                gas += u128::from(f.gas.as_gas());
                deposit = deposit
                    .checked_add(f.deposit.as_yoctonear())
                    .ok_or(InvalidTxError::CostOverflow)?;
            }
            Action::Transfer(t) => {
                deposit = deposit
                    .checked_add(t.deposit.as_yoctonear())
                    .ok_or(InvalidTxError::CostOverflow)?;
            }
            _ => {}
        }
    }
    gas.checked_mul(GAS_PRICE)
        .and_then(|g| g.checked_add(deposit))
        .ok_or(InvalidTxError::CostOverflow)
}

/// Checks a transaction against `state` as the transaction pool does. `used_nonce` is the highest nonce already
/// admitted for this access key (state or pool); `head_height` bounds nonces as nearcore does
/// (`tx_nonce < (head + 1)·10^6`).
pub fn validate(
    state: &StateMap,
    tx: &SignedTransaction,
    used_nonce: Option<u64>,
    head_height: u64,
) -> Result<(), InvalidTxError> {
    let t = &tx.transaction;
    if !tx.signature.verify(tx.get_hash().as_ref(), t.public_key()) {
        return Err(InvalidTxError::InvalidSignature);
    }
    for a in t.actions() {
        if let Some(kind) = unsupported(a) {
            return Err(InvalidTxError::ActionsValidation(
                ActionsValidationError::UnsupportedProtocolFeature {
                    protocol_feature: format!("{kind} on the relayd NEAR devnet"),
                    version: PROTOCOL_VERSION,
                },
            ));
        }
        if let Action::FunctionCall(f) = a {
            if f.gas == Gas::ZERO {
                return Err(InvalidTxError::ActionsValidation(
                    ActionsValidationError::FunctionCallZeroAttachedGas,
                ));
            }
        }
    }
    let signer = t.signer_id();
    let account = get_account(state, signer).ok_or_else(|| InvalidTxError::SignerDoesNotExist {
        signer_id: signer.clone(),
    })?;
    let key = get_access_key(state, signer, t.public_key()).ok_or_else(|| {
        InvalidTxError::InvalidAccessKeyError(InvalidAccessKeyError::AccessKeyNotFound {
            account_id: signer.clone(),
            public_key: Box::new(t.public_key().clone()),
        })
    })?;
    if !matches!(key.permission, AccessKeyPermission::FullAccess) {
        return Err(InvalidTxError::InvalidAccessKeyError(
            InvalidAccessKeyError::RequiresFullAccess,
        ));
    }
    let ak_nonce = used_nonce.unwrap_or(0).max(key.nonce);
    if t.nonce() <= ak_nonce {
        return Err(InvalidTxError::InvalidNonce {
            tx_nonce: t.nonce(),
            ak_nonce,
        });
    }
    let upper_bound = (head_height + 1).saturating_mul(1_000_000);
    if t.nonce() >= upper_bound {
        return Err(InvalidTxError::NonceTooLarge {
            tx_nonce: t.nonce(),
            upper_bound,
        });
    }
    let cost = total_cost(tx)?;
    if account.amount().as_yoctonear() < cost {
        return Err(InvalidTxError::NotEnoughBalance {
            signer_id: signer.clone(),
            balance: account.amount(),
            cost: Balance::from_yoctonear(cost),
        });
    }
    Ok(())
}

fn credit(state: &mut StateMap, id: &AccountId, amount: u128) -> bool {
    let Some(mut acc) = get_account(state, id) else {
        return false;
    };
    acc.set_amount(Balance::from_yoctonear(
        acc.amount().as_yoctonear().saturating_add(amount),
    ));
    set_account(state, id, &acc);
    true
}

fn gas(g: u64) -> Gas {
    Gas::from_gas(g)
}

fn burnt(g: u64) -> Balance {
    Balance::from_yoctonear(u128::from(g) * GAS_PRICE)
}

/// `deliver`'s arguments.
#[derive(serde::Deserialize)]
struct DeliverArgs {
    messages: Vec<ibc_proto::google::protobuf::Any>,
}

fn function_call_error(msg: String) -> ActionErrorKind {
    ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(msg))
}

/// Executes `tx` in block `height` (hash `block_hash`): charges the signer, bumps the nonce, and runs the
/// receipt's actions right away. Returns the outcome as `broadcast_tx_commit` reports it, and the tokens burnt.
pub fn apply(
    state: &mut StateMap,
    ibc: &mut IbcContract,
    tx: &SignedTransaction,
    height: u64,
    block_hash: CryptoHash,
) -> (FinalExecutionOutcomeView, u128) {
    let t = &tx.transaction;
    let tx_hash = tx.get_hash();
    let signer = t.signer_id().clone();
    let view = SignedTransactionView::from(tx.clone());
    if let Err(e) = validate(state, tx, None, height) {
        // The pool admitted it against an older state; nearcore drops such a transaction from the chunk, the
        // devnet reports it as failed.
        let failure = TxExecutionError::InvalidTxError(e);
        let outcome = ExecutionOutcomeWithIdView {
            proof: vec![],
            block_hash,
            id: tx_hash,
            outcome: ExecutionOutcomeView {
                logs: vec![],
                receipt_ids: vec![],
                gas_burnt: Gas::ZERO,
                tokens_burnt: Balance::ZERO,
                executor_id: signer,
                status: ExecutionStatusView::Failure(failure.clone()),
                metadata: ExecutionMetadataView::default(),
            },
        };
        return (
            FinalExecutionOutcomeView {
                status: FinalExecutionStatus::Failure(failure),
                transaction: view,
                transaction_outcome: outcome,
                receipts_outcome: vec![],
            },
            0,
        );
    }
    // `validate` passed, so the account, key and balance exist.
    let cost = total_cost(tx).unwrap_or(0);
    if let Some(mut acc) = get_account(state, &signer) {
        acc.set_amount(Balance::from_yoctonear(
            acc.amount().as_yoctonear().saturating_sub(cost),
        ));
        set_account(state, &signer, &acc);
    }
    if let Some(mut key) = get_access_key(state, &signer, t.public_key()) {
        key.nonce = t.nonce();
        set_access_key(state, &signer, t.public_key(), &key);
    }
    let receipt_id = create_receipt_id_from_transaction(&tx_hash, height);
    let tx_outcome = ExecutionOutcomeWithIdView {
        proof: vec![],
        block_hash,
        id: tx_hash,
        outcome: ExecutionOutcomeView {
            logs: vec![],
            receipt_ids: vec![receipt_id],
            gas_burnt: gas(TX_GAS),
            tokens_burnt: burnt(TX_GAS),
            executor_id: signer.clone(),
            status: ExecutionStatusView::SuccessReceiptId(receipt_id),
            metadata: ExecutionMetadataView::default(),
        },
    };

    // The receipt: all actions or none.
    let receiver = t.receiver_id().clone();
    let before = state.clone();
    let ibc_cp = ibc.checkpoint(height);
    let mut prepaid: u64 = 0;
    let mut used: u64 = RECEIPT_GAS;
    let mut deposits: u128 = 0;
    let mut logs = Vec::new();
    let mut failure = None;
    for (i, action) in t.actions().iter().enumerate() {
        let index = Some(i as u64);
        let result = match action {
            Action::Transfer(tr) => {
                deposits += tr.deposit.as_yoctonear();
                if credit(state, &receiver, tr.deposit.as_yoctonear()) {
                    Ok(())
                } else {
                    Err(ActionErrorKind::AccountDoesNotExist {
                        account_id: receiver.clone(),
                    })
                }
            }
            Action::FunctionCall(f) => {
                prepaid = prepaid.saturating_add(f.gas.as_gas());
                deposits += f.deposit.as_yoctonear();
                let call = Call {
                    caller: &signer,
                    receiver: &receiver,
                    height,
                };
                run_function_call(state, ibc, &call, f, &mut used, &mut logs)
            }
            // `validate` rejected every other action.
            _ => Ok(()),
        };
        if let Err(kind) = result {
            failure = Some(ActionError { index, kind });
            break;
        }
    }
    let receipt_gas = used.min(RECEIPT_GAS.saturating_add(prepaid));
    let status = match failure {
        Some(err) => {
            *state = before;
            ibc.revert(ibc_cp);
            // The deposits go back to the signer (nearcore sends a refund receipt).
            credit(state, &signer, deposits);
            ExecutionStatusView::Failure(TxExecutionError::ActionError(err))
        }
        None => ExecutionStatusView::SuccessValue(vec![]),
    };
    // Unused prepaid gas is refunded; the receipt's base cost was not prepaid, so it is burnt on top.
    let fn_used = receipt_gas.saturating_sub(RECEIPT_GAS);
    let refund_gas = prepaid.saturating_sub(fn_used);
    credit(state, &signer, u128::from(refund_gas) * GAS_PRICE);
    let base_charge = u128::from(RECEIPT_GAS) * GAS_PRICE;
    if let Some(mut acc) = get_account(state, &signer) {
        acc.set_amount(Balance::from_yoctonear(
            acc.amount().as_yoctonear().saturating_sub(base_charge),
        ));
        set_account(state, &signer, &acc);
    }
    let receipt_outcome = ExecutionOutcomeWithIdView {
        proof: vec![],
        block_hash,
        id: receipt_id,
        outcome: ExecutionOutcomeView {
            logs,
            receipt_ids: vec![],
            gas_burnt: gas(receipt_gas),
            tokens_burnt: burnt(receipt_gas),
            executor_id: receiver,
            status: status.clone(),
            metadata: ExecutionMetadataView::default(),
        },
    };
    let final_status = match status {
        ExecutionStatusView::Failure(e) => FinalExecutionStatus::Failure(e),
        ExecutionStatusView::SuccessValue(v) => FinalExecutionStatus::SuccessValue(v),
        _ => FinalExecutionStatus::Started,
    };
    let total_burnt = u128::from(TX_GAS + receipt_gas) * GAS_PRICE;
    (
        FinalExecutionOutcomeView {
            status: final_status,
            transaction: view,
            transaction_outcome: tx_outcome,
            receipts_outcome: vec![receipt_outcome],
        },
        total_burnt,
    )
}

/// Who calls which contract in which block: the transaction's signer is the predecessor of its own receipt.
struct Call<'a> {
    caller: &'a AccountId,
    receiver: &'a AccountId,
    height: u64,
}

fn run_function_call(
    state: &mut StateMap,
    ibc: &mut IbcContract,
    call: &Call<'_>,
    f: &near_primitives::action::FunctionCallAction,
    used: &mut u64,
    logs: &mut Vec<String>,
) -> Result<(), ActionErrorKind> {
    let receiver = call.receiver;
    if receiver != ibc.account() {
        return Err(ActionErrorKind::FunctionCallError(
            FunctionCallError::CompilationError(CompilationError::CodeDoesNotExist {
                account_id: receiver.clone(),
            }),
        ));
    }
    if f.method_name != "deliver" {
        return Err(ActionErrorKind::FunctionCallError(
            FunctionCallError::MethodResolveError(MethodResolveError::MethodNotFound),
        ));
    }
    let args: DeliverArgs = serde_json::from_slice(&f.args).map_err(|e| {
        function_call_error(format!(
            "Smart contract panicked: Failed to deserialize input from JSON.: {e}"
        ))
    })?;
    let n = args.messages.len() as u64;
    let need = DELIVER_BASE_GAS.saturating_add(DELIVER_GAS_PER_MESSAGE.saturating_mul(n));
    if need > f.gas.as_gas() {
        *used += f.gas.as_gas();
        return Err(function_call_error("Exceeded the prepaid gas.".to_owned()));
    }
    *used += need;
    let min = MIN_DEPOSIT_PER_MESSAGE.saturating_mul(u128::from(n));
    if f.deposit.as_yoctonear() < min {
        return Err(function_call_error(format!(
            "Smart contract panicked: assertion failed: Need to attach at least {MIN_DEPOSIT_PER_MESSAGE} yocto NEAR to cover the possible storage cost."
        )));
    }
    let (_events, deliver_logs) = ibc.deliver(call.height, call.caller, args.messages);
    logs.extend(deliver_logs);
    // The contract keeps the deposit to pay for the storage it uses.
    if !credit(state, receiver, f.deposit.as_yoctonear()) {
        return Err(ActionErrorKind::AccountDoesNotExist {
            account_id: receiver.clone(),
        });
    }
    Ok(())
}
