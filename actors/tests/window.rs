//! The bounded builder window end to end: a backlog several times `[global] max_builders` (packets sent both ways
//! before relayd first ran, found by clearing at start, plus more sent while it relays) is relayed completely,
//! and the coordinator never runs more builders than the window, sampled throughout the run.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod harness;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::{eventually, far_timeout, write_config, Cmd, Relayd};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::store::StateStore;
use relayd_messages::PacketState;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};

const WINDOW: usize = 8;

/// Whether every packet both ways is relayed: vouchers on each side and no commitment left.
async fn settled(
    chains: &[devnet::RunningChain],
    a: &support::handshake::End,
    b: &support::handshake::End,
    expected_each_way: u128,
) -> bool {
    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let on_b = b
        .chain
        .balance(
            &u2.address,
            &voucher_denom(TRANSFER_PORT, &b.channel_id, "stake"),
        )
        .await;
    let on_a = a
        .chain
        .balance(
            &u1.address,
            &voucher_denom(TRANSFER_PORT, &a.channel_id, "stake"),
        )
        .await;
    let (Ok(rpc_a), Ok(rpc_b)) = (
        CosmosRpc::connect("ibc-0", &chains[0].rpc_url()).await,
        CosmosRpc::connect("ibc-1", &chains[1].rpc_url()).await,
    ) else {
        return false;
    };
    let pending_a = rpc_a.packet_commitments(TRANSFER_PORT, &a.channel_id).await;
    let pending_b = rpc_b.packet_commitments(TRANSFER_PORT, &b.channel_id).await;
    on_a == expected_each_way
        && on_b == expected_each_way
        && pending_a.is_ok_and(|p| p.is_empty())
        && pending_b.is_ok_and(|p| p.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_the_window_relays_completely_within_the_window() {
    let options = devnet::ChainOptions::local("ibc", Duration::from_millis(200));
    let chains = devnet::start_chains(2, &options).await.unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &chains, &a);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen(
            "[global]\n",
            &format!("[global]\nmax_builders = {WINDOW}\n"),
            1,
        ),
    )
    .unwrap();
    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let (amount, timeout) = (3u128, far_timeout());
    // The backlog: sent before relayd first ran, so clearing at start finds it all at once.
    transfers(&a, &u1, &u2.address, amount, 40, 20, timeout).await;
    transfers(&b, &u2, &u1.address, amount, 40, 20, timeout).await;

    let relayd = Arc::new(Relayd::start(&config, dir.path()));
    let done = Arc::new(AtomicBool::new(false));
    // Samples the window throughout the run: the largest running count and whether packets were seen waiting.
    let sampler = {
        let (relayd, done) = (relayd.clone(), done.clone());
        tokio::spawn(async move {
            let (mut most_running, mut most_waiting, mut max) = (0, 0, 0);
            while !done.load(Ordering::SeqCst) {
                let (running, waiting, m) = relayd.ask(Cmd::Window).await;
                most_running = most_running.max(running);
                most_waiting = most_waiting.max(waiting);
                max = m;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (most_running, most_waiting, max)
        })
    };
    // More while it relays: new packets join the queue behind the backlog.
    transfers(&a, &u1, &u2.address, amount, 10, 10, timeout).await;
    transfers(&b, &u2, &u1.address, amount, 10, 10, timeout).await;
    eventually("all 100 transfers relayed", || {
        settled(&chains, &a, &b, 50 * amount)
    })
    .await;
    eventually("builders finish", || async {
        relayd.ask(Cmd::Builders).await == 0
    })
    .await;
    done.store(true, Ordering::SeqCst);
    let (most_running, most_waiting, max) = sampler.await.unwrap();
    assert_eq!(max, WINDOW);
    assert!(
        most_running <= WINDOW,
        "{most_running} builders ran at once; the window is {WINDOW}"
    );
    assert!(
        most_waiting > 0,
        "a backlog of 80 found at once must wait for slots"
    );
    let (_, waiting, _) = relayd.ask(Cmd::Window).await;
    assert_eq!(waiting, 0);
    let Ok(relayd) = Arc::try_unwrap(relayd) else {
        panic!("the sampler holds relayd no more");
    };
    relayd.stop().await;
    let store = StateStore::open(&dir.path().join("data/state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len(), 100);
    assert!(records.iter().all(|r| r.state == PacketState::Acknowledged));
    for chain in chains {
        chain.shutdown().await;
    }
}
