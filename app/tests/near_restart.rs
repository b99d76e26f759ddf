//! A NEAR node that dies and comes back while `relayd start` relays between a Cosmos chain and NEAR: the NEAR
//! devnet runs as its own process kept under its home (`devnet near --persist`), is SIGKILLed while transfers both
//! ways are in flight, transfers towards it pile up while it is down, and it starts again from its home on the same
//! address as the same chain (same block hashes, the transactions it had not included gone). relayd must ride it
//! out and finish every packet exactly once: all acknowledged, vouchers and escrows exact on both chains, nothing
//! pending, none dead-lettered. (`common/near_process.rs` starts the devnets and sets them up.)
//!
//! And a NEAR node that goes back: a fresh NEAR devnet with the same chain id answers at the node's address, far
//! below the height relayd followed. relayd must say so (ERROR, `/health`), stop the paths to and from NEAR so
//! nothing is sent to that node, and resume and clear them once the real node is back from its home.

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
use near_process::{balance, devnet, KeepOnFailure, Stage};
use relayd_actors::chain::near::rpc::NearRpc;
use support::packet::{escrow_address, voucher_denom};

/// Transfers each way in each burst.
const BURST: usize = 50;
/// What each Cosmos → NEAR transfer carries, in `stake`.
const STAKE_EACH: u128 = 3;
/// What each NEAR → Cosmos transfer carries, in `usdc.devnet`.
const USDC_EACH: u128 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_near_node_killed_and_restarted_mid_traffic_loses_no_packet() {
    let kept = KeepOnFailure(Some(tempfile::tempdir().unwrap()));
    let dir = kept.0.as_ref().unwrap();
    let mut stage = Stage::start(dir.path(), &["--persist"]).await;
    let (config, near_id) = (stage.config.clone(), stage.near_id.clone());
    let near_user = stage.near_user.clone();
    let near_escrow = stage.near_escrow();
    let near_user_usdc = balance(&config, &near_id, &near_user, "usdc.devnet").await;
    let (stake, usdc) = (
        format!("{STAKE_EACH}stake"),
        format!("{USDC_EACH}usdc.devnet"),
    );
    let near_url = stage.near["rpc_addr"].as_str().unwrap().to_owned();
    let near_rpc = NearRpc::new(&near_id, &near_url);
    let vouched = near_rpc.block(Some(5)).await.unwrap().header.hash;

    let log = dir.path().join("relayd.log");
    let mut service = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;

    // A first burst both ways; then, while the next burst towards NEAR is being sent and relayd is still
    // relaying the first, the NEAR node is SIGKILLed.
    let (to_near, to_cosmos) = tokio::join!(
        stage.send("ibc-0", &stake, BURST),
        stage.send(&near_id, &usdc, BURST)
    );
    assert_eq!(to_near["sequences"].as_array().unwrap().len(), BURST);
    assert_eq!(to_cosmos["sequences"].as_array().unwrap().len(), BURST);
    let near_pid = stage.near_process.child.id().to_string();
    let kill = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Whatever relayd had sent and the node had not put in a block is gone with it.
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &near_pid])
            .status()
            .unwrap();
        assert!(killed.success());
    };
    let (to_near, ()) = tokio::join!(stage.send("ibc-0", &stake, BURST), kill);
    assert_eq!(to_near["sequences"].as_array().unwrap().len(), BURST);
    stage.near_process.child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        service.try_wait().unwrap().is_none(),
        "relayd exited while the NEAR node was away"
    );

    // The node starts again from its home on the same address, as the same chain.
    let near_addr = near_url.trim_start_matches("http://");
    let near_home = stage.near_home.to_str().unwrap().to_owned();
    stage.near_process = devnet(
        &[
            "near",
            "--persist",
            "--rpc-addr",
            near_addr,
            "--block-time",
            "200ms",
            "--epoch-length",
            "20",
            "--home",
            &near_home,
        ],
        &dir.path().join("devnet-near-restarted.log"),
    );
    assert_eq!(
        near_rpc.block(Some(5)).await.unwrap().header.hash,
        vouched,
        "the restarted node is another chain"
    );
    assert!(log_has(
        &dir.path().join("devnet-near-restarted.log"),
        "replayed the stored chain"
    ));
    // relayd saw the node go.
    assert!(log_has(&log, "NEAR monitor request failed"));

    // A last burst both ways after the restart.
    let (to_near, to_cosmos) = tokio::join!(
        stage.send("ibc-0", &stake, BURST),
        stage.send(&near_id, &usdc, BURST)
    );
    assert_eq!(to_near["sequences"].as_array().unwrap().len(), BURST);
    assert_eq!(to_cosmos["sequences"].as_array().unwrap().len(), BURST);

    let (sent_to_near, sent_to_cosmos) = (3 * BURST as u128, 2 * BURST as u128);
    let near_voucher = format!("transfer/{}/stake", stage.near_chan);
    let cosmos_voucher = voucher_denom("transfer", &stage.cosmos_chan, "usdc.devnet");
    let cosmos_user = stage.cosmos_user_address.clone();
    eventually("every transfer arrives", || async {
        balance(&config, &near_id, &near_user, &near_voucher).await == sent_to_near * STAKE_EACH
            && balance(&config, "ibc-0", &cosmos_user, &cosmos_voucher).await
                == sent_to_cosmos * USDC_EACH
    })
    .await;
    stage.wait_nothing_pending().await;
    // Exact escrows on both chains, and the NEAR user paid exactly the usdc sent.
    let cosmos_escrow = escrow_address("transfer", &stage.cosmos_chan);
    assert_eq!(
        balance(&config, "ibc-0", &cosmos_escrow, "stake").await,
        sent_to_near * STAKE_EACH
    );
    assert_eq!(
        balance(&config, &near_id, &near_escrow, "usdc.devnet").await,
        sent_to_cosmos * USDC_EACH
    );
    assert_eq!(
        balance(&config, &near_id, &near_user, "usdc.devnet").await,
        near_user_usdc - sent_to_cosmos * USDC_EACH
    );

    // A graceful stop, then exactly once: one record per packet, each acknowledged, none dead-lettered.
    common::stop(&mut service);
    assert!(log_has(&log, "relayd stopped"));
    common::assert_each_acknowledged_once(
        &dir.path().join("data/state"),
        (sent_to_near + sent_to_cosmos) as usize,
    );
    drop(stage);
}

async fn health(base: &str) -> Option<serde_json::Value> {
    let resp = reqwest::get(format!("{base}/health")).await.ok()?;
    resp.json().await.ok()
}

fn chain_health<'a>(h: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    h["chains"].as_array()?.iter().find(|c| c["chain"] == id)
}

/// `devnet near` on `addr` with its home at `home`, kept there with `--persist` when `persist`.
fn near_devnet(
    addr: &str,
    home: &std::path::Path,
    persist: bool,
    log: &std::path::Path,
) -> near_process::Devnet {
    let home = home.to_str().unwrap();
    let mut args = vec![
        "near",
        "--rpc-addr",
        addr,
        "--block-time",
        "200ms",
        "--epoch-length",
        "20",
        "--home",
        home,
    ];
    if persist {
        args.push("--persist");
    }
    devnet(&args, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_near_node_that_went_back_stops_its_paths_until_the_real_one_returns() {
    let kept = KeepOnFailure(Some(tempfile::tempdir().unwrap()));
    let dir = kept.0.as_ref().unwrap();
    let mut stage = Stage::start(dir.path(), &["--persist"]).await;
    let (config, near_id) = (stage.config.clone(), stage.near_id.clone());
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[admin]\nlisten_addr = \"127.0.0.1:{admin_port}\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    let base = format!("http://127.0.0.1:{admin_port}");
    let near_user = stage.near_user.clone();
    let near_voucher = format!("transfer/{}/stake", stage.near_chan);
    let stake = format!("{STAKE_EACH}stake");
    let near_url = stage.near["rpc_addr"].as_str().unwrap().to_owned();
    let near_addr = near_url.trim_start_matches("http://").to_owned();

    let log = dir.path().join("relayd.log");
    let mut service = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    stage.send("ibc-0", &stake, 20).await;
    eventually("the first transfers relayed", || async {
        balance(&config, &near_id, &near_user, &near_voucher).await == 20 * STAKE_EACH
    })
    .await;

    // The real node goes; a fresh NEAR chain with its id (new keys, low heights) answers at its address.
    stage.near_process.child.kill().unwrap();
    stage.near_process.child.wait().unwrap();
    let impostor = near_devnet(
        &near_addr,
        &dir.path().join("impostor"),
        false,
        &dir.path().join("devnet-impostor.log"),
    );
    eventually("/health says NEAR is not consistent", || async {
        health(&base).await.is_some_and(|h| {
            chain_health(&h, &near_id).is_some_and(|c| {
                c["consistent"] == false && c["ready"] == false && c["reason"].is_string()
            }) && h["ready"] == false
        })
    })
    .await;
    assert!(log_has(
        &log,
        "the node is not consistent with what relayd followed; its paths stop"
    ));
    // Transfers towards NEAR wait meanwhile.
    stage.send("ibc-0", &stake, 20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(impostor);

    // The real node is back from its home, with every block it had: the paths resume and what waited is cleared.
    stage.near_process = near_devnet(
        &near_addr,
        &stage.near_home,
        true,
        &dir.path().join("devnet-near-restarted.log"),
    );
    eventually(
        "the waiting transfers relayed once NEAR is consistent again",
        || async { balance(&config, &near_id, &near_user, &near_voucher).await == 40 * STAKE_EACH },
    )
    .await;
    eventually("/health says NEAR is consistent and ready", || async {
        health(&base).await.is_some_and(|h| {
            chain_health(&h, &near_id)
                .is_some_and(|c| c["consistent"] == true && c["ready"] == true)
        })
    })
    .await;
    assert!(log_has(
        &log,
        "the node is consistent again with what relayd followed"
    ));
    stage.wait_nothing_pending().await;
    common::stop(&mut service);
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 40);
    drop(stage);
}
