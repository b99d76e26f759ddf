//! `relayd start` as operators run it: a separate process relaying between two devnet chains, guarding its
//! data directory, SIGKILLed three times mid-stream (with most packets still in the intake log) and restarted,
//! after which every packet has completed exactly once (each acknowledged, the vouchers and escrow exact), and a
//! final SIGTERM exits 0.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::process::{Child, Command};
use std::time::Duration;

use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::store::StateStore;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{escrow_address, transfers, voucher_denom, TRANSFER_PORT};

use common::{add_keys, eventually, log_has, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_survives_three_sigkills_and_every_packet_completes_exactly_once() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = support::relayd::write(dir.path(), &chains, &a.channel_id);
    // Few builder slots: most of a round's packets still wait in the intake log, without records, when the
    // service is killed.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("[global]\n"));
    std::fs::write(
        &config,
        text.replacen("[global]\n", "[global]\nmax_builders = 24\n", 1),
    )
    .unwrap();
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
    let (rounds, per_round, amount) = (4usize, 100usize, 3u128);

    for round in 0..rounds {
        let log = dir.path().join(format!("relayd-{round}.log"));
        let mut relayd = common::start(&config, &log);
        eventually("relayd started", || async {
            log_has(&log, "relayd started")
        })
        .await;
        if round == 0 {
            // A second service on the same data dir must refuse instead of sharing sled.
            let second = Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .arg("start")
                .output()
                .unwrap();
            assert_eq!(second.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&second.stderr)
                .contains("is in use by another relayd process"));
        }
        transfers(&a, &u1, &u2.address, amount, per_round, 50, timeout).await;
        transfers(&b, &u2, &u1.address, amount, per_round, 50, timeout).await;
        if round + 1 < rounds {
            // Mid-stream: some of this round's packets are in flight.
            tokio::time::sleep(Duration::from_millis(700)).await;
            relayd.kill().unwrap();
            relayd.wait().unwrap();
            continue;
        }
        let total = (rounds * per_round) as u128;
        let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
        let voucher_a = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
        let rpc_a = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
            .await
            .unwrap();
        let rpc_b = CosmosRpc::connect("ibc-1", &chains[1].rpc_url())
            .await
            .unwrap();
        eventually("every packet relayed and acknowledged", || async {
            b.chain.balance(&u2.address, &voucher_b).await == total * amount
                && a.chain.balance(&u1.address, &voucher_a).await == total * amount
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
            escrow_before + total * amount
        );
        common::stop(&mut relayd);
        assert!(log_has(&log, "relayd stopped"));
    }

    // Exactly once: one record per packet, each acknowledged, none dead-lettered.
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 2 * rounds * per_round);
    for chain in chains {
        chain.shutdown().await;
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_cuts_the_graceful_stop_short_and_a_restart_completes_every_packet_once() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = support::relayd::write(dir.path(), &chains, &a.channel_id);
    add_keys(&config, &keys);
    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let voucher_a = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
    let rpc_a = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let rpc_b = CosmosRpc::connect("ibc-1", &chains[1].rpc_url())
        .await
        .unwrap();
    let complete = |to_b: u128, to_a: u128| {
        let (a, b, rpc_a, rpc_b) = (&a, &b, &rpc_a, &rpc_b);
        let (u1, u2, voucher_a, voucher_b) = (&u1, &u2, &voucher_a, &voucher_b);
        async move {
            b.chain.balance(&u2.address, voucher_b).await == to_b
                && a.chain.balance(&u1.address, voucher_a).await == to_a
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
        }
    };

    let log = dir.path().join("relayd-0.log");
    let mut relayd = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    transfers(&a, &u1, &u2.address, 1, 10, 50, timeout).await;
    transfers(&b, &u2, &u1.address, 1, 10, 50, timeout).await;
    eventually("the first packets relayed both ways", || complete(10, 10)).await;

    // ibc-1 halts: relayd's receive transaction for the next packets waits in its mempool, in flight.
    chains[1].pause_blocks(true);
    transfers(&a, &u1, &u2.address, 1, 10, 50, timeout).await;
    eventually(
        "relayd's receive transaction in ibc-1's mempool",
        || async { chains[1].node.mempool_size() > 0 },
    )
    .await;
    signal(&relayd, "TERM");
    eventually("the graceful stop began", || async {
        log_has(&log, "waiting for transactions in flight")
    })
    .await;
    assert!(
        relayd.try_wait().unwrap().is_none(),
        "the graceful stop waits for the transaction in flight"
    );
    signal(&relayd, "TERM");
    assert_eq!(relayd.wait().unwrap().code(), Some(143));
    assert!(log_has(&log, "stopping at once"));
    assert!(!log_has(&log, "relayd stopped"));

    // ibc-1 resumes and takes the transaction; relayd, restarted on the same data dir, finishes everything.
    chains[1].pause_blocks(false);
    let log = dir.path().join("relayd-1.log");
    let mut relayd = common::start(&config, &log);
    eventually("relayd restarted", || async {
        log_has(&log, "relayd started")
    })
    .await;
    transfers(&b, &u2, &u1.address, 1, 5, 50, timeout).await;
    eventually(
        "every packet relayed and acknowledged after the restart",
        || complete(20, 15),
    )
    .await;
    signal(&relayd, "TERM");
    assert_eq!(relayd.wait().unwrap().code(), Some(0));
    assert!(log_has(&log, "relayd stopped"));

    // Exactly once: one record per packet, each acknowledged, none dead-lettered.
    let store = StateStore::open(&dir.path().join("data/state")).unwrap();
    let records: Vec<_> = store.packets().map(Result::unwrap).collect();
    assert_eq!(records.len(), 35);
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
