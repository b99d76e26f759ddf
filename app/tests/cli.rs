//! Runs the built `relayd` binary: exit codes, messages and the service's start and stop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_relayd");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config")
}

fn relayd(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env_remove("RELAYD_CONFIG")
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("relayd runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_the_adr_example() {
    let out = relayd(
        &fixtures(),
        &[
            "--config",
            "adr-002.toml",
            "config",
            "validate",
            "--file-only",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "adr-002.toml: valid: 2 chains (chain_A, chain_B), 1 connection, 3 paths\n"
    );
}

#[test]
fn validate_prints_json_when_asked() {
    let out = relayd(
        &fixtures(),
        &[
            "-c",
            "cosmos-near.toml",
            "config",
            "validate",
            "--json",
            "--file-only",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["status"], "valid");
    assert_eq!(doc["chains"], serde_json::json!(["ibc-0", "near-localnet"]));
    assert_eq!(doc["connections"], 1);
    assert_eq!(doc["paths"], 1);
}

#[test]
fn validate_rejects_invalid_files_with_exit_code_2_and_the_precise_message() {
    let dir = fixtures().join("invalid");
    let cases = [
        (
            "bad-gas-price.toml",
            "bad-gas-price.toml:14: chains[1].gas_price: \"abc\" is not <amount><denom>, e.g. \"0.025stake\"",
        ),
        (
            "unknown-chain-key.toml",
            "unknown-chain-key.toml:15: chains[1].gas_adjustmnt: unknown key; did you mean `gas_adjustment`?",
        ),
        (
            "src-equals-dest.toml",
            "src-equals-dest.toml:17: connections[0]: src and dest are both on chain \"ibc-0\"",
        ),
    ];
    for (file, message) in cases {
        let out = relayd(&dir, &["-c", file, "config", "validate"]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        assert_eq!(text(&out.stderr), format!("{message}\n"), "{file}");
        assert!(out.stdout.is_empty(), "{file}");
    }
}

#[test]
fn validate_reports_json_errors() {
    let out = relayd(
        &fixtures().join("invalid"),
        &["-c", "zero-duration.toml", "config", "validate", "--json"],
    );
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["status"], "invalid");
    let err = &doc["errors"][0];
    assert_eq!(err["line"], 2);
    assert_eq!(err["key"], "global.timeout");
    assert_eq!(err["message"], "\"0s\" must be greater than zero");
}

#[test]
fn missing_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = relayd(dir.path(), &["-c", "nope.toml", "config", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "nope.toml: cannot read the file: No such file or directory (os error 2)\n"
    );
}

#[test]
fn config_path_comes_from_the_environment_and_defaults_to_home() {
    let out = Command::new(BIN)
        .current_dir(fixtures())
        .env("RELAYD_CONFIG", "adr-002.toml")
        .args(["config", "validate", "--file-only"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .env_remove("RELAYD_CONFIG")
        .env("HOME", home.path())
        .args(["config", "validate"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let expected = home.path().join(".relayd/config.toml");
    assert!(
        text(&out.stderr).starts_with(&format!("{}: cannot read the file", expected.display())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_commands_are_usage_errors() {
    let out = relayd(&fixtures(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unrecognized subcommand 'frobnicate'"));
}

/// A config whose data dir lives in `dir`.
fn service_config(dir: &Path) -> PathBuf {
    let adr = std::fs::read_to_string(fixtures().join("adr-002.toml")).expect("fixture");
    let text = adr.replace(
        "strategy = \"naive\"",
        "strategy = \"naive\"\ndata_dir = \"data\"",
    );
    let path = dir.join("relayd.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn start_refuses_an_invalid_config_with_exit_code_2() {
    let out = relayd(
        &fixtures().join("invalid"),
        &["-c", "duplicate-chain-id.toml", "start"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "duplicate-chain-id.toml:10: chains[1].id: chain id \"ibc-0\" is already used by chains[0]\n"
    );
}

#[test]
fn keys_are_added_listed_and_deleted_without_showing_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = service_config(dir.path());
    let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    std::fs::write(dir.path().join("a.mnemonic"), phrase).expect("write");
    let secret = "1f".repeat(32);
    std::fs::write(
        dir.path().join("b.json"),
        format!("{{\"private_key\": \"{secret}\"}}"),
    )
    .expect("write");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .expect("relayd runs")
    };

    let added = run(&[
        "keys",
        "add",
        "--chain",
        "chain_A",
        "--mnemonic-file",
        "a.mnemonic",
    ]);
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    let line = text(&added.stdout);
    assert!(line.starts_with("chain_A\ttestkey\tcosmos1"), "{line}");

    let added = run(&[
        "keys",
        "add",
        "--chain",
        "chain_B",
        "--key-file",
        "b.json",
        "--json",
    ]);
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&added.stdout).expect("json");
    assert_eq!(doc[0]["chain_id"], "chain_B");

    let again = run(&["keys", "add", "--chain", "chain_B", "--key-file", "b.json"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        text(&again.stderr),
        "relayd: chain chain_B already has a key; delete it first\n"
    );

    let unknown = run(&["keys", "add", "--chain", "nope", "--key-file", "b.json"]);
    assert_eq!(unknown.status.code(), Some(2));

    let listed = run(&["keys", "list"]);
    let listing = text(&listed.stdout);
    assert_eq!(listing.lines().count(), 2);
    assert!(!listing.contains(&secret) && !listing.contains("abandon"));
    let store = dir.path().join("data/keys/chain_B.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&store).expect("key file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let deleted = run(&["keys", "delete", "--chain", "chain_A"]);
    assert_eq!(deleted.status.code(), Some(0));
    assert_eq!(text(&run(&["keys", "list"]).stdout).lines().count(), 1);
}

/// A config for one devnet chain at `rpc`, with its data dir in `dir`.
fn devnet_config(dir: &Path, rpc: &str) -> PathBuf {
    let text = format!(
        "[global]\ndata_dir = \"data\"\n\n[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"{rpc}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\n"
    );
    let path = dir.join("relayd.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_init_trusts_a_devnet_header_and_refuses_a_wrong_hash() {
    use tendermint_rpc::Client;
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(100),
    ))
    .await
    .expect("devnet");
    tokio::time::timeout(Duration::from_secs(30), chain.wait_for_height(3))
        .await
        .expect("blocks");
    let client = tendermint_rpc::HttpClient::new(chain.rpc_url().as_str()).expect("client");
    let header = client
        .commit(tendermint::block::Height::from(2u32))
        .await
        .expect("commit")
        .signed_header
        .header;
    let hash = header.hash().to_string();

    let dir = tempfile::tempdir().expect("tempdir");
    let config = devnet_config(dir.path(), &chain.rpc_url());
    let run = |args: Vec<String>| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .args(args)
                .output()
                .expect("relayd runs")
        })
    };
    let ok = run(vec![
        "light".into(),
        "init".into(),
        "--chain".into(),
        "ibc-0".into(),
        "--hash".into(),
        hash.to_lowercase(),
        "--height".into(),
        "2".into(),
    ])
    .await
    .expect("join");
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with(&format!("ibc-0: trusted height 2, hash {hash}, time ")));

    let wrong = "AB".repeat(32);
    let bad = run(vec![
        "light".into(),
        "init".into(),
        "--chain".into(),
        "ibc-0".into(),
        "-x".into(),
        wrong.clone(),
        "--height".into(),
        "2".into(),
    ])
    .await
    .expect("join");
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        text(&bad.stderr),
        format!("relayd: ibc-0: the header at height 2 has hash {hash}, not {wrong}\n")
    );
    chain.shutdown().await;
}

/// A `MsgCreateClient` for a Tendermint client whose first consensus state is `header`, signed by `signer`.
fn create_client_msg(
    header: &tendermint::block::Header,
    signer: &str,
) -> ibc_proto::google::protobuf::Any {
    use ibc_proto::google::protobuf::{Any, Duration as PbDuration};
    use ibc_proto::ibc::core::client::v1::{Height, MsgCreateClient};
    use ibc_proto::ibc::core::commitment::v1::MerkleRoot;
    use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState, Fraction};
    use prost::Message;
    let secs = |s: i64| {
        Some(PbDuration {
            seconds: s,
            nanos: 0,
        })
    };
    let client_state = ClientState {
        chain_id: header.chain_id.to_string(),
        trust_level: Some(Fraction {
            numerator: 1,
            denominator: 3,
        }),
        trusting_period: secs(14 * 24 * 3600),
        unbonding_period: secs(21 * 24 * 3600),
        max_clock_drift: secs(20),
        frozen_height: Some(Height {
            revision_number: 0,
            revision_height: 0,
        }),
        latest_height: Some(Height {
            revision_number: 0,
            revision_height: header.height.value(),
        }),
        proof_specs: devnet::proof_specs(),
        upgrade_path: vec!["upgrade".into(), "upgradedIBCState".into()],
        ..ClientState::default()
    };
    let consensus_state = ConsensusState {
        timestamp: Some(header.time.into()),
        root: Some(MerkleRoot {
            hash: header.app_hash.as_bytes().to_vec(),
        }),
        next_validators_hash: header.next_validators_hash.as_bytes().to_vec(),
    };
    let msg = MsgCreateClient {
        client_state: Some(Any {
            type_url: "/ibc.lightclients.tendermint.v1.ClientState".into(),
            value: client_state.encode_to_vec(),
        }),
        consensus_state: Some(Any {
            type_url: "/ibc.lightclients.tendermint.v1.ConsensusState".into(),
            value: consensus_state.encode_to_vec(),
        }),
        signer: signer.into(),
    };
    Any {
        type_url: "/ibc.core.client.v1.MsgCreateClient".into(),
        value: msg.encode_to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_in_adr_002_form_read_a_devnet_client_with_proofs() {
    use relayd_actors::chain::cosmos::rpc::CosmosRpc;
    use relayd_actors::chain::cosmos::tx::{TxConfig, TxSubmitter};
    let chain = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(100),
    ))
    .await
    .expect("devnet");
    // The first blocks give the chain a clock that client expiry is measured by.
    tokio::time::timeout(Duration::from_secs(30), chain.wait_for_height(2))
        .await
        .expect("blocks");
    let relayer = chain.genesis.account("relayer").expect("relayer").clone();
    let rpc = CosmosRpc::connect("ibc-0", &chain.rpc_url())
        .await
        .expect("rpc");
    let config = TxConfig {
        chain_id: "ibc-0".into(),
        default_gas: 300_000,
        gas_adjustment: 1.3,
        gas_price: 0.001,
        fee_denom: "stake".into(),
        max_gas: 2_000_000,
        max_msg_num: 30,
        max_tx_size: 1 << 20,
        confirm_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
        max_in_flight: 1,
    };
    let mut submitter =
        TxSubmitter::new(rpc, config, relayer.signing_key(), relayer.address.clone());
    // Copy the header out: holding the record's lock across the await would stall block production.
    let header = chain.node.record().expect("record").blocks()[1]
        .block
        .header()
        .clone();
    let outcome = submitter
        .submit(vec![create_client_msg(&header, &relayer.address)])
        .await
        .expect("client created");
    let created_at = outcome[0].height;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = devnet_config(dir.path(), &chain.rpc_url());
    let run = |args: &[&str]| {
        let config = config.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .args(args)
                .output()
                .expect("relayd runs")
        })
    };

    let out = run(&[
        "query",
        "client",
        "state",
        "ibc-0",
        "07-tendermint-0",
        "--json",
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["client_state"]["value"]["chainId"], "ibc-0", "{doc}");
    let query_height = doc["proof"]["query_height"].as_u64().expect("height");
    assert!(query_height >= created_at);
    assert_eq!(
        doc["proof"]["proof_height"].as_u64(),
        Some(query_height + 1)
    );
    assert!(doc["proof"]["proof_bytes"].as_u64().expect("proof") > 0);

    // ADR-002's short flags: -h height, -p proof.
    let h = created_at.to_string();
    let out = run(&[
        "query",
        "client",
        "consensus",
        "ibc-0",
        "07-tendermint-0",
        "0-2",
        "-h",
        &h,
        "-p",
        "false",
        "--json",
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        doc["consensus_state"]["type_url"],
        "/ibc.lightclients.tendermint.v1.ConsensusState"
    );
    assert_eq!(
        doc["proof"],
        serde_json::json!({"query_height": created_at})
    );

    // Before the block that created it, the client does not exist.
    let before = (created_at - 1).to_string();
    let out = run(&[
        "query",
        "client",
        "state",
        "ibc-0",
        "07-tendermint-0",
        "-h",
        &before,
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not found at height"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["query", "connections", "ibc-0", "--json"])
        .await
        .expect("join");
    assert_eq!(text(&out.stdout).trim(), "[]");
    chain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_a_near_devnet_client_with_trie_proofs() {
    use relayd_actors::chain::cosmos::client::{create_client_msg, ClientParams};
    use relayd_actors::chain::cosmos::rpc::CosmosRpc;
    use relayd_actors::chain::near::credentials::load_signer;
    use relayd_actors::chain::near::rpc::NearRpc;
    use relayd_actors::chain::near::state_proof::{verify_state_proof, NearStateProof};
    use relayd_actors::chain::near::tx::{NearTxConfig, NearTxSubmitter};

    let cosmos = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-0",
        Duration::from_millis(100),
    ))
    .await
    .expect("devnet");
    tokio::time::timeout(Duration::from_secs(30), cosmos.wait_for_height(3))
        .await
        .expect("blocks");
    let src = CosmosRpc::connect("ibc-0", &cosmos.rpc_url())
        .await
        .expect("rpc");
    let root = src.fetch_light_block(2).await.expect("light block");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = devnet::near::NearOptions::local(Duration::from_millis(100));
    options.home = Some(dir.path().join("near"));
    let near = devnet::near::start(options).await.expect("near devnet");
    let relayer = near.genesis.relayer.account_id.to_string();
    let contract = near.genesis.ibc.account_id.to_string();
    let key_file = dir
        .path()
        .join("near")
        .join("keys")
        .join(format!("{relayer}.json"));
    let rpc = NearRpc::new(near.chain_id(), &near.rpc_url());
    let submitter = NearTxSubmitter::new(
        rpc.clone(),
        load_signer(&key_file, Some(&relayer)).expect("key file"),
        contract.parse().expect("account"),
        NearTxConfig::default(),
    );
    let params = ClientParams {
        trust_level: (1, 3),
        trusting_period: Duration::from_secs(14 * 24 * 3600),
        unbonding_period: Duration::from_secs(21 * 24 * 3600),
        max_clock_drift: Duration::from_secs(20),
        proof_specs: devnet::proof_specs(),
    };
    let created = submitter
        .submit(&[create_client_msg(&root, &params, &relayer)])
        .await
        .expect("client created on NEAR");
    // `query` reads the state a final block's header commits to, i.e. after the final block's parent.
    let executed = rpc
        .block_by_hash(created.receipt_blocks[0])
        .await
        .expect("block")
        .header
        .height;
    while rpc.block(None).await.expect("final block").header.height <= executed {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

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
    let run = |args: &[&str]| {
        let config = config.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .args(args)
                .output()
                .expect("relayd runs")
        })
    };

    let out = run(&[
        "query",
        "client",
        "state",
        &chain_id,
        "07-tendermint-0",
        "--json",
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["client_state"]["value"]["chainId"], "ibc-0", "{doc}");
    // The printed proof is a NEAR state proof that checks against the block after the query height.
    let query_height = doc["proof"]["query_height"].as_u64().expect("height");
    let proof = hex::decode(doc["proof"]["proof"].as_str().expect("proof")).expect("hex");
    let proof = NearStateProof::from_bytes(&proof).expect("near state proof");
    let next = rpc.block(Some(query_height + 1)).await.expect("next block");
    let stored = near_client_state(&rpc, &contract, query_height).await;
    verify_state_proof(
        &next.header.prev_state_root,
        &contract,
        b"clients/07-tendermint-0/clientState",
        Some(&stored),
        &proof,
    )
    .expect("proof checks");

    let out = run(&[
        "query",
        "packet",
        "commitments",
        &chain_id,
        "transfer",
        "channel-0",
        "--json",
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["sequences"], serde_json::json!([]));

    // Listings go through the contract's views; this chain has a client and no connection or channel yet.
    for (args, expected) in [
        (
            vec!["query", "connections", &chain_id, "--json"],
            serde_json::json!([]),
        ),
        (
            vec![
                "query",
                "connections",
                &chain_id,
                "--client",
                "07-tendermint-0",
                "--json",
            ],
            serde_json::json!({"client_id": "07-tendermint-0", "connections": []}),
        ),
        (
            vec!["query", "channels", &chain_id, "--json"],
            serde_json::json!([]),
        ),
    ] {
        let out = run(&args).await.expect("join");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(doc, expected, "{args:?}");
    }
    let out = run(&[
        "query",
        "packet",
        "pending",
        &chain_id,
        "transfer",
        "channel-0",
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("channelEnds/ports/transfer/channels/channel-0 not found"),
        "{}",
        text(&out.stderr)
    );

    // `light init` on the NEAR chain: a block of the third epoch, vouched for by its base58 hash.
    let vouched = 2 * near.genesis.epoch_length + 3;
    near.wait_for_height(vouched + 2).await;
    let hash = rpc
        .block(Some(vouched))
        .await
        .expect("block")
        .header
        .hash
        .to_string();
    let height = vouched.to_string();
    let out = run(&[
        "light", "init", "--chain", &chain_id, "--hash", &hash, "--height", &height,
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "{chain_id}: trusted height {vouched}, hash {hash}, epoch "
        )),
        "{}",
        text(&out.stdout)
    );
    let other = (vouched + 1).to_string();
    let out = run(&[
        "light", "init", "--chain", &chain_id, "--hash", &hash, "--height", &other,
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("relayd: {chain_id}: block {hash} is at height {vouched}, not {other}\n")
    );

    near.shutdown().await;
    cosmos.shutdown().await;
}

/// The client state bytes NEAR's IBC contract stores, read with `view_state` at `height`.
async fn near_client_state(
    rpc: &relayd_actors::chain::near::rpc::NearRpc,
    contract: &str,
    height: u64,
) -> Vec<u8> {
    let state = rpc
        .view_state(
            &contract.parse().expect("account"),
            b"clients/07-tendermint-0/clientState",
            height,
            false,
        )
        .await
        .expect("view_state");
    state.values[0].value.to_vec()
}
