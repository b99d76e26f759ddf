//! `relayd tx transfer` against two devnet chains joined by a transfer channel (opened by the devnet tests'
//! minimal relayer): the relayer key imported with `relayd keys add` sends a batch of ICS-20 packets,
//! `relayd query packet commitments` sees them pending and `relayd query balance` sees the tokens in escrow.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::process::{Command, Output};
use std::time::Duration;

use ibc::core::host::types::identifiers::{ChannelId, PortId};
use support::handshake::connect_transfer;
use support::packet::TRANSFER_PORT;

const BIN: &str = env!("CARGO_BIN_EXE_relayd");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx_transfer_sends_a_batch_of_packets_that_queries_then_see() {
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .expect("devnet");
    let (a, _b) = connect_transfer(&chains).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = String::from("[global]\ndata_dir = \"data\"\n");
    for chain in &chains {
        config.push_str(&format!(
            "\n[[chains]]\nid = \"{}\"\nrpc_addr = \"{}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_gas = 5000000\nmax_msg_num = 2\n",
            chain.chain_id(),
            chain.rpc_url()
        ));
    }
    let config_path = dir.path().join("relayd.toml");
    std::fs::write(&config_path, config).expect("config");
    let relayer = chains[0].genesis.account("relayer").expect("relayer");
    let key_file = dir.path().join("relayer.json");
    std::fs::write(
        &key_file,
        format!(
            "{{\"private_key\": \"{}\"}}",
            hex::encode(relayer.private_key)
        ),
    )
    .expect("key");
    let receiver = chains[1]
        .genesis
        .account("user2")
        .expect("user2")
        .address
        .clone();

    let run = |args: Vec<String>| {
        let config_path = config_path.clone();
        tokio::task::spawn_blocking(move || -> Output {
            Command::new(BIN)
                .arg("-c")
                .arg(&config_path)
                .args(args)
                .output()
                .expect("relayd runs")
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let added = run(s(&["keys", "add", "--chain", "ibc-0", "--key-file"])
        .into_iter()
        .chain([key_file.display().to_string()])
        .collect())
    .await
    .expect("join");
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));

    let before = run(s(&[
        "query", "balance", "--chain", "ibc-0", "--denom", "stake", "--json",
    ]))
    .await
    .expect("join");
    assert_eq!(before.status.code(), Some(0), "{}", text(&before.stderr));
    let before: serde_json::Value = serde_json::from_slice(&before.stdout).expect("json");
    let relayer_stake_before: u128 = before["balances"][0]["amount"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("amount");

    let sent = run(s(&[
        "tx",
        "transfer",
        "--src-chain",
        "ibc-0",
        "--dst-chain",
        "ibc-1",
        "--channel",
        &a.channel_id,
        "--amount",
        "100stake",
        "--count",
        "3",
        "--receiver",
        &receiver,
        "--timeout-height-offset",
        "1000",
        "--json",
    ]))
    .await
    .expect("join");
    assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&sent.stdout).expect("json");
    assert_eq!(doc["sequences"], serde_json::json!([1, 2, 3]));
    assert_eq!(
        doc["txs"].as_array().expect("txs").len(),
        2,
        "max_msg_num = 2 splits 3 transfers into 2 txs"
    );

    let pending = run(s(&[
        "query",
        "packet",
        "commitments",
        "ibc-0",
        TRANSFER_PORT,
        &a.channel_id,
        "--json",
    ]))
    .await
    .expect("join");
    let doc: serde_json::Value = serde_json::from_slice(&pending.stdout).expect("json");
    assert_eq!(doc["sequences"], serde_json::json!([1, 2, 3]));

    let pending = run(s(&[
        "query",
        "packet",
        "pending",
        "ibc-0",
        TRANSFER_PORT,
        &a.channel_id,
        "--json",
    ]))
    .await
    .expect("join");
    assert_eq!(pending.status.code(), Some(0), "{}", text(&pending.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&pending.stdout).expect("json");
    assert_eq!(doc["counterparty"]["chain"], "ibc-1");
    assert_eq!(doc["unreceived_packets"], serde_json::json!([1, 2, 3]));
    assert_eq!(doc["unrelayed_acks"], serde_json::json!([]));

    // The escrow of the channel holds exactly what was sent; the relayer's own balance (the default account,
    // from its key) paid it and the fees.
    // ibc-go's ADR-028 escrow account of the channel, as the devnet's bank names it.
    let escrow = cosmrs::AccountId::new(
        "cosmos",
        &ibc::cosmos_host::utils::cosmos_adr028_escrow_address(
            &PortId::transfer(),
            &a.channel_id.parse::<ChannelId>().expect("channel id"),
        ),
    )
    .expect("bech32")
    .to_string();
    let balance = |args: Vec<String>| {
        let run = &run;
        async move {
            let out = run(args).await.expect("join");
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
        }
    };
    let doc = balance(s(&[
        "query",
        "balance",
        "--chain",
        "ibc-0",
        "--address",
        &escrow,
        "--denom",
        "stake",
        "--json",
    ]))
    .await;
    assert_eq!(doc["address"], escrow.as_str());
    assert_eq!(
        doc["balances"],
        serde_json::json!([{"denom": "stake", "amount": "300"}])
    );
    let doc = balance(s(&["query", "balance", "--chain", "ibc-0", "--json"])).await;
    assert_eq!(doc["address"], relayer.address.as_str());
    let stake = doc["balances"]
        .as_array()
        .expect("balances")
        .iter()
        .find(|b| b["denom"] == "stake")
        .and_then(|b| b["amount"].as_str()?.parse::<u128>().ok())
        .expect("the relayer holds stake");
    assert!(
        stake + 300 <= relayer_stake_before,
        "{stake} after {relayer_stake_before}"
    );
    let doc = balance(s(&[
        "query",
        "balance",
        "--chain",
        "ibc-1",
        "--address",
        &receiver,
        "--denom",
        "nothing",
        "--json",
    ]))
    .await;
    assert_eq!(
        doc["balances"],
        serde_json::json!([{"denom": "nothing", "amount": "0"}])
    );

    let bad = run(s(&[
        "tx",
        "transfer",
        "--src-chain",
        "ibc-0",
        "--dst-chain",
        "ibc-1",
        "--channel",
        &a.channel_id,
        "--amount",
        "ten",
    ]))
    .await
    .expect("join");
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        text(&bad.stderr),
        "relayd: --amount \"ten\" is not <integer><denom>, e.g. 100stake\n"
    );

    for chain in chains {
        chain.shutdown().await;
    }
}
