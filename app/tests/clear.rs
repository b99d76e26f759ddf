//! `relayd clear packets` as an operator runs it: the pending packets of one channel (some sequences, then the
//! rest) relayed and acknowledged before the command exits, with the progress bar on stderr and a summary.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::{add_keys, relayd};

use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_packets_relays_the_chosen_sequences_then_the_rest() {
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
    transfers(&a, &u1, &u2.address, 4, 30, 10, timeout).await;
    let voucher = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");

    let out = relayd(
        &config,
        &[
            "clear",
            "packets",
            "--chain",
            "ibc-0",
            "--port",
            "transfer",
            "--channel",
            &a.channel_id,
            "--sequences",
            "1..10",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["pending"],
        serde_json::json!((1..=10).collect::<Vec<u64>>())
    );
    assert_eq!(report["acknowledged"], 10);
    assert_eq!(b.chain.balance(&u2.address, &voucher).await, 40);

    let out = relayd(
        &config,
        &[
            "clear",
            "packets",
            "--chain",
            "ibc-0",
            "--port",
            "transfer",
            "--channel",
            &a.channel_id,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("20/20 packets"),
        "progress bar: {progress}"
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("20 pending, 20 acknowledged"), "{summary}");
    assert_eq!(b.chain.balance(&u2.address, &voucher).await, 120);

    // Nothing left: a third run finds no pending packet and exits at once.
    let out = relayd(
        &config,
        &[
            "clear",
            "packets",
            "--chain",
            "ibc-0",
            "--port",
            "transfer",
            "--channel",
            &a.channel_id,
            "--json",
        ],
    );
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pending"], serde_json::json!([]));
}
