//! `relayd start` between a Cosmos chain and NEAR as an operator runs it: both devnets are separate processes (the
//! `devnet` binary, `devnet near` for NEAR), set up only through relayd's commands (`keys add`, `light init`,
//! `create connection|channel`), and users on each chain send 500 ICS-20 transfers to the other while relayd is
//! SIGKILLed three times mid-stream and restarted. Afterwards nothing is pending on either end, every packet has
//! exactly one record, acknowledged, and the vouchers and escrows on both chains are exactly the amounts sent.
//!
//! The `devnet` binary is built by `cargo test --workspace` (and `cargo build -p devnet`); it is found beside the
//! `relayd` binary under test.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::{add_keys, eventually, log_has, BIN};
use support::packet::{escrow_address, voucher_denom};

/// Rounds of sending; relayd is SIGKILLed in the middle of every round but the last.
const ROUNDS: usize = 4;
/// Transfers each way per round: 500 each way in all.
const PER_ROUND: usize = 125;
/// What each Cosmos → NEAR transfer carries, in `stake`.
const STAKE_EACH: u128 = 3;
/// What each NEAR → Cosmos transfer carries, in `usdc.devnet`.
const USDC_EACH: u128 = 2;

/// A devnet process, SIGKILLed when dropped; its stdout stays open so it never writes into a closed pipe.
struct Devnet {
    child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `devnet args…` with its log in `log`, once it says it runs.
fn devnet(args: &[&str], log: &Path) -> Devnet {
    let bin = Path::new(BIN).with_file_name("devnet");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p devnet` (cargo test --workspace does)",
        bin.display()
    );
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains(" running: rpc "), "devnet {args:?}: {first}");
    Devnet {
        child,
        _stdout: lines,
    }
}

/// Keeps the test's folder (relayd's and the devnets' logs, the state) when the test fails, and says where.
struct KeepOnFailure(Option<tempfile::TempDir>);

impl Drop for KeepOnFailure {
    fn drop(&mut self) {
        if let (true, Some(dir)) = (std::thread::panicking(), self.0.take()) {
            eprintln!(
                "the test's logs and state are kept in {}",
                dir.keep().display()
            );
        }
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `relayd -c config args… --json` on a blocking thread, which must succeed; its output.
async fn json(config: &Path, args: &[&str]) -> Value {
    let config = config.to_path_buf();
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.push("--json".into());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::relayd(&config, &args);
        assert!(
            out.status.success(),
            "relayd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON output")
    })
    .await
    .unwrap()
}

/// `relayd query balance` of one denomination of `address` on `chain`.
async fn balance(config: &Path, chain: &str, address: &str, denom: &str) -> u128 {
    let doc = json(
        config,
        &[
            "query",
            "balance",
            "--chain",
            chain,
            "--address",
            address,
            "--denom",
            denom,
        ],
    )
    .await;
    doc["balances"]
        .as_array()
        .expect("balances")
        .iter()
        .find(|b| b["denom"] == denom)
        .map_or(0, |b| b["amount"].as_str().unwrap().parse().unwrap())
}

/// A relayd configuration of ibc-0 (Cosmos key `relayer`, added from `cosmos_key`) and of the NEAR chain signed
/// for by `near_signer` with `near_key`, keeping its state in `data_dir`.
struct Setup<'a> {
    cosmos: &'a Value,
    near: &'a Value,
    near_home: &'a Path,
}

impl Setup<'_> {
    fn write(&self, path: &Path, data_dir: &str, cosmos_key: &Path, near_signer: &str) {
        let near_id = self.near["chain_id"].as_str().unwrap();
        let key_file = self
            .near_home
            .join(self.near["accounts"][near_signer].as_str().unwrap());
        let text = format!(
            "[global]\ntimeout = \"10s\"\ndata_dir = \"{data_dir}\"\n\n[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"{}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_gas = 50000000\nmax_block_time = \"2s\"\nproof_specs = [\"jmt\", \"jmt\"]\n\n[[chains]]\nid = \"{near_id}\"\ntype = \"near\"\nrpc_addr = \"{}\"\ncontract_account = \"{}\"\nsigner_account = \"{near_signer}\"\nkey_file = \"{}\"\nmax_block_time = \"2s\"\ntrusting_period = \"1h\"\n",
            self.cosmos["rpc_addr"].as_str().unwrap(),
            self.near["rpc_addr"].as_str().unwrap(),
            self.near["ibc_contract"].as_str().unwrap(),
            key_file.display()
        );
        std::fs::write(path, text).unwrap();
        add_keys(path, &[("ibc-0".to_owned(), cosmos_key.to_path_buf())]);
    }
}

/// The raw key of devnet account `name` of the Cosmos home, as a key file `relayd keys add` reads.
fn cosmos_key(home: &Path, name: &str, out: &Path) -> PathBuf {
    let key = read_json(&home.join(format!("keys/{name}.json")));
    std::fs::write(
        out,
        format!(
            "{{\"private_key\": \"{}\"}}",
            key["private_key"].as_str().unwrap()
        ),
    )
    .unwrap();
    out.to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_relaying_survives_three_sigkills_and_every_packet_completes_exactly_once() {
    let kept = KeepOnFailure(Some(tempfile::tempdir().unwrap()));
    let dir = kept.0.as_ref().unwrap();
    let (cosmos_home, near_home) = (dir.path().join("cosmos"), dir.path().join("near"));
    let _cosmos = devnet(
        &[
            "--chain-id",
            "ibc-0",
            "--rpc-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--block-time",
            "200ms",
            "--home",
            cosmos_home.to_str().unwrap(),
        ],
        &dir.path().join("devnet-cosmos.log"),
    );
    let near_process = devnet(
        &[
            "near",
            "--rpc-addr",
            "127.0.0.1:0",
            "--block-time",
            "200ms",
            "--epoch-length",
            "20",
            "--home",
            near_home.to_str().unwrap(),
        ],
        &dir.path().join("devnet-near.log"),
    );
    let cosmos = read_json(&cosmos_home.join("chain.json"));
    let near = read_json(&near_home.join("near.json"));
    let near_id = near["chain_id"].as_str().unwrap().to_owned();
    let near_relayer = near["relayer"].as_str().unwrap().to_owned();
    let near_user = "user0.devnet";
    let cosmos_user = cosmos["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a[0].as_str().unwrap())
        .find(|name| *name != "relayer")
        .unwrap()
        .to_owned();
    let cosmos_user_address = read_json(&cosmos_home.join(format!("keys/{cosmos_user}.json")))
        ["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let setup = Setup {
        cosmos: &cosmos,
        near: &near,
        near_home: &near_home,
    };
    // relayd's service configuration, and the users' own (another key on each chain, another data dir) for
    // `relayd tx transfer`, so the users send while the service relays with its own accounts.
    let config = dir.path().join("relayd.toml");
    let relayer_key = cosmos_key(&cosmos_home, "relayer", &dir.path().join("relayer.key"));
    setup.write(&config, "data", &relayer_key, &near_relayer);
    let users = dir.path().join("users.toml");
    let user_key = cosmos_key(&cosmos_home, &cosmos_user, &dir.path().join("user.key"));
    setup.write(&users, "users-data", &user_key, near_user);

    // The operator vouches for a NEAR block, then opens a transfer channel with relayd.
    let near_rpc =
        relayd_actors::chain::near::rpc::NearRpc::new(&near_id, near["rpc_addr"].as_str().unwrap());
    eventually("NEAR is past height 7", || async {
        near_rpc
            .block(None)
            .await
            .is_ok_and(|b| b.header.height >= 7)
    })
    .await;
    let hash = near_rpc
        .block(Some(5))
        .await
        .unwrap()
        .header
        .hash
        .to_string();
    json(
        &config,
        &[
            "light", "init", "--chain", &near_id, "--hash", &hash, "--height", "5",
        ],
    )
    .await;
    let conn = json(
        &config,
        &[
            "create",
            "connection",
            "--a-chain",
            "ibc-0",
            "--b-chain",
            &near_id,
        ],
    )
    .await;
    let cosmos_conn = conn["a"]["connection_id"].as_str().unwrap().to_owned();
    let chan = json(
        &config,
        &[
            "create",
            "channel",
            "--a-chain",
            "ibc-0",
            "--a-connection",
            &cosmos_conn,
            "--a-port",
            "transfer",
        ],
    )
    .await;
    let cosmos_chan = chan["a"]["channel_id"].as_str().unwrap().to_owned();
    let near_chan = chan["b"]["channel_id"].as_str().unwrap().to_owned();
    // The path goes into the service's configuration.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace(
            "id = \"ibc-0\"\n",
            &format!(
                "id = \"ibc-0\"\nclient_ids = [\"{}\"]\n",
                conn["a"]["client_id"].as_str().unwrap()
            ),
        )
        .replace(
            &format!("id = \"{near_id}\"\n"),
            &format!(
                "id = \"{near_id}\"\nclient_ids = [\"{}\"]\n",
                conn["b"]["client_id"].as_str().unwrap()
            ),
        );
    let text = format!(
        "{text}\n[[connections]]\n[connections.src]\nclient_id = \"{}\"\nconnection_id = \"{cosmos_conn}\"\n[connections.dest]\nclient_id = \"{}\"\nconnection_id = \"{}\"\n[[connections.paths]]\nsrc_port = \"transfer\"\nsrc_channel = \"{cosmos_chan}\"\n",
        conn["a"]["client_id"].as_str().unwrap(),
        conn["b"]["client_id"].as_str().unwrap(),
        conn["b"]["connection_id"].as_str().unwrap(),
    );
    std::fs::write(&config, text).unwrap();

    let near_escrow = format!(
        "{near_chan}.transfer.escrow.{}",
        near["ibc_contract"].as_str().unwrap()
    );
    let near_user_usdc = balance(&config, &near_id, near_user, "usdc.devnet").await;
    let count = PER_ROUND.to_string();
    let (stake, usdc) = (
        format!("{STAKE_EACH}stake"),
        format!("{USDC_EACH}usdc.devnet"),
    );
    let mut relayd = None;
    for round in 0..ROUNDS {
        let log = dir.path().join(format!("relayd-{round}.log"));
        let service = common::start(&config, &log);
        eventually("relayd started", || async {
            log_has(&log, "relayd started")
        })
        .await;
        // The users send both ways while relayd runs; in every round but the last relayd is SIGKILLed while the
        // sends are still going, so some packets are in flight and some are sent while it is down.
        let to_near_args = [
            "tx",
            "transfer",
            "--src-chain",
            "ibc-0",
            "--dst-chain",
            &near_id,
            "--channel",
            &cosmos_chan,
            "--amount",
            &stake,
            "--count",
            &count,
        ];
        let to_cosmos_args = [
            "tx",
            "transfer",
            "--src-chain",
            &near_id,
            "--dst-chain",
            "ibc-0",
            "--channel",
            &near_chan,
            "--amount",
            &usdc,
            "--count",
            &count,
        ];
        let send_cosmos = json(&users, &to_near_args);
        let send_near = json(&users, &to_cosmos_args);
        let last = round + 1 == ROUNDS;
        // The last round's service keeps running; the others are killed 400 ms into the sends.
        let crash = async move {
            let mut service = service;
            if last {
                return Some(service);
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
            service.kill().unwrap();
            service.wait().unwrap();
            None
        };
        let ((to_near, to_cosmos), running) =
            tokio::join!(async { tokio::join!(send_cosmos, send_near) }, crash);
        assert_eq!(to_near["receiver"], near_user);
        assert_eq!(to_near["sequences"].as_array().unwrap().len(), PER_ROUND);
        assert_eq!(to_cosmos["receiver"], cosmos_user_address.as_str());
        assert_eq!(to_cosmos["sequences"].as_array().unwrap().len(), PER_ROUND);
        if let Some(service) = running {
            relayd = Some((service, log));
        }
    }
    let (mut service, log) = relayd.unwrap();

    let total = (ROUNDS * PER_ROUND) as u128;
    let near_voucher = format!("transfer/{near_chan}/stake");
    let cosmos_voucher = voucher_denom("transfer", &cosmos_chan, "usdc.devnet");
    eventually("every transfer arrives", || async {
        balance(&config, &near_id, near_user, &near_voucher).await == total * STAKE_EACH
            && balance(&config, "ibc-0", &cosmos_user_address, &cosmos_voucher).await
                == total * USDC_EACH
    })
    .await;
    for (chain, channel) in [("ibc-0", &cosmos_chan), (near_id.as_str(), &near_chan)] {
        eventually(&format!("nothing pending on {chain}"), || async {
            let doc = json(
                &config,
                &["query", "packet", "pending", chain, "transfer", channel],
            )
            .await;
            doc["unreceived_packets"] == serde_json::json!([])
                && doc["unrelayed_acks"] == serde_json::json!([])
        })
        .await;
    }
    // Exact escrows on both chains, and the NEAR user paid exactly the usdc sent.
    let cosmos_escrow = escrow_address("transfer", &cosmos_chan);
    assert_eq!(
        balance(&config, "ibc-0", &cosmos_escrow, "stake").await,
        total * STAKE_EACH
    );
    assert_eq!(
        balance(&config, &near_id, &near_escrow, "usdc.devnet").await,
        total * USDC_EACH
    );
    assert_eq!(
        balance(&config, &near_id, near_user, "usdc.devnet").await,
        near_user_usdc - total * USDC_EACH
    );

    // A graceful stop, then exactly once: one record per packet, each acknowledged, none dead-lettered.
    common::stop(&mut service);
    assert!(log_has(&log, "relayd stopped"));
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 2 * ROUNDS * PER_ROUND);
    drop(near_process);
}
