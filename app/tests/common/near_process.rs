//! The NEAR end-to-end tests that run both devnets as separate processes (the `devnet` binary, `devnet near` for
//! NEAR), set up only through relayd's commands as an operator does: `keys add`, `light init`,
//! `create connection|channel`, and the path in the configuration.
//!
//! The `devnet` binary is built by `cargo test --workspace` (and `cargo build -p devnet`); it is found beside the
//! `relayd` binary under test.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

use crate::common::{self, add_keys, eventually, BIN};

/// A devnet process, SIGKILLed when dropped; its stdout stays open so it never writes into a closed pipe.
pub struct Devnet {
    /// The process.
    pub child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `devnet args…` with its log in `log`, once it says it runs.
pub fn devnet(args: &[&str], log: &Path) -> Devnet {
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
pub struct KeepOnFailure(pub Option<tempfile::TempDir>);

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

/// A JSON file.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `relayd -c config args… --json` on a blocking thread, which must succeed; its output.
pub async fn json(config: &Path, args: &[&str]) -> Value {
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
pub async fn balance(config: &Path, chain: &str, address: &str, denom: &str) -> u128 {
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
pub struct Setup<'a> {
    /// The Cosmos devnet's `chain.json`.
    pub cosmos: &'a Value,
    /// The NEAR devnet's `near.json`.
    pub near: &'a Value,
    /// The NEAR devnet's home.
    pub near_home: &'a Path,
}

impl Setup<'_> {
    /// Writes the configuration at `path`.
    pub fn write(&self, path: &Path, data_dir: &str, cosmos_key: &Path, near_signer: &str) {
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
pub fn cosmos_key(home: &Path, name: &str, out: &Path) -> PathBuf {
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

/// Both devnets running, relayd configured for a transfer channel between them, and a second configuration for
/// the users (another key on each chain, another data dir) so they send with `relayd tx transfer` while the service
/// relays with its own accounts.
pub struct Stage {
    /// The Cosmos devnet process.
    pub cosmos_process: Devnet,
    /// The NEAR devnet process.
    pub near_process: Devnet,
    /// The NEAR devnet's home.
    pub near_home: PathBuf,
    /// The NEAR devnet's `near.json`.
    pub near: Value,
    /// The NEAR chain id.
    pub near_id: String,
    /// The NEAR user sending and receiving.
    pub near_user: String,
    /// The Cosmos user's address.
    pub cosmos_user_address: String,
    /// relayd's service configuration.
    pub config: PathBuf,
    /// The users' configuration.
    pub users: PathBuf,
    /// ibc-0's end of the transfer channel.
    pub cosmos_chan: String,
    /// NEAR's end of the transfer channel.
    pub near_chan: String,
}

impl Stage {
    /// Starts the devnets in `dir` (200 ms blocks, NEAR epochs of 20 blocks, `near_args` added to NEAR's command
    /// line), vouches for NEAR block 5, opens a transfer channel and writes both configurations.
    pub async fn start(dir: &Path, near_args: &[&str]) -> Self {
        let (cosmos_home, near_home) = (dir.join("cosmos"), dir.join("near"));
        let cosmos_process = devnet(
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
            &dir.join("devnet-cosmos.log"),
        );
        let mut args = vec![
            "near",
            "--rpc-addr",
            "127.0.0.1:0",
            "--block-time",
            "200ms",
            "--epoch-length",
            "20",
            "--home",
            near_home.to_str().unwrap(),
        ];
        args.extend_from_slice(near_args);
        let near_process = devnet(&args, &dir.join("devnet-near.log"));
        let cosmos = read_json(&cosmos_home.join("chain.json"));
        let near = read_json(&near_home.join("near.json"));
        let near_id = near["chain_id"].as_str().unwrap().to_owned();
        let near_relayer = near["relayer"].as_str().unwrap().to_owned();
        let near_user = "user0.devnet".to_owned();
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
        let config = dir.join("relayd.toml");
        let relayer_key = cosmos_key(&cosmos_home, "relayer", &dir.join("relayer.key"));
        setup.write(&config, "data", &relayer_key, &near_relayer);
        let users = dir.join("users.toml");
        let user_key = cosmos_key(&cosmos_home, &cosmos_user, &dir.join("user.key"));
        setup.write(&users, "users-data", &user_key, &near_user);

        // The operator vouches for a NEAR block, then opens a transfer channel with relayd.
        let near_rpc = relayd_actors::chain::near::rpc::NearRpc::new(
            &near_id,
            near["rpc_addr"].as_str().unwrap(),
        );
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
        Self {
            cosmos_process,
            near_process,
            near_home,
            near,
            near_id,
            near_user,
            cosmos_user_address,
            config,
            users,
            cosmos_chan,
            near_chan,
        }
    }

    /// The NEAR escrow account of the channel in the contract's ledger.
    pub fn near_escrow(&self) -> String {
        format!(
            "{}.transfer.escrow.{}",
            self.near_chan,
            self.near["ibc_contract"].as_str().unwrap()
        )
    }

    /// `relayd tx transfer` of `count` × `amount` from `src` (ibc-0 or NEAR) to the other chain's user, with the
    /// users' configuration; its JSON answer.
    pub async fn send(&self, src: &str, amount: &str, count: usize) -> Value {
        let (dst, channel) = if src == "ibc-0" {
            (self.near_id.as_str(), self.cosmos_chan.as_str())
        } else {
            ("ibc-0", self.near_chan.as_str())
        };
        let count = count.to_string();
        json(
            &self.users,
            &[
                "tx",
                "transfer",
                "--src-chain",
                src,
                "--dst-chain",
                dst,
                "--channel",
                channel,
                "--amount",
                amount,
                "--count",
                &count,
            ],
        )
        .await
    }

    /// Waits until neither end of the channel has a packet or acknowledgement left to relay.
    pub async fn wait_nothing_pending(&self) {
        for (chain, channel) in [
            ("ibc-0", &self.cosmos_chan),
            (self.near_id.as_str(), &self.near_chan),
        ] {
            eventually(&format!("nothing pending on {chain}"), || async {
                let doc = json(
                    &self.config,
                    &["query", "packet", "pending", chain, "transfer", channel],
                )
                .await;
                doc["unreceived_packets"] == serde_json::json!([])
                    && doc["unrelayed_acks"] == serde_json::json!([])
            })
            .await;
        }
    }
}
