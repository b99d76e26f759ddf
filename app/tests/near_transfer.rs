//! ICS-20 transfers between a Cosmos devnet chain and a NEAR devnet relayed by `relayd start`, both ways, as an
//! operator runs it: `relayd light init` vouches for a NEAR block, `create connection` and `create channel` open a
//! transfer channel, the configuration names the path, and `relayd tx transfer` sends from each end (from the Cosmos
//! key, and through the NEAR contract's `deliver` from the NEAR signer). Every packet is judged where it lands:
//! ibc-0's 12-near client checks the NEAR state proofs of the sends and acknowledgements, the NEAR contract's
//! Tendermint client checks ibc-0's. The balances are read with `relayd query balance`, the queues with `relayd
//! query packet pending`, on both ends.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/near_pair.rs"]
#[allow(dead_code)]
mod near_pair;

#[path = "common/near_route.rs"]
#[allow(dead_code)]
mod near_route;

use std::time::Duration;

use near_pair::NearPair;
use near_route::{amount, balance, configure, open_route, ShowLog};
use relayd_actors::chain::near::rpc::NearRpc;
use support::packet::{escrow_address, voucher_denom};

use common::eventually;

const BLOCK_TIME: Duration = Duration::from_millis(200);
/// Transfers each way.
const COUNT: u32 = 12;
/// What each Cosmos → NEAR transfer carries, in `stake`.
const STAKE_EACH: u128 = 100;
/// What each NEAR → Cosmos transfer carries, in `usdc.devnet` (a NEAR-native token of the devnet's ledger).
const USDC_EACH: u128 = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_between_cosmos_and_near_are_relayed_both_ways_with_exact_balances() {
    let pair = NearPair::start(BLOCK_TIME, 20).await;
    pair.vouch(5).await;
    let route = open_route(&pair).await;
    configure(&pair, &route);
    let near_id = pair.near_id.clone();
    let (cosmos_chan, near_chan) = (route.cosmos.2.clone(), route.near.2.clone());
    let near_relayer = pair.near.genesis.relayer.account_id.to_string();
    let cosmos_relayer = pair.cosmos[0]
        .genesis
        .account("relayer")
        .unwrap()
        .address
        .clone();
    let near_voucher = format!("transfer/{near_chan}/stake");
    let cosmos_voucher = voucher_denom("transfer", &cosmos_chan, "usdc.devnet");
    let before_near = pair.json(&["query", "balance", "--chain", &near_id]).await;
    let near_usdc_before = amount(&before_near, "usdc.devnet");

    let log = pair.dir.path().join("relayd.log");
    let mut relayd = common::start(&pair.config, &log);
    let _show = ShowLog(log.clone());

    // Sends from each end while relayd runs: from ibc-0's key to NEAR's signer, from NEAR's signer (through
    // `deliver`) to ibc-0's key; the receivers are the defaults, the relayer's own account on the other end.
    let count = COUNT.to_string();
    let sent = pair
        .json(&[
            "tx",
            "transfer",
            "--src-chain",
            "ibc-0",
            "--dst-chain",
            &near_id,
            "--channel",
            &cosmos_chan,
            "--amount",
            &format!("{STAKE_EACH}stake"),
            "--count",
            &count,
        ])
        .await;
    assert_eq!(sent["receiver"], near_relayer.as_str());
    assert_eq!(sent["sequences"].as_array().unwrap().len(), COUNT as usize);
    let sent = pair
        .json(&[
            "tx",
            "transfer",
            "--src-chain",
            &near_id,
            "--dst-chain",
            "ibc-0",
            "--channel",
            &near_chan,
            "--amount",
            &format!("{USDC_EACH}usdc.devnet"),
            "--count",
            &count,
        ])
        .await;
    assert_eq!(sent["receiver"], cosmos_relayer.as_str());
    let sequences: Vec<u64> = sent["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=u64::from(COUNT)).collect::<Vec<_>>());

    // Received on both ends, read with `query balance`.
    let stake_total = STAKE_EACH * u128::from(COUNT);
    let usdc_total = USDC_EACH * u128::from(COUNT);
    eventually("the vouchers arrive on both ends", || async {
        balance(&pair, &near_id, None, &near_voucher).await == stake_total
            && balance(&pair, "ibc-0", None, &cosmos_voucher).await == usdc_total
    })
    .await;
    // Acknowledged on both ends: nothing pending either way.
    for (chain, channel) in [("ibc-0", &cosmos_chan), (near_id.as_str(), &near_chan)] {
        eventually(&format!("{chain}'s packets are acknowledged"), || async {
            let doc = pair
                .json(&["query", "packet", "pending", chain, "transfer", channel])
                .await;
            doc["unreceived_packets"] == serde_json::json!([])
                && doc["unrelayed_acks"] == serde_json::json!([])
        })
        .await;
    }

    // Exact escrows: ibc-0's channel escrow holds the stake sent, NEAR's the usdc sent; NEAR's sender paid exactly
    // the usdc sent (NEAR gas is paid in NEAR, not in ledger tokens).
    let cosmos_escrow = escrow_address("transfer", &cosmos_chan);
    assert_eq!(
        balance(&pair, "ibc-0", Some(&cosmos_escrow), "stake").await,
        stake_total
    );
    let near_escrow = format!("{near_chan}.transfer.escrow.{}", pair.contract);
    assert_eq!(
        balance(&pair, &near_id, Some(&near_escrow), "usdc.devnet").await,
        usdc_total
    );
    let after_near = pair.json(&["query", "balance", "--chain", &near_id]).await;
    assert_eq!(
        amount(&after_near, "usdc.devnet"),
        near_usdc_before - usdc_total
    );
    assert_eq!(amount(&after_near, &near_voucher), stake_total);

    relayd.kill().unwrap();
    relayd.wait().unwrap();
    pair.near.shutdown().await;
}

/// Transfers sent from both ends while relayd is down, cleared when it starts:
/// - Cosmos → NEAR transfers that time out by NEAR height: relayd proves their absent receipts from NEAR state
///   (judged by ibc-0's 12-near client) and the escrow comes back exactly, with no voucher minted on NEAR;
/// - NEAR → Cosmos transfers, found through the contract's event history (NEAR has no transaction index): those
///   still in time are received on ibc-0, those past their timestamp are timed out on NEAR with a proof of absence
///   from ibc-0 (judged by the contract's Tendermint client) and refunded exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_sent_while_relayd_is_down_are_cleared_on_start_and_timeouts_refunded_exactly() {
    let pair = NearPair::start(BLOCK_TIME, 20).await;
    pair.vouch(5).await;
    let route = open_route(&pair).await;
    configure(&pair, &route);
    let near_id = pair.near_id.clone();
    let (cosmos_chan, near_chan) = (route.cosmos.2.clone(), route.near.2.clone());
    let near_voucher = format!("transfer/{near_chan}/stake");
    let cosmos_escrow = escrow_address("transfer", &cosmos_chan);
    let near_usdc_before = balance(&pair, &near_id, None, "usdc.devnet").await;

    // With relayd stopped: three sends to NEAR that time out soon.
    let sent = pair
        .json(&[
            "tx",
            "transfer",
            "--src-chain",
            "ibc-0",
            "--dst-chain",
            &near_id,
            "--channel",
            &cosmos_chan,
            "--amount",
            "100stake",
            "--count",
            "3",
            "--timeout-height-offset",
            "3",
        ])
        .await;
    assert_eq!(sent["sequences"].as_array().unwrap().len(), 3);
    assert_eq!(
        balance(&pair, "ibc-0", Some(&cosmos_escrow), "stake").await,
        300
    );

    // From NEAR: four transfers in time, and three whose timestamp passes on ibc-0 before relayd starts.
    let near_send = |count: &'static str, timeout: &'static str| {
        let (near_id, near_chan) = (near_id.clone(), near_chan.clone());
        let pair = &pair;
        async move {
            let doc = pair
                .json(&[
                    "tx",
                    "transfer",
                    "--src-chain",
                    &near_id,
                    "--dst-chain",
                    "ibc-0",
                    "--channel",
                    &near_chan,
                    "--amount",
                    &format!("{USDC_EACH}usdc.devnet"),
                    "--count",
                    count,
                    "--timeout-seconds",
                    timeout,
                ])
                .await;
            doc["sequences"].as_array().unwrap().len()
        }
    };
    assert_eq!(near_send("4", "600").await, 4);
    assert_eq!(near_send("3", "2").await, 3);
    let near_escrow = format!("{near_chan}.transfer.escrow.{}", pair.contract);
    assert_eq!(
        balance(&pair, &near_id, Some(&near_escrow), "usdc.devnet").await,
        7 * USDC_EACH
    );

    // The deadlines pass: NEAR moves well past the height, ibc-0's clock past the timestamps.
    let rpc = NearRpc::new(&near_id, &pair.near.rpc_url());
    let deadline = rpc.block(None).await.unwrap().header.height + 8;
    pair.near.wait_for_height(deadline).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let log = pair.dir.path().join("relayd.log");
    let mut relayd = common::start(&pair.config, &log);
    let _show = ShowLog(log.clone());
    eventually("the escrow is refunded", || async {
        balance(&pair, "ibc-0", Some(&cosmos_escrow), "stake").await == 0
    })
    .await;
    let doc = pair
        .json(&[
            "query",
            "packet",
            "pending",
            "ibc-0",
            "transfer",
            &cosmos_chan,
        ])
        .await;
    assert_eq!(doc["unreceived_packets"], serde_json::json!([]));
    assert_eq!(doc["counterparty"]["chain"], near_id.as_str());
    // NEAR's sends: four received on ibc-0, three refunded on NEAR, so exactly four stay escrowed and spent.
    let cosmos_voucher = voucher_denom("transfer", &cosmos_chan, "usdc.devnet");
    eventually("NEAR's transfers in time arrive on ibc-0", || async {
        balance(&pair, "ibc-0", None, &cosmos_voucher).await == 4 * USDC_EACH
    })
    .await;
    eventually("NEAR's timed-out transfers are refunded", || async {
        balance(&pair, &near_id, Some(&near_escrow), "usdc.devnet").await == 4 * USDC_EACH
    })
    .await;
    eventually("nothing is pending on NEAR's end", || async {
        let doc = pair
            .json(&[
                "query", "packet", "pending", &near_id, "transfer", &near_chan,
            ])
            .await;
        doc["unreceived_packets"] == serde_json::json!([])
            && doc["unrelayed_acks"] == serde_json::json!([])
    })
    .await;
    let near_relayer = pair.near.genesis.relayer.account_id.to_string();
    assert_eq!(
        balance(&pair, &near_id, Some(&near_relayer), "usdc.devnet").await,
        near_usdc_before - 4 * USDC_EACH
    );
    // Nothing was received on NEAR; its ledger tokens did not move.
    assert_eq!(
        balance(&pair, &near_id, Some(&near_relayer), &near_voucher).await,
        0
    );
    relayd.kill().unwrap();
    relayd.wait().unwrap();
    pair.near.shutdown().await;
}
