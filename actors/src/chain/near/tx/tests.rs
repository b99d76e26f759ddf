//! The `deliver` submitter against a scripted node: signatures, nonces, batching and outcome classification.

use super::*;
use crate::chain::near::light_client::sha256;
use crate::chain::near::test_rpc::{serve, Reply};
use base64::Engine;
use borsh::BorshDeserialize;
use near_crypto::{InMemorySigner, KeyType};
use near_primitives::action::Action;
use near_primitives::errors::TxExecutionError;
use near_primitives::errors::{ActionError, ActionErrorKind, FunctionCallError};
use near_primitives::transaction::{SignedTransaction, Transaction};
use near_primitives::types::Balance;
use near_primitives::views::FinalExecutionOutcomeView;
use near_primitives::views::FinalExecutionStatus;
use near_primitives::views::{
    ExecutionMetadataView, ExecutionOutcomeView, ExecutionOutcomeWithIdView, ExecutionStatusView,
    SignedTransactionView,
};
use serde_json::{json, Value};
use std::collections::HashMap;
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
    let executed: Arc<std::sync::Mutex<HashMap<String, Value>>> = Arc::default();
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
            executed
                .lock()
                .expect("lock")
                .insert(tx.get_hash().to_string(), behaviour(&tx));
            Reply::Result(json!({"final_execution_status": "NONE"}))
        }
        "tx" => {
            let hash = params["tx_hash"].as_str().unwrap_or_default();
            match executed.lock().expect("lock").get(hash) {
                Some(outcome) => Reply::Result(outcome.clone()),
                None => Reply::Error(json!({"code": -32000, "message": "unknown transaction"})),
            }
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
    let (rpc, _) = chain(|tx| outcome(tx, FinalExecutionStatus::SuccessValue(vec![]), &[])).await;
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

#[tokio::test]
async fn a_call_executed_with_a_nonce_another_sender_used_is_sent_again_once() {
    // The pool took nonce 21, but another sender's transactions up to 30 executed first: 21 is not applied.
    let (rpc, _) = chain(|tx| {
        let stale = matches!(&tx.transaction, Transaction::V0(t) if t.nonce == 21);
        let status = if stale {
            FinalExecutionStatus::Failure(TxExecutionError::InvalidTxError(
                near_primitives::errors::InvalidTxError::InvalidNonce {
                    tx_nonce: 21,
                    ak_nonce: 30,
                },
            ))
        } else {
            FinalExecutionStatus::SuccessValue(vec![])
        };
        outcome(tx, status, &[])
    })
    .await;
    let submitter = submitter(&rpc.url);
    // The first try carries 6 and is refused as stale (the key is at 20); 21 is admitted.
    let admitted = submitter.admit(vec![message()]).await.expect("admitted");
    assert_eq!(admitted.nonce, 21);
    let landed = submitter.settle(admitted).await.expect("landed");
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].nonce, 31, "sent again past the key's nonce");
    let accepted = rpc
        .requests
        .lock()
        .expect("lock")
        .iter()
        .filter(|(m, _)| m == "send_tx")
        .count();
    assert_eq!(accepted, 3, "6 refused, 21 executed stale, 31 landed");
}

#[tokio::test]
async fn a_call_out_of_gas_is_halved_until_every_part_lands_in_order() {
    // Burns all 300 Tgas and fails in the function call whenever it carries more than one message.
    let (rpc, _) = chain(|tx| {
        let Transaction::V0(t) = &tx.transaction else {
            return json!({});
        };
        let Some(Action::FunctionCall(call)) = t.actions.first() else {
            return json!({});
        };
        let args: Value = serde_json::from_slice(&call.args).unwrap_or_default();
        let n = args["messages"].as_array().map_or(0, Vec::len);
        if n <= 1 {
            return outcome(tx, FinalExecutionStatus::SuccessValue(vec![]), &[]);
        }
        let failure = TxExecutionError::ActionError(ActionError {
            index: Some(0),
            kind: ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(
                "any wording".to_owned(),
            )),
        });
        let mut value = outcome(tx, FinalExecutionStatus::Failure(failure), &[]);
        value["receipts_outcome"][0]["outcome"]["gas_burnt"] = json!(300_000_000_000_000u64);
        value
    })
    .await;
    let submitter = submitter(&rpc.url);
    let admitted = submitter
        .admit(vec![message(), message(), message()])
        .await
        .expect("admitted");
    let landed = submitter.settle(admitted).await.expect("landed");
    assert_eq!(
        landed.iter().map(|o| o.messages).collect::<Vec<_>>(),
        vec![1, 1, 1],
        "3 → 1 + 2 → 1 + 1 + 1, in order"
    );
    assert!(submitter.gas_per_message(batch::MsgKind::UpdateClient) > MEASURED_GAS_PER_MESSAGE);
}
