//! The NEAR backend: relayd's own NEAR light client and proof checks (pure), and access to a NEAR node and its
//! IBC contract (octopus-network `near-ibc` interface) over NEAR JSON-RPC.

pub mod backend;
pub mod bounded;
pub mod contract;
pub mod credentials;
pub mod endpoint;
pub mod event_history;
pub mod execution_proof;
pub mod factory;
pub mod head;
pub mod header;
pub mod light_client;
pub mod monitor;
pub mod rpc;
pub mod state_proof;
#[cfg(test)]
mod test_rpc;
pub mod trie;
pub mod tx;

use relayd_config::ChainConfig;

/// NEAR's block and state hash, for callers that name NEAR blocks (the CLI's `light init`).
pub use near_primitives::hash::CryptoHash;

/// Why a `[[chains]]` entry of type `near` could not be turned into a NEAR backend.
#[derive(Debug, thiserror::Error)]
pub enum NearSetupError {
    /// The entry is not a complete NEAR entry (validation reports which key is missing).
    #[error("{chain}: not a complete near chain entry (contract_account, signer_account and key_file or key_files are required)")]
    Incomplete {
        /// The chain.
        chain: String,
    },
    /// An account id is not a NEAR account id.
    #[error("{chain}: {key} {value:?} is not a NEAR account id: {reason}")]
    Account {
        /// The chain.
        chain: String,
        /// The config key.
        key: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The signer's key file was refused.
    #[error("{chain}: {source}")]
    Credentials {
        /// The chain.
        chain: String,
        /// Why.
        source: credentials::CredentialsError,
    },
    /// Two of `key_files` hold the same access key: they would share its nonce.
    #[error("{chain}: {file} holds the same access key as {first}; each of key_files must hold a key of its own")]
    SameKey {
        /// The chain.
        chain: String,
        /// The later file.
        file: std::path::PathBuf,
        /// The earlier file with that key.
        first: std::path::PathBuf,
    },
}

/// The NEAR backend of a configured chain: its endpoint and its transaction submitter, signing with the key file
/// of `signer_account`.
pub fn from_config(
    config: &ChainConfig,
) -> Result<(endpoint::NearEndpoint, tx::NearTxSubmitter), NearSetupError> {
    let chain = config.id.to_string();
    let settings = config.near().ok_or_else(|| NearSetupError::Incomplete {
        chain: chain.clone(),
    })?;
    let contract: near_primitives::types::AccountId = settings.contract_account.parse().map_err(
        |e: near_primitives::account::id::ParseAccountError| NearSetupError::Account {
            chain: chain.clone(),
            key: "contract_account",
            value: settings.contract_account.clone(),
            reason: e.to_string(),
        },
    )?;
    let signer = credentials::load_signer(&settings.key_file, Some(&settings.signer_account))
        .map_err(|source| NearSetupError::Credentials {
            chain: chain.clone(),
            source,
        })?;
    let rpc = rpc::NearRpc::of_chain(config);
    let endpoint = endpoint::NearEndpoint::new(rpc.clone(), contract.clone());
    let submitter = tx::NearTxSubmitter::new(rpc, signer, contract, tx::NearTxConfig::default());
    Ok((endpoint, submitter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use near_crypto::{KeyType, SecretKey};
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn config_with_key(key_file: &Path) -> relayd_config::Config {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/config/cosmos-near.toml");
        let text = std::fs::read_to_string(&path).expect("fixture").replace(
            "/etc/relayd/near/relayer.test.near.json",
            &key_file.display().to_string(),
        );
        relayd_config::Config::parse(&text, &path).expect("valid config")
    }

    fn key_file(dir: &Path, account: &str, mode: u32) -> std::path::PathBuf {
        let secret = SecretKey::from_seed(KeyType::ED25519, account);
        let body = serde_json::json!({
            "account_id": account,
            "public_key": secret.public_key().to_string(),
            "private_key": secret.to_string(),
        });
        let path = dir.join(format!("{account}.json"));
        std::fs::write(&path, body.to_string()).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_configured_near_chain_becomes_an_endpoint_and_a_submitter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_with_key(&key_file(dir.path(), "relayer.test.near", 0o600));
        let near = config
            .chains
            .iter()
            .find(|c| c.id.to_string() == "near-localnet")
            .expect("near chain");
        let (endpoint, submitter) = from_config(near).expect("backend");
        assert_eq!(endpoint.contract().as_str(), "ibc.test.near");
        assert_eq!(submitter.account().as_str(), "relayer.test.near");

        let cosmos = config
            .chains
            .iter()
            .find(|c| c.id.to_string() == "ibc-0")
            .expect("cosmos");
        assert!(matches!(
            from_config(cosmos),
            Err(NearSetupError::Incomplete { .. })
        ));

        let open = config_with_key(&key_file(dir.path(), "open.test.near", 0o644));
        let near = open
            .chains
            .iter()
            .find(|c| c.id.to_string() == "near-localnet")
            .expect("near");
        assert!(matches!(
            from_config(near),
            Err(NearSetupError::Credentials { .. })
        ));
    }
}
