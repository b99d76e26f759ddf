//! Tests through the real path: signed txs, begin_block/deliver_tx/commit, abci queries.

use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::proto::cosmos::bank::v1beta1::{MsgSend, QueryBalanceRequest, QueryBalanceResponse};
use cosmrs::tx::{Body, Fee, SignDoc, SignerInfo};
use prost::Message;
use rand::RngCore;
use tendermint::abci::types::ExecTxResult;

use super::*;
use crate::genesis::{GenesisOptions, DENOM};

mod ibc_handlers;

fn genesis() -> Genesis {
    Genesis::build(&GenesisOptions {
        seed: Some("app-tests".into()),
        ..Default::default()
    })
    .unwrap()
}

fn header(g: &Genesis, height: u64, app_hash: Vec<u8>) -> tendermint::block::Header {
    let vals = g.validator_set();
    tendermint::block::Header {
        version: tendermint::block::header::Version { block: 11, app: 0 },
        chain_id: g.chain_id.clone(),
        height: height.try_into().unwrap(),
        time: (g.genesis_time + std::time::Duration::from_secs(height)).unwrap(),
        last_block_id: None,
        last_commit_hash: None,
        data_hash: None,
        validators_hash: vals.hash(),
        next_validators_hash: vals.hash(),
        consensus_hash: tendermint::Hash::None,
        app_hash: tendermint::AppHash::try_from(app_hash).unwrap(),
        last_results_hash: None,
        evidence_hash: None,
        proposer_address: vals.validators()[0].address,
    }
}

fn run_block(app: &mut App, g: &Genesis, txs: &[Vec<u8>]) -> (Vec<ExecTxResult>, Vec<u8>) {
    let h = app.last_committed_height() + 1;
    app.begin_block(&header(g, h, app.last_app_hash()));
    let res = txs.iter().map(|t| app.deliver_tx(t)).collect();
    let hash = app.commit();
    (res, hash)
}

struct TxOpts {
    sequence: u64,
    account_number: u64,
    chain_id: String,
    fee: u128,
    gas: u64,
}

fn sign(key: &SigningKey, msgs: Vec<cosmrs::Any>, o: &TxOpts) -> Vec<u8> {
    let body = Body::new(msgs, "", 0u32);
    let auth = SignerInfo::single_direct(Some(key.public_key()), o.sequence).auth_info(
        Fee::from_amount_and_gas(
            cosmrs::Coin {
                denom: DENOM.parse().unwrap(),
                amount: o.fee,
            },
            o.gas,
        ),
    );
    SignDoc::new(&body, &auth, &o.chain_id.parse().unwrap(), o.account_number)
        .unwrap()
        .sign(key)
        .unwrap()
        .to_bytes()
        .unwrap()
}

fn send_msg(from: &str, to: &str, amount: u128) -> cosmrs::Any {
    cosmrs::Any {
        type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
        value: MsgSend {
            from_address: from.into(),
            to_address: to.into(),
            amount: vec![cosmrs::proto::cosmos::base::v1beta1::Coin {
                denom: DENOM.into(),
                amount: amount.to_string(),
            }],
        }
        .encode_to_vec(),
    }
}

fn opts(g: &Genesis, sequence: u64, account_number: u64) -> TxOpts {
    TxOpts {
        sequence,
        account_number,
        chain_id: g.chain_id.to_string(),
        fee: 1_000,
        gas: 200_000,
    }
}

#[test]
fn genesis_accounts_numbered_in_order() {
    let g = genesis();
    let app = App::new(&g).unwrap();
    for (i, a) in g.accounts.iter().enumerate() {
        assert_eq!(app.account(&a.address), Some((i as u64, 0)));
        assert_eq!(app.balance(&a.address, DENOM), a.coins[0].1);
    }
    assert_eq!(app.last_committed_height(), 0);
    assert_eq!(app.last_app_hash().len(), 32);
}

#[test]
fn bank_send_moves_funds_charges_fee_and_creates_account() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let from = &g.accounts[0];
    let fresh = super::auth::address_of(&[7u8; 20]);
    let tx = sign(
        &from.signing_key(),
        vec![send_msg(&from.address, &fresh, 500)],
        &opts(&g, 0, 0),
    );
    let before = app.balance(&from.address, DENOM);
    let hash0 = app.last_app_hash();
    let (res, hash1) = run_block(&mut app, &g, &[tx]);
    assert!(res[0].code.is_ok(), "{}", res[0].log);
    assert!(res[0].gas_used > 0 && res[0].gas_used <= res[0].gas_wanted);
    assert_ne!(hash0, hash1);
    assert_eq!(app.balance(&fresh, DENOM), 500);
    assert_eq!(app.balance(&from.address, DENOM), before - 500 - 1_000);
    assert_eq!(app.account(&from.address), Some((0, 1)));
    // Genesis accounts, then the fee collector (created at genesis), then first-time recipients.
    assert_eq!(
        app.account(&super::exec::fee_collector()),
        Some((g.accounts.len() as u64, 0))
    );
    assert_eq!(app.account(&fresh), Some((g.accounts.len() as u64 + 1, 0)));
    let kinds: Vec<_> = res[0].events.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"message") && kinds.contains(&"transfer") && kinds.contains(&"tx"));
}

#[test]
fn sequence_mismatch_is_code_32_with_sdk_text() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[1];
    let tx = sign(
        &a.signing_key(),
        vec![send_msg(&a.address, &a.address, 1)],
        &opts(&g, 3, 1),
    );
    let (res, _) = run_block(&mut app, &g, std::slice::from_ref(&tx));
    assert_eq!(res[0].code.value(), 32);
    assert_eq!(
        res[0].log,
        "account sequence mismatch, expected 0, got 3: incorrect account sequence"
    );
    let c = app.check_tx(&tx);
    assert_eq!(c.code.value(), 32);
    assert_eq!(app.account(&a.address), Some((1, 0)));
}

#[test]
fn bad_signature_is_code_4() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    let mut o = opts(&g, 0, 0);
    o.chain_id = "other-chain".into();
    let tx = sign(
        &a.signing_key(),
        vec![send_msg(&a.address, &a.address, 1)],
        &o,
    );
    let (res, _) = run_block(&mut app, &g, &[tx]);
    assert_eq!(res[0].code.value(), 4);
    assert_eq!(
        res[0].log,
        format!(
            "signature verification failed; please verify account number (0) and chain-id ({}): unauthorized",
            g.chain_id
        )
    );
    assert_eq!(app.account(&a.address), Some((0, 0)));
}

#[test]
fn foreign_message_signer_is_code_4() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    let b = &g.accounts[1];
    let tx = sign(
        &a.signing_key(),
        vec![send_msg(&b.address, &a.address, 1)],
        &opts(&g, 0, 0),
    );
    let (res, _) = run_block(&mut app, &g, &[tx]);
    assert_eq!(res[0].code.value(), 4);
    assert!(res[0].log.ends_with(": unauthorized"));
}

#[test]
fn insufficient_fee_is_code_13_in_check_tx() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    let mut o = opts(&g, 0, 0);
    o.fee = 10;
    let tx = sign(
        &a.signing_key(),
        vec![send_msg(&a.address, &a.address, 1)],
        &o,
    );
    let c = app.check_tx(&tx);
    assert_eq!(c.code.value(), 13);
    assert_eq!(
        c.log,
        "insufficient fees; got: 10stake required: 200stake: insufficient fee"
    );
}

#[test]
fn fee_payer_without_funds_is_code_5() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    let mut o = opts(&g, 0, 0);
    o.fee = crate::genesis::GENESIS_BALANCE + 1;
    let tx = sign(
        &a.signing_key(),
        vec![send_msg(&a.address, &a.address, 1)],
        &o,
    );
    assert_eq!(app.check_tx(&tx).code.value(), 5);
    let (res, _) = run_block(&mut app, &g, &[tx]);
    assert_eq!(res[0].code.value(), 5);
}

#[test]
fn out_of_gas_is_code_11_and_keeps_fee_when_messages_run_out() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    // Too little for the tx bytes: nothing happens.
    let mut o = opts(&g, 0, 0);
    o.gas = 1_000;
    let tx = sign(
        &a.signing_key(),
        vec![send_msg(&a.address, &a.address, 1)],
        &o,
    );
    let (res, _) = run_block(&mut app, &g, &[tx]);
    assert_eq!(res[0].code.value(), 11);
    assert!(res[0]
        .log
        .starts_with("out of gas in location: txSize; gasWanted: 1000, gasUsed: "));
    assert!(res[0].log.ends_with(": out of gas"));
    assert_eq!(app.account(&a.address), Some((0, 0)));
    // Enough for the ante handler, not for the message: fee paid, sequence used, send reverted.
    let fresh = super::auth::address_of(&[9u8; 20]);
    let probe = sign(
        &a.signing_key(),
        vec![send_msg(&a.address, &fresh, 5)],
        &opts(&g, 0, 0),
    );
    let (full, _) = app.simulate(&probe).unwrap();
    let mut o = opts(&g, 0, 0);
    // The message alone costs more than 3000 (flat 5000), the ante handler fits.
    o.gas = full - 3_000;
    let before = app.balance(&a.address, DENOM);
    let tx = sign(&a.signing_key(), vec![send_msg(&a.address, &fresh, 5)], &o);
    let (res, _) = run_block(&mut app, &g, &[tx]);
    assert_eq!(res[0].code.value(), 11, "{}", res[0].log);
    assert_eq!(res[0].gas_wanted as u64, full - 3_000);
    assert!(res[0].gas_used as u64 > full - 3_000);
    assert_eq!(app.account(&a.address), Some((0, 1)));
    assert_eq!(app.balance(&a.address, DENOM), before - 1_000);
    assert_eq!(app.balance(&fresh, DENOM), 0);
    assert_eq!(app.account(&fresh), None);
}

#[test]
fn failing_message_reverts_all_messages_of_the_tx() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    let fresh = super::auth::address_of(&[3u8; 20]);
    let tx = sign(
        &a.signing_key(),
        vec![
            send_msg(&a.address, &fresh, 10),
            send_msg(&a.address, &fresh, u128::MAX / 2),
        ],
        &opts(&g, 0, 0),
    );
    let before = app.balance(&a.address, DENOM);
    let (res, _) = run_block(&mut app, &g, &[tx]);
    assert_eq!(res[0].code.value(), 5);
    assert!(res[0]
        .log
        .starts_with("failed to execute message; message index: 1: "));
    assert_eq!(app.balance(&fresh, DENOM), 0);
    assert_eq!(app.balance(&a.address, DENOM), before - 1_000);
    assert_eq!(app.account(&a.address), Some((0, 1)));
}

#[test]
fn check_tx_tracks_sequences_until_commit() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    let key = a.signing_key();
    let t0 = sign(
        &key,
        vec![send_msg(&a.address, &a.address, 1)],
        &opts(&g, 0, 0),
    );
    let t1 = sign(
        &key,
        vec![send_msg(&a.address, &a.address, 1)],
        &opts(&g, 1, 0),
    );
    assert!(app.check_tx(&t0).code.is_ok());
    assert!(app.check_tx(&t1).code.is_ok());
    let again = app.check_tx(&t0);
    assert_eq!(again.code.value(), 32);
    assert_eq!(
        again.log,
        "account sequence mismatch, expected 2, got 0: incorrect account sequence"
    );
    let (res, _) = run_block(&mut app, &g, &[t0, t1]);
    assert!(res.iter().all(|r| r.code.is_ok()));
    assert_eq!(app.account(&a.address), Some((0, 2)));
    let t2 = sign(
        &key,
        vec![send_msg(&a.address, &a.address, 1)],
        &opts(&g, 2, 0),
    );
    assert!(app.check_tx(&t2).code.is_ok());
}

#[test]
fn simulate_reports_gas_without_changing_state() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    let fresh = super::auth::address_of(&[4u8; 20]);
    let tx = sign(
        &a.signing_key(),
        vec![send_msg(&a.address, &fresh, 10)],
        &opts(&g, 0, 0),
    );
    let (gas, events) = app.simulate(&tx).unwrap();
    assert!(gas > 0 && !events.is_empty());
    assert_eq!(app.account(&fresh), None);
    let (res, _) = run_block(&mut app, &g, &[tx]);
    assert_eq!(res[0].gas_used as u64, gas);
}

#[test]
fn balance_and_account_grpc_queries() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let a = &g.accounts[0];
    let tx = sign(
        &a.signing_key(),
        vec![send_msg(&a.address, &a.address, 1)],
        &opts(&g, 0, 0),
    );
    run_block(&mut app, &g, &[tx]);
    let q = app.query(
        "/cosmos.bank.v1beta1.Query/Balance",
        &QueryBalanceRequest {
            address: a.address.clone(),
            denom: DENOM.into(),
        }
        .encode_to_vec(),
        0,
        false,
    );
    assert!(q.code.is_ok(), "{}", q.log);
    let b = QueryBalanceResponse::decode(q.value.as_ref()).unwrap();
    assert_eq!(
        b.balance.unwrap().amount,
        (crate::genesis::GENESIS_BALANCE - 1_000).to_string()
    );
    let q = app.query(
        "/cosmos.auth.v1beta1.Query/Account",
        &cosmrs::proto::cosmos::auth::v1beta1::QueryAccountRequest {
            address: a.address.clone(),
        }
        .encode_to_vec(),
        0,
        false,
    );
    assert!(q.code.is_ok(), "{}", q.log);
    let resp = cosmrs::proto::cosmos::auth::v1beta1::QueryAccountResponse::decode(q.value.as_ref())
        .unwrap();
    let any = resp.account.unwrap();
    assert_eq!(any.type_url, "/cosmos.auth.v1beta1.BaseAccount");
    let acc =
        cosmrs::proto::cosmos::auth::v1beta1::BaseAccount::decode(any.value.as_slice()).unwrap();
    assert_eq!((acc.account_number, acc.sequence), (0, 1));
    assert!(acc.pub_key.is_some());

    let q = app.query("/cosmos.staking.v1beta1.Query/Params", &[], 0, false);
    assert!(q.code.is_ok());
    let p = cosmrs::proto::cosmos::staking::v1beta1::QueryParamsResponse::decode(q.value.as_ref())
        .unwrap();
    assert_eq!(
        p.params.unwrap().unbonding_time.unwrap().seconds as u64,
        g.unbonding_period.as_secs()
    );

    // ibc-go answers the connection parameters in nanoseconds; Hermes compares them with its max_block_time.
    let q = app.query(
        "/ibc.core.connection.v1.Query/ConnectionParams",
        &[],
        0,
        false,
    );
    assert!(q.code.is_ok(), "{}", q.log);
    let p = ibc_proto::ibc::core::connection::v1::QueryConnectionParamsResponse::decode(
        q.value.as_ref(),
    )
    .unwrap();
    assert_eq!(
        p.params.unwrap().max_expected_time_per_block,
        std::time::Duration::from_secs(
            ibc_testkit::testapp::ibc::core::types::DEFAULT_BLOCK_TIME_SECS
        )
        .as_nanos() as u64
    );

    let q = app.query("/no.such.Service/Method", &[], 0, false);
    assert_eq!(q.code.value(), 6);
    let q = app.query("store/ibc/key", b"x", 99, false);
    assert_eq!(q.code.value(), 26);
}

#[test]
fn malformed_inputs_never_panic() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let mut rng = rand::thread_rng();
    let paths = [
        "store/ibc/key",
        "/cosmos.bank.v1beta1.Query/Balance",
        "/cosmos.bank.v1beta1.Query/AllBalances",
        "/cosmos.auth.v1beta1.Query/Account",
        "/cosmos.tx.v1beta1.Service/Simulate",
        "/ibc.core.client.v1.Query/ClientState",
        "/ibc.core.client.v1.Query/ConsensusState",
        "/ibc.core.client.v1.Query/ConsensusStateHeights",
        "/ibc.core.connection.v1.Query/Connection",
        "/ibc.core.connection.v1.Query/ClientConnections",
        "/ibc.core.connection.v1.Query/ConnectionParams",
        "/ibc.core.channel.v1.Query/Channel",
        "/ibc.core.channel.v1.Query/PacketCommitments",
        "/ibc.core.channel.v1.Query/UnreceivedPackets",
        "/ibc.core.channel.v1.Query/UnreceivedAcks",
        "/ibc.core.channel.v1.Query/PacketAcknowledgements",
        "/ibc.core.channel.v1.Query/NextSequenceReceive",
        "",
        "\u{0}garbage",
    ];
    app.begin_block(&header(&g, 1, app.last_app_hash()));
    for i in 0..300 {
        let mut buf = vec![0u8; (i * 7) % 200];
        rng.fill_bytes(&mut buf);
        let c = app.check_tx(&buf);
        let d = app.deliver_tx(&buf);
        if !buf.is_empty() {
            assert!(c.code.is_err() && d.code.is_err());
        }
        for p in paths {
            let _ = app.query(p, &buf, 0, true);
            let _ = app.query(p, &buf, u64::MAX, true);
        }
        let _ = app.simulate(&buf);
    }
    app.commit();
    assert_eq!(app.last_committed_height(), 1);
}
