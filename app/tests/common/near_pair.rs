//! A Cosmos devnet chain (`ibc-0`) and a NEAR devnet with a relayd configuration of both, the relayer keys added
//! and, once [`NearPair::vouch`] ran, a trusted NEAR head (`relayd light init`), as an operator sets them up.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use relayd_actors::chain::near::rpc::NearRpc;

use crate::common::{add_keys, relayd};

/// The two devnets and relayd's configuration of them.
pub struct NearPair {
    /// The Cosmos devnet's nodes (one chain).
    pub cosmos: Vec<devnet::chain::RunningChain>,
    /// The NEAR devnet.
    pub near: devnet::near::RunningNear,
    /// The NEAR chain id.
    pub near_id: String,
    /// The IBC contract's account.
    pub contract: String,
    /// relayd's configuration file.
    pub config: PathBuf,
    /// The directory everything lives in.
    pub dir: tempfile::TempDir,
}

/// Starts a NEAR devnet with `block_time` and epoch `epoch_length`, its home under `home`.
pub async fn start_near(
    block_time: Duration,
    epoch_length: u64,
    home: PathBuf,
) -> devnet::near::RunningNear {
    let mut options = devnet::near::NearOptions::local(block_time);
    options.genesis.epoch_length = epoch_length;
    options.home = Some(home);
    devnet::near::start(options).await.unwrap()
}

impl NearPair {
    /// Starts both devnets with `block_time` and writes the configuration (the NEAR epoch is `epoch_length`).
    pub async fn start(block_time: Duration, epoch_length: u64) -> Self {
        let cosmos = devnet::start_chains(1, &devnet::ChainOptions::local("ibc", block_time))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let near = start_near(block_time, epoch_length, dir.path().join("near")).await;
        let near_id = near.chain_id().to_owned();
        let contract = near.genesis.ibc.account_id.to_string();
        let cosmos_key = dir.path().join("ibc-0-relayer.json");
        let account = cosmos[0].genesis.account("relayer").unwrap();
        std::fs::write(
            &cosmos_key,
            format!(
                "{{\"private_key\": \"{}\"}}",
                hex::encode(account.private_key)
            ),
        )
        .unwrap();
        let config = dir.path().join("relayd.toml");
        let pair = Self {
            cosmos,
            near,
            near_id,
            contract,
            config,
            dir,
        };
        pair.write_config(
            &pair.config,
            "data",
            &pair.near,
            &pair.dir.path().join("near"),
        );
        pair
    }

    /// Writes a configuration at `path` of ibc-0 and of `near` (whose home is `near_home`), keeping its state
    /// under `data_dir`, and adds ibc-0's relayer key to it.
    pub fn write_config(
        &self,
        path: &std::path::Path,
        data_dir: &str,
        near: &devnet::near::RunningNear,
        near_home: &std::path::Path,
    ) {
        let near_id = near.chain_id();
        let relayer = near.genesis.relayer.account_id.to_string();
        let contract = near.genesis.ibc.account_id.to_string();
        let key_file = near_home.join("keys").join(format!("{relayer}.json"));
        // The devnet's store is a Jellyfish Merkle tree: its proof specs go into the clients relayd creates.
        let text = format!(
            "[global]\ntimeout = \"10s\"\ndata_dir = \"{data_dir}\"\n\n[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"{}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_gas = 50000000\nmax_block_time = \"2s\"\nproof_specs = [\"jmt\", \"jmt\"]\n\n[[chains]]\nid = \"{near_id}\"\ntype = \"near\"\nrpc_addr = \"{}\"\ncontract_account = \"{contract}\"\nsigner_account = \"{relayer}\"\nkey_file = \"{}\"\nmax_block_time = \"2s\"\ntrusting_period = \"1h\"\n",
            self.cosmos[0].rpc_url(),
            near.rpc_url(),
            key_file.display()
        );
        std::fs::write(path, &text).unwrap();
        let cosmos_key = self.dir.path().join("ibc-0-relayer.json");
        add_keys(path, &[("ibc-0".to_owned(), cosmos_key)]);
    }

    /// `relayd args…` on a blocking thread (the devnets run on this runtime).
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with(&self.config, args).await
    }

    /// `relayd -c config args…` on a blocking thread.
    pub async fn run_with(&self, config: &std::path::Path, args: &[&str]) -> Output {
        let config = config.to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            relayd(&config, &args)
        })
        .await
        .expect("relayd ran")
    }

    /// `relayd args… --json`, which must succeed; its output.
    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        self.json_with(&self.config, args).await
    }

    /// `relayd -c config args… --json`, which must succeed; its output.
    pub async fn json_with(&self, config: &std::path::Path, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.run_with(config, &args).await;
        assert!(
            out.status.success(),
            "relayd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    /// The operator vouches for NEAR block `height` (`relayd light init`), once the chain is past it.
    pub async fn vouch(&self, height: u64) {
        self.vouch_with(&self.config, &self.near, height).await;
    }

    /// The operator vouches for block `height` of `near` in the state of configuration `config`.
    pub async fn vouch_with(
        &self,
        config: &std::path::Path,
        near: &devnet::near::RunningNear,
        height: u64,
    ) {
        near.wait_for_height(height + 2).await;
        let rpc = NearRpc::new(near.chain_id(), &near.rpc_url());
        let hash = rpc.block(Some(height)).await.unwrap().header.hash;
        let near_id = near.chain_id().to_owned();
        self.json_with(
            config,
            &[
                "light",
                "init",
                "--chain",
                &near_id,
                "--hash",
                &hash.to_string(),
                "--height",
                &height.to_string(),
            ],
        )
        .await;
    }
}
