//! Hermes 1.10.5 in the scale harness, so the first-packet figure at many channels has its counterpart from the
//! relayer operators run today, against the same chains in the same run.
//!
//! Configured from `benches/hermes/` as `benches/side_by_side.sh` configures it for throughput (push events,
//! clearing on start and every 5 blocks, 100 messages per transaction), relaying packets only: the channels are
//! already open.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;

use crate::process::free_port;

/// A Hermes home: its configuration and the `relayer` key of each chain, imported with `hermes keys add`.
pub struct HermesHome {
    home: PathBuf,
    config: PathBuf,
}

/// `hermes` from `HERMES_BIN`, else `~/.cargo/bin/hermes`, else the `PATH`.
pub fn hermes_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("HERMES_BIN") {
        return PathBuf::from(bin);
    }
    let cargo = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cargo/bin/hermes"))
        .filter(|p| p.exists());
    cargo.unwrap_or_else(|| PathBuf::from("hermes"))
}

/// The devnet's proof specs in Hermes's `proof_specs` notation (ics23 JSON, bytes in base64).
fn proof_specs() -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let specs: Vec<String> = devnet::proof_specs()
        .iter()
        .map(|s| {
            let leaf = s.leaf_spec.as_ref().expect("leaf spec");
            let inner = s.inner_spec.as_ref().expect("inner spec");
            format!(
                "{{\"leaf_spec\":{{\"hash\":{},\"prehash_key\":{},\"prehash_value\":{},\"length\":{},\"prefix\":\"{}\"}},\"inner_spec\":{{\"child_order\":{:?},\"child_size\":{},\"min_prefix_length\":{},\"max_prefix_length\":{},\"empty_child\":\"{}\",\"hash\":{}}},\"max_depth\":{},\"min_depth\":{},\"prehash_key_before_comparison\":{}}}",
                leaf.hash,
                leaf.prehash_key,
                leaf.prehash_value,
                leaf.length,
                b64(&leaf.prefix),
                inner.child_order,
                inner.child_size,
                inner.min_prefix_length,
                inner.max_prefix_length,
                b64(&inner.empty_child),
                inner.hash,
                s.max_depth,
                s.min_depth,
                s.prehash_key_before_comparison,
            )
        })
        .collect();
    format!("[{}]", specs.join(","))
}

impl HermesHome {
    /// Writes Hermes's configuration for `chains` under `dir` and imports each chain's `relayer` key.
    pub fn new(dir: &Path, chains: &[devnet::RunningChain]) -> Self {
        let home = dir.join("hermes-home");
        std::fs::create_dir_all(&home).expect("hermes home");
        let mut text = include_str!("../../hermes/global.toml")
            .replace("@LOG_LEVEL@", "info")
            .replace("@REST_PORT@", &free_port().to_string())
            .replace("@TELEMETRY_PORT@", &free_port().to_string());
        let specs = proof_specs();
        for chain in chains {
            text.push_str(
                &include_str!("../../hermes/chain.toml")
                    .replace("@ID@", &chain.chain_id())
                    .replace("@RPC@", &chain.rpc_url())
                    .replace("@GRPC@", &chain.grpc_url())
                    .replace("@WS@", &chain.websocket_url())
                    .replace("@PROOF_SPECS@", &specs),
            );
        }
        let config = dir.join("hermes.toml");
        std::fs::write(&config, text).expect("hermes config");
        let me = Self { home, config };
        for chain in chains {
            let relayer = chain.genesis.account("relayer").expect("relayer account");
            let file = dir.join(format!("{}-relayer.mnemonic", chain.chain_id()));
            std::fs::write(&file, &relayer.mnemonic).expect("mnemonic file");
            let out = me
                .command()
                .args([
                    "keys",
                    "add",
                    "--chain",
                    &chain.chain_id(),
                    "--mnemonic-file",
                ])
                .arg(&file)
                .stdin(Stdio::null())
                .output()
                .expect("hermes keys add");
            assert!(
                out.status.success(),
                "hermes keys add: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        me
    }

    /// `hermes --config <config>` with this home.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(hermes_bin());
        cmd.env("HOME", &self.home)
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    /// `hermes start`, ready to spawn.
    pub fn start(&self) -> Command {
        let mut cmd = self.command();
        cmd.arg("start");
        cmd
    }
}
