//! The NEAR devnet through near-jsonrpc-client: blocks, light-client blocks, queries, signed `deliver`
//! transactions creating a Tendermint client of a Cosmos devnet chain, and NEAR's transaction errors.

// Shared with the Cosmos tests; this file uses the light-client helpers only.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use base64::Engine;
use devnet::near::ibc::contract_data_key;
use devnet::near::trie::lookup_in_proof;
use devnet::near::{NearAccount, NearOptions, RunningNear};
use devnet::ChainOptions;
use ibc_proto::ibc::core::client::v1::{Height, MsgCreateClient};
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, Fraction};
use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_client::{methods, JsonRpcClient};
use near_jsonrpc_primitives::types::query::QueryResponseKind;
use near_jsonrpc_primitives::types::transactions::RpcTransactionError;
use near_primitives::action::{Action, FunctionCallAction};
use near_primitives::block_header::{Approval, ApprovalInner, BlockHeader};
use near_primitives::errors::{
    ActionErrorKind, FunctionCallError, InvalidTxError, TxExecutionError,
};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::merkle::combine_hash;
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{Balance, BlockReference, Finality, FunctionArgs, Gas};
use near_primitives::views::{FinalExecutionStatus, QueryRequest};
use support::chain::Chain;
use support::light::{self as tm, any};

const BLOCK_TIME: Duration = Duration::from_millis(200);

async fn start_near() -> (RunningNear, JsonRpcClient) {
    let near = devnet::near::start(NearOptions::local(BLOCK_TIME))
        .await
        .expect("near devnet starts");
    let client = JsonRpcClient::connect(near.rpc_url());
    (near, client)
}

async fn access_key_nonce(client: &JsonRpcClient, acc: &NearAccount) -> u64 {
    let resp = client
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::Finality(Finality::None),
            request: QueryRequest::ViewAccessKey {
                account_id: acc.account_id.clone(),
                public_key: acc.public_key(),
            },
        })
        .await
        .expect("view_access_key");
    match resp.kind {
        QueryResponseKind::AccessKey(k) => k.nonce,
        other => panic!("unexpected {other:?}"),
    }
}

async fn deliver_tx(
    client: &JsonRpcClient,
    signer: &NearAccount,
    contract: &NearAccount,
    nonce: u64,
    messages: &[ibc_proto::google::protobuf::Any],
    deposit: u128,
) -> SignedTransaction {
    let block = client
        .call(methods::block::RpcBlockRequest {
            block_reference: BlockReference::Finality(Finality::Final),
        })
        .await
        .expect("block");
    let args = serde_json::json!({ "messages": messages });
    let tx = Transaction::V0(TransactionV0 {
        signer_id: signer.account_id.clone(),
        public_key: signer.public_key(),
        nonce,
        receiver_id: contract.account_id.clone(),
        block_hash: block.header.hash,
        actions: vec![Action::FunctionCall(Box::new(FunctionCallAction {
            method_name: "deliver".to_owned(),
            args: serde_json::to_vec(&args).expect("json"),
            gas: Gas::from_teragas(300),
            deposit: Balance::from_yoctonear(deposit),
        }))],
    });
    let (h, _) = tx.get_hash_and_size();
    SignedTransaction::new(signer.secret_key.sign(h.as_ref()), tx)
}

async fn view(
    client: &JsonRpcClient,
    contract: &NearAccount,
    block_height: u64,
    method: &str,
    args: serde_json::Value,
) -> Vec<u8> {
    let resp = client
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::BlockId(near_primitives::types::BlockId::Height(
                block_height,
            )),
            request: QueryRequest::CallFunction {
                account_id: contract.account_id.clone(),
                method_name: method.to_owned(),
                args: FunctionArgs::from(serde_json::to_vec(&args).expect("json")),
            },
        })
        .await
        .expect("call_function");
    match resp.kind {
        QueryResponseKind::CallResult(r) => r.result,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_advance_and_headers_are_nearcore_blocks() {
    let (near, client) = start_near().await;
    let status = client
        .call(methods::status::RpcStatusRequest)
        .await
        .expect("status");
    assert_eq!(status.chain_id, near.chain_id());
    let start = status.sync_info.latest_block_height;
    near.wait_for_height(start + 3).await;
    let block = client
        .call(methods::block::RpcBlockRequest {
            block_reference: BlockReference::latest(),
        })
        .await
        .expect("block");
    assert!(block.header.height >= start + 3);
    // The view rebuilds into a header with the same hash: inner_lite, inner_rest and prev hash as nearcore.
    let header = BlockHeader::from(block.header.clone());
    assert_eq!(*header.hash(), block.header.hash);
    let validators = client
        .call(methods::validators::RpcValidatorRequest {
            epoch_reference: near_primitives::types::EpochReference::Latest,
        })
        .await
        .expect("validators");
    assert!(validators.current_validators.len() >= 2);
    let author = validators
        .current_validators
        .iter()
        .find(|v| v.account_id == block.author)
        .expect("author is a block producer");
    assert!(block
        .header
        .signature
        .verify(block.header.hash.as_ref(), &author.public_key));
    // Every approval endorses the previous block at this height.
    let data = Approval::get_data_for_sig(
        &ApprovalInner::Endorsement(block.header.prev_hash),
        block.header.height,
    );
    for (sig, v) in block
        .header
        .approvals
        .iter()
        .zip(&validators.current_validators)
    {
        assert!(sig.as_ref().expect("approval").verify(&data, &v.public_key));
    }
    let price = client
        .call(methods::gas_price::RpcGasPriceRequest { block_id: None })
        .await
        .expect("gas_price");
    assert!(price.gas_price.as_yoctonear() > 0);
    near.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_client_blocks_chain_across_epochs() {
    let (near, client) = start_near().await;
    let genesis = client
        .call(methods::block::RpcBlockRequest {
            block_reference: BlockReference::BlockId(near_primitives::types::BlockId::Height(0)),
        })
        .await
        .expect("genesis");
    let epoch_length = near.genesis.epoch_length;
    near.wait_for_height(3 * epoch_length + 3).await;
    let mut head_hash = genesis.header.hash;
    let mut epochs = std::collections::BTreeSet::new();
    let mut heights = Vec::new();
    for _ in 0..10 {
        let Some(lc) = client
            .call(
                methods::next_light_client_block::RpcLightClientNextBlockRequest {
                    last_block_hash: head_hash,
                },
            )
            .await
            .expect("next_light_client_block")
        else {
            break;
        };
        // The hash rule of the NEAR light client spec; the block must be the one the chain knows.
        let inner = combine_hash(
            &CryptoHash::hash_borsh(near_primitives::block_header::BlockHeaderInnerLite::from(
                lc.inner_lite.clone(),
            )),
            &lc.inner_rest_hash,
        );
        let block_hash = combine_hash(&inner, &lc.prev_block_hash);
        let block = client
            .call(methods::block::RpcBlockRequest {
                block_reference: BlockReference::BlockId(near_primitives::types::BlockId::Hash(
                    block_hash,
                )),
            })
            .await
            .expect("light-client block is a chain block");
        assert_eq!(block.header.height, lc.inner_lite.height);
        let next_bps = lc.next_bps.as_ref().expect("next_bps");
        let bps: Vec<_> = next_bps
            .iter()
            .cloned()
            .map(|v| v.into_validator_stake())
            .collect();
        assert_eq!(
            CryptoHash::hash_borsh_iter(bps.iter()),
            lc.inner_lite.next_bp_hash
        );
        epochs.insert(lc.inner_lite.epoch_id);
        heights.push(lc.inner_lite.height);
        head_hash = block_hash;
    }
    assert!(heights.windows(2).all(|w| w[0] < w[1]), "{heights:?}");
    assert!(epochs.len() >= 3, "crossed epochs: {epochs:?}");
    near.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_creates_a_tendermint_client_readable_with_proof() {
    let cosmos = devnet::start_chain(ChainOptions::local("ibc-0", Duration::from_millis(300)))
        .await
        .expect("cosmos devnet");
    let (near, client) = start_near().await;
    let counterparty = Chain::connect(&cosmos);
    let h = counterparty.wait_until_height(2).await;
    counterparty.wait_until_height(h + 1).await;
    let root = tm::fetch_light_block(&counterparty, h).await;
    let unbonding = tm::unbonding_period(&counterparty).await;
    #[allow(deprecated)]
    let client_state = ClientState {
        chain_id: counterparty.id.clone(),
        trust_level: Some(Fraction {
            numerator: 1,
            denominator: 3,
        }),
        trusting_period: Some(tm::pb_duration(unbonding * 2 / 3)),
        unbonding_period: Some(tm::pb_duration(unbonding)),
        max_clock_drift: Some(tm::pb_duration(Duration::from_secs(20))),
        frozen_height: Some(Height::default()),
        latest_height: Some(tm::height(&counterparty, h)),
        proof_specs: devnet::proof_specs(),
        upgrade_path: vec!["upgrade".into(), "upgradedIBCState".into()],
        allow_update_after_expiry: false,
        allow_update_after_misbehaviour: false,
    };
    let relayer = &near.genesis.relayer;
    let contract = &near.genesis.ibc;
    let msg = MsgCreateClient {
        client_state: Some(any(tm::TM_CLIENT_STATE_URL, &client_state)),
        consensus_state: Some(any(tm::TM_CONSENSUS_STATE_URL, &tm::consensus_state(&root))),
        signer: relayer.account_id.to_string(),
    };
    let messages = [any(tm::CREATE_CLIENT_URL, &msg)];
    let deposit = devnet::near::ibc::MIN_DEPOSIT_PER_MESSAGE;

    // Without the deposit the contract panics, as near-ibc's deliver does.
    let nonce = access_key_nonce(&client, relayer).await + 1;
    let tx = deliver_tx(&client, relayer, contract, nonce, &messages, deposit - 1).await;
    let outcome = client
        .call(methods::broadcast_tx_commit::RpcBroadcastTxCommitRequest {
            signed_transaction: tx,
        })
        .await
        .expect("broadcast_tx_commit");
    match &outcome.status {
        FinalExecutionStatus::Failure(TxExecutionError::ActionError(e)) => {
            assert_eq!(e.index, Some(0));
            match &e.kind {
                ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(m)) => {
                    assert!(m.contains("Need to attach at least"), "{m}")
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        other => panic!("expected a failure, got {other:?}"),
    }

    // The same nonce again is refused as nearcore does.
    let tx = deliver_tx(&client, relayer, contract, nonce, &messages, deposit).await;
    let err = client
        .call(methods::broadcast_tx_commit::RpcBroadcastTxCommitRequest {
            signed_transaction: tx,
        })
        .await
        .expect_err("reused nonce");
    match err {
        JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
            RpcTransactionError::InvalidTransaction {
                context: InvalidTxError::InvalidNonce { tx_nonce, ak_nonce },
            },
        )) => {
            assert_eq!(tx_nonce, nonce);
            assert_eq!(ak_nonce, nonce);
        }
        other => panic!("expected InvalidNonce, got {other:?}"),
    }

    // With the deposit and a fresh nonce the client is created.
    let tx = deliver_tx(&client, relayer, contract, nonce + 1, &messages, deposit).await;
    let resp = client
        .call(methods::send_tx::RpcSendTransactionRequest {
            signed_transaction: tx,
            wait_until: near_primitives::views::TxExecutionStatus::Final,
        })
        .await
        .expect("send_tx");
    let outcome = resp
        .final_execution_outcome
        .expect("outcome")
        .into_outcome();
    assert!(
        matches!(outcome.status, FinalExecutionStatus::SuccessValue(_)),
        "{:?}",
        outcome.status
    );
    let logs: Vec<&String> = outcome
        .receipts_outcome
        .iter()
        .flat_map(|r| &r.outcome.logs)
        .collect();
    assert!(logs.is_empty(), "no failed message: {logs:?}");
    let exec_height = client
        .call(methods::block::RpcBlockRequest {
            block_reference: BlockReference::BlockId(near_primitives::types::BlockId::Hash(
                outcome.transaction_outcome.block_hash,
            )),
        })
        .await
        .expect("block")
        .header
        .height;

    // View call: the stored client state is the one sent.
    let stored = view(
        &client,
        contract,
        exec_height,
        "get_client_state",
        serde_json::json!({"client_id": "07-tendermint-0"}),
    )
    .await;
    let stored: Vec<u8> = serde_json::from_slice(&stored).expect("byte array");
    let stored = <ibc_proto::google::protobuf::Any as prost::Message>::decode(stored.as_slice())
        .expect("Any");
    assert_eq!(stored.type_url, tm::TM_CLIENT_STATE_URL);
    let cs =
        <ClientState as prost::Message>::decode(stored.value.as_slice()).expect("client state");
    assert_eq!(cs.chain_id, counterparty.id);
    assert_eq!(cs.latest_height, Some(tm::height(&counterparty, h)));

    // view_state with a proof rooted in the next block's chunk, which the next header commits to.
    let path = "clients/07-tendermint-0/clientState";
    let resp = client
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::BlockId(near_primitives::types::BlockId::Height(
                exec_height,
            )),
            request: QueryRequest::ViewState {
                account_id: contract.account_id.clone(),
                prefix: path.as_bytes().to_vec().into(),
                include_proof: true,
            },
        })
        .await
        .expect("view_state");
    let QueryResponseKind::ViewState(state) = resp.kind else {
        panic!("unexpected {:?}", resp.kind);
    };
    assert_eq!(state.values.len(), 1);
    let value: &[u8] = state.values[0].value.as_ref();
    let key: &[u8] = state.values[0].key.as_ref();
    assert_eq!(key, path.as_bytes());
    assert_eq!(value, prost::Message::encode_to_vec(&stored).as_slice());
    near.wait_for_height(exec_height + 1).await;
    let next = client
        .call(methods::block::RpcBlockRequest {
            block_reference: BlockReference::BlockId(near_primitives::types::BlockId::Height(
                exec_height + 1,
            )),
        })
        .await
        .expect("next block");
    let root = next.chunks[0].prev_state_root;
    assert_eq!(next.header.prev_state_root, hash(root.as_ref()));
    let nodes: Vec<Vec<u8>> = state.proof.iter().map(|n| n.to_vec()).collect();
    let trie_key = contract_data_key(&contract.account_id, path.as_bytes());
    let found = lookup_in_proof(&root, &nodes, &trie_key)
        .expect("proof walks")
        .expect("key is present");
    assert_eq!(found.hash, hash(value));
    // The same proof shows that another client does not exist.
    let absent = contract_data_key(&contract.account_id, b"clients/07-tendermint-9/clientState");
    let resp = client
        .call(methods::query::RpcQueryRequest {
            block_reference: BlockReference::BlockId(near_primitives::types::BlockId::Height(
                exec_height,
            )),
            request: QueryRequest::ViewState {
                account_id: contract.account_id.clone(),
                prefix: b"clients/07-tendermint-9/clientState".to_vec().into(),
                include_proof: true,
            },
        })
        .await
        .expect("view_state absent");
    let QueryResponseKind::ViewState(state) = resp.kind else {
        panic!("unexpected kind");
    };
    assert!(state.values.is_empty());
    let nodes: Vec<Vec<u8>> = state.proof.iter().map(|n| n.to_vec()).collect();
    assert_eq!(
        lookup_in_proof(&root, &nodes, &absent).expect("proof walks"),
        None
    );
    // A tampered value does not match the proven hash.
    let _ = base64::engine::general_purpose::STANDARD.encode(value);
    assert_ne!(found.hash, hash(b"tampered"));

    near.shutdown().await;
    cosmos.shutdown().await;
}
