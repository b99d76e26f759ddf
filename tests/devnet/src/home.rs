//! The chain's home folder: the genesis accounts' keys and a description of the running chain, so a relayer
//! and test clients outside the process can sign and connect.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::genesis::{Genesis, HD_PATH};

/// Errors while writing the home folder.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct HomeError {
    path: PathBuf,
    source: std::io::Error,
}

#[derive(Serialize)]
struct KeyFile<'a> {
    name: &'a str,
    address: &'a str,
    mnemonic: &'a str,
    hd_path: &'a str,
    /// Hex of the raw secp256k1 private key.
    private_key: String,
}

/// Where a running chain listens, written as `chain.json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ChainInfo {
    /// The chain id.
    pub chain_id: String,
    /// CometBFT JSON-RPC address, `http://host:port`.
    pub rpc_addr: String,
    /// WebSocket address, `ws://host:port/websocket`.
    pub websocket_addr: String,
    /// gRPC address, `http://host:port`.
    pub grpc_addr: String,
    /// The fee and staking denomination.
    pub denom: String,
    /// Minimum gas price in `denom`.
    pub min_gas_price: f64,
    /// Key file of each genesis account, by name.
    pub accounts: Vec<(String, String)>,
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    let err = |source| HomeError {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)
}

/// Writes `keys/<name>.json` (mode 0600) for every genesis account and `chain.json`, into `home`.
pub fn write_home(home: &Path, genesis: &Genesis, info: &ChainInfo) -> Result<(), HomeError> {
    let keys = home.join("keys");
    fs::create_dir_all(&keys).map_err(|source| HomeError {
        path: keys.clone(),
        source,
    })?;
    for account in &genesis.accounts {
        let file = KeyFile {
            name: &account.name,
            address: &account.address,
            mnemonic: &account.mnemonic,
            hd_path: HD_PATH,
            private_key: hex::encode(account.private_key),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| HomeError {
            path: keys.clone(),
            source: e.into(),
        })?;
        write_private(&keys.join(format!("{}.json", account.name)), &json)?;
    }
    let json = serde_json::to_vec_pretty(info).map_err(|e| HomeError {
        path: home.to_owned(),
        source: e.into(),
    })?;
    write_private(&home.join("chain.json"), &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::GenesisOptions;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_written_private_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = Genesis::build(&GenesisOptions {
            seed: Some("home".into()),
            ..Default::default()
        })
        .unwrap();
        let info = ChainInfo {
            chain_id: "ibc-0".into(),
            rpc_addr: "http://127.0.0.1:1".into(),
            websocket_addr: "ws://127.0.0.1:1/websocket".into(),
            grpc_addr: "http://127.0.0.1:2".into(),
            denom: "stake".into(),
            min_gas_price: 0.001,
            accounts: vec![],
        };
        write_home(dir.path(), &genesis, &info).unwrap();
        let path = dir.path().join("keys/relayer.json");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let key: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(key["address"], genesis.accounts[0].address.as_str());
        assert_eq!(key["mnemonic"].as_str().unwrap().split(' ').count(), 24);
        let back: ChainInfo =
            serde_json::from_slice(&fs::read(dir.path().join("chain.json")).unwrap()).unwrap();
        assert_eq!(back, info);
    }
}
