//! `relayd keys add|list|delete|balance`: the signing keys relayd uses on each chain, kept in `<data_dir>/keys`.

use std::process::ExitCode;

use relayd_actors::keys::{KeyInfo, KeySource, KeyStore};
use relayd_config::ChainType;
use serde_json::json;

use crate::cli::{Cli, KeysCommand, EXIT_CONFIG, EXIT_RUNTIME};
use crate::commands::config::load;
use crate::commands::data_dir;
use crate::commands::fail;

/// Runs a `keys` subcommand.
pub fn run(cli: &Cli, command: &KeysCommand) -> ExitCode {
    let path = cli.config_path();
    let config = match load(&path, false) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let store = match KeyStore::open(&data_dir(&config, &path).join("keys")) {
        Ok(store) => store,
        Err(e) => return fail(&e.to_string(), EXIT_RUNTIME),
    };
    match command {
        KeysCommand::Add {
            chain,
            mnemonic_file,
            hd_path,
            key_file,
            name,
            out,
        } => {
            let Some(chain_config) = config.chains.iter().find(|c| c.id.as_str() == chain) else {
                return fail(
                    &format!("chain {chain} is not in {}", path.display()),
                    EXIT_CONFIG,
                );
            };
            let Some(cosmos) = chain_config.cosmos() else {
                let msg = match chain_config.chain_type {
                    ChainType::Near => {
                        format!("chain {chain} is a NEAR chain; its key is the config's key_file")
                    }
                    ChainType::Cosmos => format!("chain {chain} lacks account_prefix or key_name"),
                };
                return fail(&msg, EXIT_CONFIG);
            };
            let source = match (mnemonic_file, key_file) {
                (Some(file), None) => KeySource::Mnemonic { file, hd_path },
                (None, Some(file)) => KeySource::KeyFile(file),
                _ => {
                    return fail(
                        "give exactly one of --mnemonic-file or --key-file",
                        EXIT_CONFIG,
                    )
                }
            };
            let added = match name.as_deref() {
                None => store.add(chain, &cosmos.key_name, &cosmos.account_prefix, source),
                Some(n) if n == cosmos.key_name => {
                    store.add(chain, n, &cosmos.account_prefix, source)
                }
                Some(n) if cosmos.key_names.iter().any(|k| k == n) => {
                    store.add_extra(chain, n, &cosmos.account_prefix, source)
                }
                Some(n) => {
                    return fail(
                        &format!("{n:?} is not one of chain {chain}'s key_names"),
                        EXIT_CONFIG,
                    )
                }
            };
            match added {
                Ok(info) => {
                    print_keys(&[info], out.json);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string(), EXIT_RUNTIME),
            }
        }
        KeysCommand::List { out } => match store.list() {
            Ok(keys) => {
                print_keys(&keys, out.json);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string(), EXIT_RUNTIME),
        },
        KeysCommand::Delete { chain, out } => match store.delete(chain) {
            Ok(info) => {
                print_keys(&[info], out.json);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string(), EXIT_RUNTIME),
        },
        // The key's balance is `query balance` with the relayer's own address.
        KeysCommand::Balance { chain, denom, out } => crate::commands::query::run(
            cli,
            &crate::cli::QueryGroup::Balance(crate::cli::BalanceArgs {
                chain: chain.clone(),
                address: None,
                denom: denom.clone(),
                out: *out,
            }),
        ),
    }
}

fn print_keys(keys: &[KeyInfo], json_output: bool) {
    if json_output {
        println!("{}", json!(keys));
    } else {
        for key in keys {
            println!("{}\t{}\t{}", key.chain_id, key.name, key.address);
        }
    }
}
