//! `relayd light init`: trust a chain's header at a height on the operator's word (its hash), after checking
//! that the node serves exactly that header with a valid commit (Cosmos) or that the block and its epoch's
//! producers hash as NEAR commits to them (NEAR). Later verification starts from it.

use std::process::ExitCode;

use relayd_actors::chain::cosmos::light_client::light_init;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::near::backend::near_light_init;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::CryptoHash;
use serde_json::json;

use crate::cli::{Cli, OutputArgs, EXIT_CONFIG, EXIT_RUNTIME};
use crate::commands::config::load;
use crate::commands::data_dir;
use crate::commands::fail;
use crate::datadir::DataDir;

/// Runs `light init`.
pub fn init(cli: &Cli, chain: &str, hash: &str, height: u64, out: OutputArgs) -> ExitCode {
    let path = cli.config_path();
    let config = match load(&path, out.json) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let Some(chain_config) = config.chains.iter().find(|c| c.id.as_str() == chain) else {
        return fail(
            &format!("chain {chain} is not in {}", path.display()),
            EXIT_CONFIG,
        );
    };
    if chain_config.near().is_some() {
        return init_near(&config, &path, chain_config, hash, height, out);
    }
    if chain_config.cosmos().is_none() {
        return fail(
            &format!("chain {chain}: incomplete chain entry (run `relayd config validate`)"),
            EXIT_CONFIG,
        );
    }
    let Ok(hash) =
        tendermint::Hash::from_hex_upper(tendermint::hash::Algorithm::Sha256, &hash.to_uppercase())
    else {
        return fail(
            &format!("{hash:?} is not a 32-byte hex block hash"),
            EXIT_CONFIG,
        );
    };
    let dir = match DataDir::open(&data_dir(&config, &path)) {
        Ok(dir) => dir,
        Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    let result = actix_rt::System::new().block_on(async {
        let rpc = CosmosRpc::connect_endpoints(chain_config).await?;
        Ok::<_, Box<dyn std::error::Error>>(
            light_init(&rpc, &dir.store, chain, height, &hash).await?,
        )
    });
    match result {
        Ok(block) => {
            let header = &block.signed_header.header;
            if out.json {
                println!(
                    "{}",
                    json!({"chain": chain, "height": height, "hash": header.hash().to_string(), "time": header.time.to_rfc3339()})
                );
            } else {
                println!(
                    "{chain}: trusted height {height}, hash {}, time {}",
                    header.hash(),
                    header.time.to_rfc3339()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string(), EXIT_RUNTIME),
    }
}

/// `light init` on a NEAR chain: the block hash is NEAR's base58; the block's epoch producers are checked against
/// the epoch before (see `NearHead::from_trusted_block`).
fn init_near(
    config: &relayd_config::Config,
    path: &std::path::Path,
    chain: &relayd_config::ChainConfig,
    hash: &str,
    height: u64,
    out: OutputArgs,
) -> ExitCode {
    let id = chain.id.as_str();
    let Ok(hash) = hash.parse::<CryptoHash>() else {
        return fail(
            &format!("{hash:?} is not a base58 NEAR block hash"),
            EXIT_CONFIG,
        );
    };
    let dir = match DataDir::open(&data_dir(config, path)) {
        Ok(dir) => dir,
        Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    if let Err(e) = chain.primary_rpc() {
        return fail(&e.to_string(), EXIT_CONFIG);
    }
    let rpc = NearRpc::of_chain(chain);
    let result = actix_rt::System::new().block_on(near_light_init(&rpc, &dir.store, height, hash));
    match result {
        Ok(trusted) => {
            let lite = &trusted.head.inner_lite;
            if out.json {
                println!(
                    "{}",
                    json!({"chain": id, "height": lite.height, "hash": hash.to_string(), "epoch_id": lite.epoch_id.to_string(), "producers": trusted.epoch_bps.len()})
                );
            } else {
                println!(
                    "{id}: trusted height {}, hash {hash}, epoch {} ({} block producers)",
                    lite.height,
                    lite.epoch_id,
                    trusted.epoch_bps.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string(), EXIT_RUNTIME),
    }
}
