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

impl NearPair {
    /// Starts both devnets with `block_time` and writes the configuration (the NEAR epoch is `epoch_length`).
    pub async fn start(block_time: Duration, epoch_length: u64) -> Self {
        let cosmos = devnet::start_chains(1, &devnet::ChainOptions::local("ibc", block_time))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut options = devnet::near::NearOptions::local(block_time);
        options.genesis.epoch_length = epoch_length;
        options.home = Some(dir.path().join("near"));
        let near = devnet::near::start(options).await.unwrap();
        let near_id = near.chain_id().to_owned();
        let relayer = near.genesis.relayer.account_id.to_string();
        let contract = near.genesis.ibc.account_id.to_string();
        let key_file = dir
            .path()
            .join("near")
            .join("keys")
            .join(format!("{relayer}.json"));
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
        // The devnet's store is a Jellyfish Merkle tree: its proof specs go into the clients relayd creates.
        let text = format!(
            "[global]\ntimeout = \"10s\"\ndata_dir = \"data\"\n\n[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"{}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_gas = 50000000\nmax_block_time = \"2s\"\nproof_specs = [\"jmt\", \"jmt\"]\n\n[[chains]]\nid = \"{near_id}\"\ntype = \"near\"\nrpc_addr = \"{}\"\ncontract_account = \"{contract}\"\nsigner_account = \"{relayer}\"\nkey_file = \"{}\"\nmax_block_time = \"2s\"\ntrusting_period = \"1h\"\n",
            cosmos[0].rpc_url(),
            near.rpc_url(),
            key_file.display()
        );
        std::fs::write(&config, &text).unwrap();
        add_keys(&config, &[("ibc-0".to_owned(), cosmos_key)]);
        Self {
            cosmos,
            near,
            near_id,
            contract,
            config,
            dir,
        }
    }

    /// `relayd args…` on a blocking thread (the devnets run on this runtime).
    pub async fn run(&self, args: &[&str]) -> Output {
        let config = self.config.clone();
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
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.run(&args).await;
        assert!(
            out.status.success(),
            "relayd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    /// The operator vouches for NEAR block `height` (`relayd light init`), once the chain is past it.
    pub async fn vouch(&self, height: u64) {
        self.near.wait_for_height(height + 2).await;
        let rpc = NearRpc::new(&self.near_id, &self.near.rpc_url());
        let hash = rpc.block(Some(height)).await.unwrap().header.hash;
        self.json(&[
            "light",
            "init",
            "--chain",
            &self.near_id,
            "--hash",
            &hash.to_string(),
            "--height",
            &height.to_string(),
        ])
        .await;
    }
}
