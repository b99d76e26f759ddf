//! Several signers per chain: `relayd start` with two devnet chains, each with `key_names = ["relayer",
//! "relayer2"]` (the second key is the genesis account `user3`, funded and otherwise unused). A few hundred
//! ICS-20 packets both ways are relayed and acknowledged exactly once with exact balances, and both accounts of
//! each chain signed transactions (their sequences advanced): the devnet refuses any message whose signer is
//! not the transaction's, so every datagram sent on the second lane was re-signed for its account. Each key's
//! balance is its own `relayd_wallet_balance` gauge.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::time::Duration;

use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{escrow_address, transfers, voucher_denom, TRANSFER_PORT};

use common::{add_keys, eventually, log_has};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_signers_per_chain_share_the_packets_each_acknowledged_once() {
    let mut opts = devnet::ChainOptions::local("ibc", Duration::from_millis(200));
    // user1 and user2 send; user3 is the second relayer key.
    opts.genesis.accounts = 3;
    let chains = devnet::start_chains(2, &opts).await.unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = support::relayd::write(dir.path(), &chains, &a.channel_id);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "key_name = \"relayer\"",
            // Small transactions, so that a few hundred packets make many of them for the lanes to share.
            "key_names = [\"relayer\", \"relayer2\"]",
        )
        .replace("max_msg_num = 100", "max_msg_num = 4");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!("{text}\n[admin]\nlisten_addr = \"127.0.0.1:{port}\"\n");
    std::fs::write(&config, text).unwrap();
    add_keys(&config, &keys);
    let mut second = Vec::new();
    for chain in &chains {
        let user3 = chain.genesis.account("user3").unwrap();
        let file = dir
            .path()
            .join(format!("{}-relayer2.json", chain.chain_id()));
        std::fs::write(
            &file,
            format!(
                "{{\"private_key\": \"{}\"}}",
                hex::encode(user3.private_key)
            ),
        )
        .unwrap();
        let id = chain.chain_id().to_string();
        let out = common::relayd(
            &config,
            &[
                "keys",
                "add",
                "--chain",
                &id,
                "--name",
                "relayer2",
                "--key-file",
                file.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        second.push(user3.address.clone());
    }
    let first: Vec<String> = chains
        .iter()
        .map(|c| c.genesis.account("relayer").unwrap().address.clone())
        .collect();
    let ends = [&a, &b];
    let mut sequences_before = Vec::new();
    for (i, end) in ends.iter().enumerate() {
        sequences_before.push((
            end.chain.account(&first[i]).await.1,
            end.chain.account(&second[i]).await.1,
        ));
    }

    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let escrow_a = escrow_address(TRANSFER_PORT, &a.channel_id);
    let escrow_b = escrow_address(TRANSFER_PORT, &b.channel_id);
    let escrow_a_before = a.chain.balance(&escrow_a, "stake").await;
    let escrow_b_before = b.chain.balance(&escrow_b, "stake").await;
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let (per_side, amount) = (150usize, 3u128);

    let log = dir.path().join("relayd.log");
    let mut relayd = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    transfers(&a, &u1, &u2.address, amount, per_side, 50, timeout).await;
    transfers(&b, &u2, &u1.address, amount, per_side, 50, timeout).await;

    let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let voucher_a = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
    let total = per_side as u128;
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
        a.chain.balance(&escrow_a, "stake").await,
        escrow_a_before + total * amount
    );
    assert_eq!(
        b.chain.balance(&escrow_b, "stake").await,
        escrow_b_before + total * amount
    );

    // Both accounts of each chain signed transactions.
    for (i, end) in ends.iter().enumerate() {
        let (first_before, second_before) = sequences_before[i];
        let first_after = end.chain.account(&first[i]).await.1;
        let second_after = end.chain.account(&second[i]).await.1;
        assert!(
            first_after > first_before,
            "{}: the first key signed nothing ({first_before} -> {first_after})",
            chains[i].chain_id()
        );
        assert!(
            second_after > second_before,
            "{}: the second key signed nothing ({second_before} -> {second_after})",
            chains[i].chain_id()
        );
    }
    // The received amounts stay exact after everything settled: no packet was relayed twice.
    assert_eq!(
        b.chain.balance(&u2.address, &voucher_b).await,
        total * amount
    );
    assert_eq!(
        a.chain.balance(&u1.address, &voucher_a).await,
        total * amount
    );

    // Each key's balance is a gauge of its own.
    let http = reqwest::Client::new();
    eventually("a wallet balance per key", || async {
        let Ok(resp) = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        else {
            return false;
        };
        let text = resp.text().await.unwrap_or_default();
        ["ibc-0", "ibc-1"].iter().all(|c| {
            ["relayer", "relayer2"].iter().all(|k| {
                text.contains(&format!(
                    "relayd_wallet_balance{{chain=\"{c}\",denom=\"stake\",key=\"{k}\"}}"
                ))
            })
        })
    })
    .await;

    common::stop(&mut relayd);
    assert!(log_has(&log, "relayd stopped"));
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 2 * per_side);
    for chain in chains {
        chain.shutdown().await;
    }
}
