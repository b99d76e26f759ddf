//! A signer below `min_balance`: `relayd start` with two devnet chains, each with `key_names = ["relayer",
//! "relayer2"]` and `min_balance` half the genesis balance; the second key's account (genesis `user3`) first
//! sends most of its balance away. Its lane is drained before any packet: `/chains` shows it so, with its
//! balance, `relayd_wallet_low` is 1 for it and 0 for the funded key, and `/health` warns. ICS-20 packets both
//! ways are then relayed and acknowledged exactly once, all on the funded account: the drained account's
//! sequence and balance do not move. Topped up again, the second key's lane takes work again: `/chains` shows
//! it active, the alarm clears, and of the next packets some go out on it.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/relayed.rs"]
mod relayed;

use std::time::Duration;

use cosmrs::proto::cosmos::bank::v1beta1::MsgSend;
use cosmrs::proto::cosmos::base::v1beta1::Coin;
use ibc_proto::google::protobuf::Any;
use prost::Message;
use serde_json::Value;
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};

use common::{add_keys, eventually, log_has};

/// Half the devnet's genesis balance (100_000_000_000_000stake).
const MIN_BALANCE: u128 = 50_000_000_000_000;

/// `from` sends `amount` stake to `to` on `end`'s chain.
async fn send(end: &support::handshake::End, from: &Wallet, to: &str, amount: u128) {
    let msg = MsgSend {
        from_address: from.address.clone(),
        to_address: to.to_owned(),
        amount: vec![Coin {
            denom: "stake".into(),
            amount: amount.to_string(),
        }],
    };
    end.chain
        .submit(
            from,
            &[Any {
                type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
                value: msg.encode_to_vec(),
            }],
        )
        .await;
}

/// Whether every chain in `/chains` shows its two signers with the second one in `state`.
async fn second_signer_is(http: &reqwest::Client, port: u16, state: &str) -> bool {
    let Some(chains) = get_json(http, port, "/chains").await else {
        return false;
    };
    let Some(list) = chains["chains"].as_array() else {
        return false;
    };
    let low = state == "drained";
    list.len() == 2
        && list.iter().all(|c| {
            let signers = c["signers"].as_array().cloned().unwrap_or_default();
            signers.len() == 2
                && signers[0]["key"] == "relayer"
                && signers[0]["state"] == "active"
                && signers[0]["low"] == false
                && signers[1]["key"] == "relayer2"
                && signers[1]["state"] == state
                && signers[1]["low"] == low
                && signers[1]["min_balance"] == MIN_BALANCE.to_string()
                && signers[1]["balance"]
                    .as_str()
                    .and_then(|b| b.parse::<u128>().ok())
                    .is_some_and(|b| (b < MIN_BALANCE) == low)
        })
}

async fn get_json(http: &reqwest::Client, port: u16, path: &str) -> Option<Value> {
    let resp = http
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_below_min_balance_is_drained_and_the_funded_one_relays_everything() {
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
            &format!(
                "key_names = [\"relayer\", \"relayer2\"]\nmin_balance = \"{MIN_BALANCE}stake\""
            ),
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

    // The second key's account sends 60% of its balance away: below the minimum, the relayer's is above.
    for (i, end) in ends.iter().enumerate() {
        let user3 = Wallet::genesis(&chains[i], "user3");
        let to = chains[i].genesis.account("user1").unwrap().address.clone();
        send(end, &user3, &to, MIN_BALANCE / 5 * 6).await;
        assert!(end.chain.balance(&second[i], "stake").await < MIN_BALANCE);
        assert!(end.chain.balance(&first[i], "stake").await > MIN_BALANCE);
    }
    let mut before = Vec::new();
    for (i, end) in ends.iter().enumerate() {
        before.push((
            end.chain.account(&first[i]).await.1,
            end.chain.account(&second[i]).await.1,
            end.chain.balance(&second[i], "stake").await,
        ));
    }

    let log = dir.path().join("relayd.log");
    let mut relayd = common::start(&config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;

    // Both chains show the second key's lane drained, with its balance, before any packet is sent.
    let http = reqwest::Client::new();
    eventually("the low signer's lane drained in /chains", || async {
        second_signer_is(&http, port, "drained").await
    })
    .await;
    assert!(
        log_has(&log, "signer's balance is below min_balance"),
        "the alarm is logged"
    );
    let health = get_json(&http, port, "/health").await.expect("/health");
    for c in health["chains"].as_array().expect("chains") {
        let warnings = c["warnings"].as_array().expect("warnings");
        assert_eq!(warnings.len(), 1, "{c}");
        let text = warnings[0].as_str().unwrap_or_default();
        assert!(
            text.contains("relayer2") && text.contains("drained"),
            "{text}"
        );
    }
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for c in ["ibc-0", "ibc-1"] {
        assert!(
            metrics.contains(&format!(
                "relayd_wallet_low{{chain=\"{c}\",key=\"relayer2\"}} 1"
            )),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "relayd_wallet_low{{chain=\"{c}\",key=\"relayer\"}} 0"
            )),
            "{metrics}"
        );
    }

    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    let timeout = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_600_000_000_000;
    let (per_side, amount) = (40usize, 3u128);
    transfers(&a, &u1, &u2.address, amount, per_side, 20, timeout).await;
    transfers(&b, &u2, &u1.address, amount, per_side, 20, timeout).await;

    let voucher_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let voucher_a = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
    let total = per_side as u128;
    relayed::until_every_packet_acknowledged(
        &chains,
        (&a, &b),
        (&u2.address, &u1.address),
        total * amount,
    )
    .await;

    // Everything went out on the funded account; the drained one signed nothing and paid no fee.
    for (i, end) in ends.iter().enumerate() {
        let (first_before, second_before, balance_before) = before[i];
        assert!(
            end.chain.account(&first[i]).await.1 > first_before,
            "{}: the funded key signed nothing",
            chains[i].chain_id()
        );
        assert_eq!(
            end.chain.account(&second[i]).await.1,
            second_before,
            "{}: the drained key signed",
            chains[i].chain_id()
        );
        assert_eq!(end.chain.balance(&second[i], "stake").await, balance_before);
    }
    assert_eq!(
        b.chain.balance(&u2.address, &voucher_b).await,
        total * amount
    );
    assert_eq!(
        a.chain.balance(&u1.address, &voucher_a).await,
        total * amount
    );

    // Topped up above the minimum, the second key's lane takes work again and the alarm clears.
    for (i, end) in ends.iter().enumerate() {
        let user1 = Wallet::genesis(&chains[i], "user1");
        send(end, &user1, &second[i], MIN_BALANCE / 5 * 4).await;
        assert!(end.chain.balance(&second[i], "stake").await > MIN_BALANCE);
    }
    eventually("the topped-up signer's lane active in /chains", || async {
        second_signer_is(&http, port, "active").await
    })
    .await;
    assert!(log_has(
        &log,
        "signer's balance is back above min_balance: its lane takes transactions again"
    ));
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for c in ["ibc-0", "ibc-1"] {
        assert!(
            metrics.contains(&format!(
                "relayd_wallet_low{{chain=\"{c}\",key=\"relayer2\"}} 0"
            )),
            "{metrics}"
        );
    }
    let health = get_json(&http, port, "/health").await.expect("/health");
    for c in health["chains"].as_array().expect("chains") {
        assert_eq!(c["warnings"].as_array().map(Vec::len), Some(0), "{c}");
    }
    let mut second_before = Vec::new();
    for (i, end) in ends.iter().enumerate() {
        second_before.push(end.chain.account(&second[i]).await.1);
    }
    let more = 150usize;
    transfers(&a, &u1, &u2.address, amount, more, 50, timeout).await;
    transfers(&b, &u2, &u1.address, amount, more, 50, timeout).await;
    let total = (per_side + more) as u128;
    relayed::until_every_packet_acknowledged(
        &chains,
        (&a, &b),
        (&u2.address, &u1.address),
        total * amount,
    )
    .await;
    for (i, end) in ends.iter().enumerate() {
        let after = end.chain.account(&second[i]).await.1;
        assert!(
            after > second_before[i],
            "{}: the topped-up key signed nothing ({} -> {after})",
            chains[i].chain_id(),
            second_before[i]
        );
    }

    common::stop(&mut relayd);
    assert!(log_has(&log, "relayd stopped"));
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 2 * (per_side + more));
    for chain in chains {
        chain.shutdown().await;
    }
}
