//! `relayd start` between a Cosmos chain and NEAR as an operator runs it: both devnets are separate processes (the
//! `devnet` binary, `devnet near` for NEAR), set up only through relayd's commands (`keys add`, `light init`,
//! `create connection|channel`), and users on each chain send 500 ICS-20 transfers to the other while relayd is
//! SIGKILLed three times mid-stream and restarted. Afterwards nothing is pending on either end, every packet has
//! exactly one record, acknowledged, and the vouchers and escrows on both chains are exactly the amounts sent.
//! (`common/near_process.rs` starts and sets them up.)

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/near_process.rs"]
#[allow(dead_code)]
mod near_process;

use std::time::Duration;

use common::{eventually, log_has};
use near_process::{balance, KeepOnFailure, Stage};
use support::packet::{escrow_address, voucher_denom};

/// Rounds of sending; relayd is SIGKILLed in the middle of every round but the last.
const ROUNDS: usize = 4;
/// Transfers each way per round: 500 each way in all.
const PER_ROUND: usize = 125;
/// What each Cosmos → NEAR transfer carries, in `stake`.
const STAKE_EACH: u128 = 3;
/// What each NEAR → Cosmos transfer carries, in `usdc.devnet`.
const USDC_EACH: u128 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_relaying_survives_three_sigkills_and_every_packet_completes_exactly_once() {
    let kept = KeepOnFailure(Some(tempfile::tempdir().unwrap()));
    let dir = kept.0.as_ref().unwrap();
    let stage = Stage::start(dir.path(), &[]).await;
    let (config, near_id) = (&stage.config, stage.near_id.as_str());
    let (near_user, cosmos_user_address) = (stage.near_user.as_str(), &stage.cosmos_user_address);
    let (cosmos_chan, near_chan) = (&stage.cosmos_chan, &stage.near_chan);
    let near_escrow = stage.near_escrow();
    let near_user_usdc = balance(config, near_id, near_user, "usdc.devnet").await;
    let (stake, usdc) = (
        format!("{STAKE_EACH}stake"),
        format!("{USDC_EACH}usdc.devnet"),
    );
    let mut relayd = None;
    for round in 0..ROUNDS {
        let log = dir.path().join(format!("relayd-{round}.log"));
        let service = common::start(config, &log);
        eventually("relayd started", || async {
            log_has(&log, "relayd started")
        })
        .await;
        // The users send both ways while relayd runs; in every round but the last relayd is SIGKILLed while the
        // sends are still going, so some packets are in flight and some are sent while it is down.
        let send_cosmos = stage.send("ibc-0", &stake, PER_ROUND);
        let send_near = stage.send(near_id, &usdc, PER_ROUND);
        let last = round + 1 == ROUNDS;
        // The last round's service keeps running; the others are killed 400 ms into the sends.
        let crash = async move {
            let mut service = service;
            if last {
                return Some(service);
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
            service.kill().unwrap();
            service.wait().unwrap();
            None
        };
        let ((to_near, to_cosmos), running) =
            tokio::join!(async { tokio::join!(send_cosmos, send_near) }, crash);
        assert_eq!(to_near["receiver"], near_user);
        assert_eq!(to_near["sequences"].as_array().unwrap().len(), PER_ROUND);
        assert_eq!(to_cosmos["receiver"], cosmos_user_address.as_str());
        assert_eq!(to_cosmos["sequences"].as_array().unwrap().len(), PER_ROUND);
        if let Some(service) = running {
            relayd = Some((service, log));
        }
    }
    let (mut service, log) = relayd.unwrap();

    let total = (ROUNDS * PER_ROUND) as u128;
    let near_voucher = format!("transfer/{near_chan}/stake");
    let cosmos_voucher = voucher_denom("transfer", cosmos_chan, "usdc.devnet");
    eventually("every transfer arrives", || async {
        balance(config, near_id, near_user, &near_voucher).await == total * STAKE_EACH
            && balance(config, "ibc-0", cosmos_user_address, &cosmos_voucher).await
                == total * USDC_EACH
    })
    .await;
    stage.wait_nothing_pending().await;
    // Exact escrows on both chains, and the NEAR user paid exactly the usdc sent.
    let cosmos_escrow = escrow_address("transfer", cosmos_chan);
    assert_eq!(
        balance(config, "ibc-0", &cosmos_escrow, "stake").await,
        total * STAKE_EACH
    );
    assert_eq!(
        balance(config, near_id, &near_escrow, "usdc.devnet").await,
        total * USDC_EACH
    );
    assert_eq!(
        balance(config, near_id, near_user, "usdc.devnet").await,
        near_user_usdc - total * USDC_EACH
    );

    // A graceful stop, then exactly once: one record per packet, each acknowledged, none dead-lettered.
    common::stop(&mut service);
    assert!(log_has(&log, "relayd stopped"));
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 2 * ROUNDS * PER_ROUND);
    drop(stage);
}
