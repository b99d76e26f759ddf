//! The checks `relayd start` makes before it contacts any node, run by `config validate` too: the files the
//! configuration names exist and are private, every chain has its signing key, the data directory can be one.
//! Each problem is reported at the key that names it.

use std::path::Path;

use relayd_actors::keys::KeyStore;
use relayd_config::{ChainType, Config, ConfigError, KeyPath};

/// Every problem with the files and keys `config` (read from `file`, whose text is `text`) needs.
pub fn files(config: &Config, file: &Path, text: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut report = |key: KeyPath, message: String| {
        errors.push(ConfigError::at(file, text, &key, message));
    };
    let config_dir = file.parent().unwrap_or_else(|| Path::new("."));

    let data_dir = crate::commands::data_dir(config, file);
    let data_key = KeyPath::root().key("global").key("data_dir");
    if data_dir.exists() && !data_dir.is_dir() {
        report(
            data_key.clone(),
            format!("{} exists and is not a folder", data_dir.display()),
        );
    }

    if let Some(token_file) = &config.admin.token_file {
        let path = config_dir.join(token_file);
        if let Err(reason) = crate::admin::read_token(&path) {
            report(
                KeyPath::root().key("admin").key("token_file"),
                format!("{}: {reason}", path.display()),
            );
        }
    }

    let keys_dir = data_dir.join("keys");
    for (i, chain) in config.chains.iter().enumerate() {
        let at = KeyPath::root().key("chains").index(i);
        match chain.chain_type {
            ChainType::Cosmos => {
                let key = KeyStore::existing(&keys_dir)
                    .and_then(|store| store.signing_key(chain.id.as_str()));
                match (key, chain.cosmos()) {
                    (Err(e), _) => report(
                        at.key("key_name"),
                        format!("the signing key of chain {}: {e}", chain.id),
                    ),
                    // The key store holds one key per chain: the file's name and prefix must be that key's, or
                    // relayd would sign with another key than the file says.
                    (Ok((info, _)), Some(cosmos)) => {
                        if info.name != cosmos.key_name {
                            report(
                                at.key("key_name"),
                                format!(
                                    "the key stored for chain {} is named {:?}; add this one with `relayd keys add --chain {}`",
                                    chain.id, info.name, chain.id
                                ),
                            );
                        }
                        let prefix = format!("{}1", cosmos.account_prefix);
                        if !info.address.starts_with(&prefix) {
                            report(
                                at.key("account_prefix"),
                                format!(
                                    "the key stored for chain {} has address {}, not one of prefix {:?}; add the key again with `relayd keys add --chain {}`",
                                    chain.id, info.address, cosmos.account_prefix, chain.id
                                ),
                            );
                        }
                    }
                    (Ok(_), None) => {}
                }
                // The further signers of `key_names`, each in a file of its own.
                for (j, name) in chain.key_list().iter().enumerate().skip(1) {
                    let key = KeyStore::existing(&keys_dir)
                        .and_then(|store| store.extra_signing_key(chain.id.as_str(), name));
                    if let Err(e) = key {
                        report(
                            at.key("key_names").index(j),
                            format!(
                                "the signing key {name:?} of chain {}: {e}; add it with `relayd keys add --chain {} --name {name}`",
                                chain.id, chain.id
                            ),
                        );
                    }
                }
            }
            ChainType::Near => {
                let Some(settings) = chain.near() else {
                    continue;
                };
                // Each access key's file: readable by its owner only, a key of the signer account, and a key no
                // other file holds (two files of one key would share its nonce).
                let mut keys = Vec::new();
                for (j, file) in settings.key_files.iter().enumerate() {
                    let key = if chain.key_files.is_some() {
                        at.key("key_files").index(j)
                    } else {
                        at.key("key_file")
                    };
                    match relayd_actors::chain::near::credentials::load_signer(
                        file,
                        Some(&settings.signer_account),
                    ) {
                        Err(e) => report(key, e.to_string()),
                        Ok(signer) => {
                            let public = signer.public_key();
                            if let Some((first, _)) = keys.iter().find(|(_, k)| *k == public) {
                                report(
                                    key,
                                    format!(
                                        "holds the same access key as key_files[{first}]; each file must hold a key of its own"
                                    ),
                                );
                            }
                            keys.push((j, public));
                        }
                    }
                }
            }
        }
    }
    errors
}
