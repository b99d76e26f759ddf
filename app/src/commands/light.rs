//! `relayd light init`: trust a chain's header at a height on the operator's word (its hash), after checking
//! that the node serves exactly that header with a valid commit. Later verification starts from it.

use std::process::ExitCode;

use relayd_actors::chain::cosmos::light_client::light_init;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
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
    if chain_config.cosmos().is_none() {
        return fail(
            &format!("chain {chain}: light init supports Cosmos chains"),
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
    let url = chain_config.rpc_addr.to_string();
    let result = actix_rt::System::new().block_on(async {
        let rpc = CosmosRpc::connect(chain, &url).await?;
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
