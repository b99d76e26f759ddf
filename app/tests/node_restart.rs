//! A chain node that goes away and comes back while `relayd start` relays: one of two devnet chains (kept under
//! its home with `persist`) is stopped mid-stream, transfers pile up towards it while it is down, and it starts
//! again on the same home and ports with its mempool gone. relayd must notice, retry and finish every packet exactly
//! once: all acknowledged, vouchers and escrow exact, nothing pending, no packet failed or dead-lettered.
//!
//! And a node that goes back: another chain with the same id answers at ibc-1's address, from height 1. relayd
//! must say so (ERROR, `/health`), stop the paths to and from ibc-1 so nothing is sent to that node, and resume and
//! clear them once the real node is back.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::time::Duration;

use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::store::StateStore;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{escrow_address, transfers, voucher_denom, TRANSFER_PORT};

use common::{add_keys, eventually, log_has};

fn options(home: &Path, id: &str) -> devnet::ChainOptions {
    let mut opts = devnet::ChainOptions::local(id, Duration::from_millis(200));
    opts.home = Some(home.join(id));
    opts.persist = true;
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_and_restarted_mid_stream_loses_no_packet() {
    let homes = tempfile::tempdir().unwrap();
    let mut chains = vec![
        devnet::start_chain(options(homes.path(), "ibc-0"))
            .await
            .unwrap(),
        devnet::start_chain(options(homes.path(), "ibc-1"))
            .await
            .unwrap(),
    ];
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = support::relayd::write(dir.path(), &chains, &a.channel_id);
    add_keys(&config, &keys);

    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let escrow = escrow_address(TRANSFER_PORT, &a.channel_id);
    let escrow_before = a.chain.balance(&escrow, "stake").await;
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let amount = 3u128;

    let log = dir.path().join("relayd.log");
    let mut relayd = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    transfers(&a, &u1, &u2.address, amount, 100, 50, timeout).await;
    transfers(&b, &u2, &u1.address, amount, 100, 50, timeout).await;
    // Mid-stream: ibc-1's node goes away with whatever relayd had in its mempool.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut restart = options(homes.path(), "ibc-1");
    restart.rpc_addr = chains[1].rpc_addr;
    restart.grpc_addr = chains[1].grpc_addr;
    chains.remove(1).shutdown().await;

    // Packets towards the stopped chain pile up.
    transfers(&a, &u1, &u2.address, amount, 50, 50, timeout).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        relayd.try_wait().unwrap().is_none(),
        "relayd exited while a node was away"
    );

    chains.push(devnet::start_chain(restart).await.unwrap());
    transfers(&a, &u1, &u2.address, amount, 50, 50, timeout).await;
    transfers(&b, &u2, &u1.address, amount, 50, 50, timeout).await;

    let (to_b, to_a) = (200u128, 150u128);
    let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let voucher_a = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
    let rpc_a = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let rpc_b = CosmosRpc::connect("ibc-1", &chains[1].rpc_url())
        .await
        .unwrap();
    eventually("every packet relayed and acknowledged", || async {
        b.chain.balance(&u2.address, &voucher_b).await == to_b * amount
            && a.chain.balance(&u1.address, &voucher_a).await == to_a * amount
            && rpc_a
                .packet_commitments(TRANSFER_PORT, &a.channel_id)
                .await
                .unwrap()
                .is_empty()
            && rpc_b
                .packet_commitments(TRANSFER_PORT, &b.channel_id)
                .await
                .unwrap()
                .is_empty()
    })
    .await;
    assert_eq!(
        a.chain.balance(&escrow, "stake").await,
        escrow_before + to_b * amount
    );
    common::stop(&mut relayd);
    // relayd saw the node go: its monitor fell back to polling until the WebSocket was back.
    assert!(log_has(
        &log,
        "WebSocket lost; polling until it is back chain=ibc-1"
    ));

    // Exactly once: one record per packet, each acknowledged, none dead-lettered.
    let store = StateStore::open(&dir.path().join("data/state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len() as u128, to_b + to_a);
    let unfinished: Vec<_> = records
        .iter()
        .filter(|r| r.state != relayd_messages::PacketState::Acknowledged)
        .collect();
    assert!(unfinished.is_empty(), "{unfinished:?}");
    assert!(store.dead_letters().unwrap().is_empty());
    for chain in chains {
        chain.shutdown().await;
    }
}

async fn health(base: &str) -> Option<serde_json::Value> {
    let resp = reqwest::get(format!("{base}/health")).await.ok()?;
    resp.json().await.ok()
}

fn chain_health<'a>(h: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    h["chains"].as_array()?.iter().find(|c| c["chain"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_went_back_stops_its_paths_until_the_real_one_returns() {
    let homes = tempfile::tempdir().unwrap();
    let mut chains = vec![
        devnet::start_chain(options(homes.path(), "ibc-0"))
            .await
            .unwrap(),
        devnet::start_chain(options(homes.path(), "ibc-1"))
            .await
            .unwrap(),
    ];
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.keep();
    let (config, keys) = support::relayd::write(&dir, &chains, &a.channel_id);
    eprintln!("relayd dir {}", dir.display());
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
    add_keys(&config, &keys);
    let base = format!("http://127.0.0.1:{admin_port}");

    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let amount = 3u128;

    let log = dir.as_path().join("relayd.log");
    let mut relayd = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    transfers(&a, &u1, &u2.address, amount, 20, 20, timeout).await;
    eventually("the first transfers relayed", || async {
        b.chain.balance(&u2.address, &voucher_b).await == 20 * amount
    })
    .await;

    // The real ibc-1 goes; a fresh chain with its id (new keys, height 1) answers at its address.
    let real = options(homes.path(), "ibc-1");
    let (rpc_addr, grpc_addr) = (chains[1].rpc_addr, chains[1].grpc_addr);
    chains.remove(1).shutdown().await;
    let mut impostor = devnet::ChainOptions::local("ibc-1", Duration::from_millis(200));
    impostor.rpc_addr = rpc_addr;
    impostor.grpc_addr = grpc_addr;
    let impostor = devnet::start_chain(impostor).await.unwrap();

    eventually("/health says ibc-1 is not consistent", || async {
        health(&base).await.is_some_and(|h| {
            chain_health(&h, "ibc-1").is_some_and(|c| {
                c["consistent"] == false && c["ready"] == false && c["reason"].is_string()
            }) && h["ready"] == false
        })
    })
    .await;
    assert!(log_has(
        &log,
        "the node is not consistent with what relayd followed; its paths stop"
    ));
    assert!(log_has(
        &log,
        "stopping every path to and from an inconsistent chain"
    ));
    // Transfers towards ibc-1 wait meanwhile: nothing is sent to the node that answers there.
    transfers(&a, &u1, &u2.address, amount, 20, 20, timeout).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let voucher_on_impostor = support::chain::Chain::connect(&impostor)
        .balance(&u2.address, &voucher_b)
        .await;
    assert_eq!(voucher_on_impostor, 0);
    impostor.shutdown().await;

    // The real node is back, with every block it had: the paths resume and what waited is cleared.
    let mut back = real;
    back.rpc_addr = rpc_addr;
    back.grpc_addr = grpc_addr;
    chains.push(devnet::start_chain(back).await.unwrap());
    eventually(
        "the waiting transfers relayed once ibc-1 is consistent again",
        || async { b.chain.balance(&u2.address, &voucher_b).await == 40 * amount },
    )
    .await;
    eventually("/health says ibc-1 is consistent and ready", || async {
        health(&base).await.is_some_and(|h| {
            chain_health(&h, "ibc-1").is_some_and(|c| c["consistent"] == true && c["ready"] == true)
        })
    })
    .await;
    assert!(log_has(
        &log,
        "the node is consistent again with what relayd followed"
    ));

    common::stop(&mut relayd);
    let store = StateStore::open(&dir.as_path().join("data/state")).unwrap();
    assert!(store.dead_letters().unwrap().is_empty());
    for chain in chains {
        chain.shutdown().await;
    }
}
