//! `relayd query balance` on a NEAR devnet: the relayer's genesis tokens and another account's, read through the
//! IBC contract's `ft_balances_of` / `ft_balance_of` views; and ICS-20 sends delivered through relayd's `deliver`
//! submitter that the contract refuses (another account's tokens, a channel that does not exist) leave every
//! balance as it was.

use std::process::{Command, Output};
use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use prost::Message;
use relayd_actors::chain::near::credentials::load_signer;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::tx::{NearTxConfig, NearTxError, NearTxSubmitter};

const BIN: &str = env!("CARGO_BIN_EXE_relayd");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn transfer(sender: &str, denom: &str, amount: u128) -> Any {
    let msg = ibc_proto::ibc::applications::transfer::v1::MsgTransfer {
        source_port: "transfer".to_owned(),
        source_channel: "channel-0".to_owned(),
        token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
            denom: denom.to_owned(),
            amount: amount.to_string(),
        }),
        sender: sender.to_owned(),
        receiver: "cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu".to_owned(),
        timeout_height: None,
        timeout_timestamp: u64::MAX / 2,
        memo: String::new(),
    };
    Any {
        type_url: "/ibc.applications.transfer.v1.MsgTransfer".to_owned(),
        value: msg.encode_to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_balance_reads_the_near_contracts_ledger_and_refused_sends_move_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = devnet::near::NearOptions::local(Duration::from_millis(100));
    options.home = Some(dir.path().join("near"));
    let near = devnet::near::start(options).await.expect("near devnet");
    tokio::time::timeout(Duration::from_secs(30), near.wait_for_height(3))
        .await
        .expect("blocks");
    let relayer = near.genesis.relayer.account_id.to_string();
    let user = near.genesis.accounts[0].account_id.to_string();
    let contract = near.genesis.ibc.account_id.to_string();
    let key_file = dir
        .path()
        .join("near")
        .join("keys")
        .join(format!("{relayer}.json"));
    let config = dir.path().join("relayd.toml");
    std::fs::write(
        &config,
        format!(
            "[global]\ndata_dir = \"data\"\n\n[[chains]]\nid = \"{}\"\ntype = \"near\"\nrpc_addr = \"{}\"\ncontract_account = \"{contract}\"\nsigner_account = \"{relayer}\"\nkey_file = \"{}\"\n",
            near.chain_id(),
            near.rpc_url(),
            key_file.display()
        ),
    )
    .expect("write config");
    let chain_id = near.chain_id().to_owned();
    let balance = |extra: &[&str]| {
        let config = config.clone();
        let mut args: Vec<String> = ["query", "balance", "--chain", &chain_id, "--json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        async move {
            let out: Output = tokio::task::spawn_blocking(move || {
                Command::new(BIN)
                    .arg("-c")
                    .arg(&config)
                    .args(args)
                    .output()
                    .expect("relayd runs")
            })
            .await
            .expect("join");
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
        }
    };
    let genesis: Vec<serde_json::Value> = {
        let mut tokens = devnet::near::ledger::GENESIS_TOKENS.to_vec();
        tokens.sort();
        tokens
            .iter()
            .map(
                |(denom, amount)| serde_json::json!({"denom": denom, "amount": amount.to_string()}),
            )
            .collect()
    };

    // The relayer's account by default: every genesis token.
    let doc = balance(&[]).await;
    assert_eq!(doc["chain"], chain_id.as_str());
    assert_eq!(doc["address"], relayer.as_str());
    assert_eq!(doc["balances"], serde_json::json!(genesis));
    // `keys balance` is the same reading for the chain's own account.
    let keys = {
        let (config, chain_id) = (config.clone(), chain_id.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .args(["keys", "balance", "--chain", &chain_id, "--json"])
                .output()
                .expect("relayd runs")
        })
        .await
        .expect("join")
    };
    assert_eq!(keys.status.code(), Some(0), "{}", text(&keys.stderr));
    let keys: serde_json::Value = serde_json::from_slice(&keys.stdout).expect("json");
    assert_eq!(keys, doc);
    // One denomination of another account; one it never held reads 0.
    let (denom, amount) = devnet::near::ledger::GENESIS_TOKENS[0];
    let doc = balance(&["--address", &user, "--denom", denom]).await;
    assert_eq!(
        doc["balances"],
        serde_json::json!([{"denom": denom, "amount": amount.to_string()}])
    );
    let doc = balance(&["--address", &user, "--denom", "transfer/channel-0/stake"]).await;
    assert_eq!(doc["balances"][0]["amount"], "0");

    // Sends the contract refuses: the relayer spending the user's tokens, and a send on a channel that does not
    // exist. Each is rolled back, so every balance stays.
    let rpc = NearRpc::new(near.chain_id(), &near.rpc_url());
    let submitter = NearTxSubmitter::new(
        rpc.clone(),
        load_signer(&key_file, Some(&relayer)).expect("key file"),
        contract.parse().expect("account"),
        NearTxConfig::default(),
    );
    match submitter.submit(&[transfer(&user, denom, 5)]).await {
        Err(NearTxError::MessageRefused { logs, .. }) => {
            assert!(
                logs.iter().any(|l| l.contains("is not the caller")),
                "{logs:?}"
            )
        }
        other => panic!("expected the transfer to be refused, got {other:?}"),
    }
    match submitter.submit(&[transfer(&relayer, denom, 5)]).await {
        Err(NearTxError::MessageRefused { logs, .. }) => {
            assert!(logs.iter().any(|l| l.contains("MsgTransfer")), "{logs:?}")
        }
        other => panic!("expected the transfer to be refused, got {other:?}"),
    }
    // Read at a final block after both calls executed.
    let executed = rpc
        .status()
        .await
        .expect("status")
        .sync_info
        .latest_block_height;
    while rpc.block(None).await.expect("final block").header.height <= executed {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let doc = balance(&[]).await;
    assert_eq!(doc["balances"], serde_json::json!(genesis));
    let doc = balance(&["--address", &user, "--denom", denom]).await;
    assert_eq!(doc["balances"][0]["amount"], amount.to_string());

    // An account id NEAR would refuse is the contract's refusal, reported as a failed query.
    let out = tokio::task::spawn_blocking({
        let config = config.clone();
        let chain_id = chain_id.clone();
        move || {
            Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .args([
                    "query",
                    "balance",
                    "--chain",
                    &chain_id,
                    "--address",
                    "Not Valid",
                ])
                .output()
                .expect("relayd runs")
        }
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    near.shutdown().await;
}
