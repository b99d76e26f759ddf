//! relayd's key store: one signing key per chain, kept as a private file (mode 0600) in a private folder
//! (mode 0700). Private key material never reaches logs, errors or command output; only names and addresses do.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bip32::DerivationPath;
use cosmrs::crypto::secp256k1::SigningKey;
use serde::{Deserialize, Serialize};

/// The Cosmos HD path used when none is given.
pub const DEFAULT_HD_PATH: &str = "m/44'/118'/0'/0/0";

/// Key store errors. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The mnemonic is not a valid BIP-39 English phrase.
    #[error("the mnemonic in {0} is not a valid BIP-39 phrase")]
    Mnemonic(PathBuf),
    /// The HD path does not parse.
    #[error("invalid HD path {0:?}")]
    HdPath(String),
    /// A key file is not in a known format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// The chain already has a key.
    #[error("chain {0} already has a key; delete it first")]
    Exists(String),
    /// The chain has no key.
    #[error("no key for chain {0}")]
    Missing(String),
    /// A key file others than its owner may read.
    #[error("{path}: mode {mode:04o} lets other users read the key; run `chmod 600` on it")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key store folder does not exist.
    #[error("no key store at {0} (keys are added with `relayd keys add`)")]
    NoStore(PathBuf),
    /// An address could not be formed.
    #[error("cannot derive an address with prefix {0:?}")]
    Address(String),
}

/// A stored key as written to disk.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    name: String,
    chain_id: String,
    address: String,
    /// Hex of the 32-byte secp256k1 private key.
    private_key: String,
}

/// What `keys list` shows about a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The chain the key signs for.
    pub chain_id: String,
    /// The key's name (the chain's `key_name`).
    pub name: String,
    /// The account address.
    pub address: String,
}

/// Where a key comes from.
pub enum KeySource<'a> {
    /// A file holding a BIP-39 mnemonic, and the HD path to derive with.
    Mnemonic {
        /// The file.
        file: &'a Path,
        /// The derivation path.
        hd_path: &'a str,
    },
    /// A JSON key file with `private_key` (hex) or `mnemonic`, such as devnet writes.
    KeyFile(&'a Path),
}

/// A folder of per-chain key files.
pub struct KeyStore {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn derive(phrase: &str, hd_path: &str, origin: &Path) -> Result<[u8; 32], KeyError> {
    // bip39 rather than bip32's own Mnemonic: operators hold 12- to 24-word phrases, bip32 reads only 24.
    let mnemonic = bip39::Mnemonic::parse_in(bip39::Language::English, phrase.trim())
        .map_err(|_| KeyError::Mnemonic(origin.to_owned()))?;
    let path: DerivationPath = hd_path
        .parse()
        .map_err(|_| KeyError::HdPath(hd_path.to_owned()))?;
    let xprv = bip32::XPrv::derive_from_path(mnemonic.to_seed(""), &path)
        .map_err(|_| KeyError::HdPath(hd_path.to_owned()))?;
    Ok(xprv.private_key().to_bytes().into())
}

fn address_of(private_key: &[u8; 32], prefix: &str) -> Result<String, KeyError> {
    let key =
        SigningKey::from_slice(private_key).map_err(|_| KeyError::Address(prefix.to_owned()))?;
    key.public_key()
        .account_id(prefix)
        .map(|id| id.to_string())
        .map_err(|_| KeyError::Address(prefix.to_owned()))
}

impl KeyStore {
    /// The store in `dir`, created with mode 0700 if missing.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The store in `dir` as it is, for checks that must change nothing: the folder must exist.
    pub fn existing(dir: &Path) -> Result<Self, KeyError> {
        if !dir.is_dir() {
            return Err(KeyError::NoStore(dir.to_owned()));
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn file(&self, chain_id: &str) -> PathBuf {
        self.dir.join(format!("{chain_id}.json"))
    }

    /// The file of a chain's further signing key (the second and later of `key_names`); the chain's primary key
    /// is in [`Self::file`].
    fn extra_file(&self, chain_id: &str, name: &str) -> PathBuf {
        self.dir.join(format!("{chain_id}@{name}.json"))
    }

    /// Imports a key for `chain_id` under `name`, with addresses of `account_prefix`.
    pub fn add(
        &self,
        chain_id: &str,
        name: &str,
        account_prefix: &str,
        source: KeySource<'_>,
    ) -> Result<KeyInfo, KeyError> {
        self.add_at(self.file(chain_id), chain_id, name, account_prefix, source)
    }

    /// Imports a further signing key of `chain_id` (one of its `key_names` after the first) under `name`.
    pub fn add_extra(
        &self,
        chain_id: &str,
        name: &str,
        account_prefix: &str,
        source: KeySource<'_>,
    ) -> Result<KeyInfo, KeyError> {
        let path = self.extra_file(chain_id, name);
        let (info, what) = (
            self.add_at(path, chain_id, name, account_prefix, source),
            format!("{chain_id} (key {name:?})"),
        );
        info.map_err(|e| match e {
            KeyError::Exists(_) => KeyError::Exists(what),
            other => other,
        })
    }

    fn add_at(
        &self,
        path: PathBuf,
        chain_id: &str,
        name: &str,
        account_prefix: &str,
        source: KeySource<'_>,
    ) -> Result<KeyInfo, KeyError> {
        if path.exists() {
            return Err(KeyError::Exists(chain_id.to_owned()));
        }
        let private_key = match source {
            KeySource::Mnemonic { file, hd_path } => {
                let phrase = fs::read_to_string(file).map_err(io_err(file))?;
                derive(&phrase, hd_path, file)?
            }
            KeySource::KeyFile(file) => read_key_file(file)?,
        };
        let address = address_of(&private_key, account_prefix)?;
        let stored = StoredKey {
            name: name.to_owned(),
            chain_id: chain_id.to_owned(),
            address: address.clone(),
            private_key: hex::encode(private_key),
        };
        let json = serde_json::to_vec_pretty(&stored).map_err(|e| KeyError::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        file.write_all(&json).map_err(io_err(&path))?;
        Ok(KeyInfo {
            chain_id: chain_id.to_owned(),
            name: name.to_owned(),
            address,
        })
    }

    /// Every stored key, by chain id.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let path = entry.map_err(io_err(&self.dir))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let stored = read_stored(&path)?;
                keys.push(KeyInfo {
                    chain_id: stored.chain_id,
                    name: stored.name,
                    address: stored.address,
                });
            }
        }
        keys.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
        Ok(keys)
    }

    /// Removes the key of `chain_id`.
    pub fn delete(&self, chain_id: &str) -> Result<KeyInfo, KeyError> {
        let path = self.file(chain_id);
        if !path.exists() {
            return Err(KeyError::Missing(chain_id.to_owned()));
        }
        let stored = read_stored(&path)?;
        fs::remove_file(&path).map_err(io_err(&path))?;
        Ok(KeyInfo {
            chain_id: stored.chain_id,
            name: stored.name,
            address: stored.address,
        })
    }

    /// The signing key of `chain_id`, for the transaction builder.
    pub fn signing_key(&self, chain_id: &str) -> Result<(KeyInfo, SigningKey), KeyError> {
        self.signing_key_at(self.file(chain_id), chain_id)
    }

    /// A further signing key of `chain_id`, added with [`Self::add_extra`] under `name`.
    pub fn extra_signing_key(
        &self,
        chain_id: &str,
        name: &str,
    ) -> Result<(KeyInfo, SigningKey), KeyError> {
        let what = format!("{chain_id} (key {name:?})");
        self.signing_key_at(self.extra_file(chain_id, name), &what)
    }

    fn signing_key_at(
        &self,
        path: PathBuf,
        chain_id: &str,
    ) -> Result<(KeyInfo, SigningKey), KeyError> {
        if !path.exists() {
            return Err(KeyError::Missing(chain_id.to_owned()));
        }
        check_private(&path)?;
        let stored = read_stored(&path)?;
        let bytes = decode_private_key(&stored.private_key, &path)?;
        let key = SigningKey::from_slice(&bytes).map_err(|_| KeyError::Format {
            path: path.clone(),
            reason: "private_key is not a valid secp256k1 key".into(),
        })?;
        let info = KeyInfo {
            chain_id: stored.chain_id,
            name: stored.name,
            address: stored.address,
        };
        Ok((info, key))
    }
}

/// Refuses a key readable by group or others, as NEAR credentials are: it may already have leaked, and signing
/// with it would hide that.
fn check_private(path: &Path) -> Result<(), KeyError> {
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

fn read_stored(path: &Path) -> Result<StoredKey, KeyError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    // serde_json errors quote input near the failure; report only the position, never the content.
    serde_json::from_str(&text).map_err(|e| KeyError::Format {
        path: path.to_owned(),
        reason: format!(
            "not a relayd key file (line {}, column {})",
            e.line(),
            e.column()
        ),
    })
}

fn decode_private_key(text: &str, path: &Path) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Format {
        path: path.to_owned(),
        reason: "private_key is not hex".into(),
    })?;
    bytes.try_into().map_err(|_| KeyError::Format {
        path: path.to_owned(),
        reason: "private_key is not 32 bytes".into(),
    })
}

/// Reads a JSON key file with `private_key` (hex) or `mnemonic` (+ optional `hd_path`).
fn read_key_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| KeyError::Format {
        path: path.to_owned(),
        reason: format!("not JSON (line {}, column {})", e.line(), e.column()),
    })?;
    if let Some(hex_key) = doc.get("private_key").and_then(|v| v.as_str()) {
        return decode_private_key(hex_key, path);
    }
    if let Some(phrase) = doc.get("mnemonic").and_then(|v| v.as_str()) {
        let hd_path = doc
            .get("hd_path")
            .and_then(|v| v.as_str())
            .unwrap_or(DEFAULT_HD_PATH);
        return derive(phrase, hd_path, path);
    }
    Err(KeyError::Format {
        path: path.to_owned(),
        reason: "expected a `private_key` (hex) or `mnemonic` field".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid BIP-39 test phrase (all-zero entropy), not a secret.
    const PHRASE: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    #[test]
    fn mnemonic_and_key_file_imports_agree_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(&dir.path().join("keys")).unwrap();
        let mnemonic = dir.path().join("m.txt");
        fs::write(&mnemonic, format!("{PHRASE}\n")).unwrap();
        let a = store
            .add(
                "ibc-0",
                "relayer",
                "cosmos",
                KeySource::Mnemonic {
                    file: &mnemonic,
                    hd_path: DEFAULT_HD_PATH,
                },
            )
            .unwrap();
        assert!(a.address.starts_with("cosmos1"));
        let mode = fs::metadata(store.file("ibc-0"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(dir.path().join("keys"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);

        let key_file = dir.path().join("k.json");
        fs::write(&key_file, format!("{{\"mnemonic\": \"{PHRASE}\"}}")).unwrap();
        let b = store
            .add("ibc-1", "relayer", "cosmos", KeySource::KeyFile(&key_file))
            .unwrap();
        assert_eq!(a.address, b.address, "same phrase, same key");

        let (info, key) = store.signing_key("ibc-1").unwrap();
        assert_eq!(
            key.public_key().account_id("cosmos").unwrap().to_string(),
            info.address
        );
        assert_eq!(store.list().unwrap().len(), 2);
        assert!(matches!(
            store.add("ibc-0", "x", "cosmos", KeySource::KeyFile(&key_file)),
            Err(KeyError::Exists(_))
        ));
        store.delete("ibc-0").unwrap();
        assert_eq!(store.list().unwrap(), vec![b]);
        assert!(matches!(store.delete("ibc-0"), Err(KeyError::Missing(_))));
    }

    #[test]
    fn a_key_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(&dir.path().join("keys")).unwrap();
        let key_file = dir.path().join("k.json");
        fs::write(&key_file, format!("{{\"mnemonic\": \"{PHRASE}\"}}")).unwrap();
        store
            .add("ibc-0", "relayer", "cosmos", KeySource::KeyFile(&key_file))
            .unwrap();
        fs::set_permissions(store.file("ibc-0"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            store.signing_key("ibc-0"),
            Err(KeyError::Permissions { mode: 0o644, .. })
        ));
        assert!(matches!(
            KeyStore::existing(&dir.path().join("absent")),
            Err(KeyError::NoStore(_))
        ));
    }

    #[test]
    fn another_hd_path_gives_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let mnemonic = dir.path().join("m.txt");
        fs::write(&mnemonic, PHRASE).unwrap();
        let a = store
            .add(
                "a-0",
                "k",
                "cosmos",
                KeySource::Mnemonic {
                    file: &mnemonic,
                    hd_path: DEFAULT_HD_PATH,
                },
            )
            .unwrap();
        let b = store
            .add(
                "b-0",
                "k",
                "cosmos",
                KeySource::Mnemonic {
                    file: &mnemonic,
                    hd_path: "m/44'/118'/0'/0/1",
                },
            )
            .unwrap();
        assert_ne!(a.address, b.address);
    }

    #[test]
    fn bad_input_errors_never_echo_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(&dir.path().join("keys")).unwrap();
        let bad = dir.path().join("bad.txt");
        fs::write(&bad, "correct horse battery staple").unwrap();
        let err = store
            .add(
                "c-0",
                "k",
                "cosmos",
                KeySource::Mnemonic {
                    file: &bad,
                    hd_path: DEFAULT_HD_PATH,
                },
            )
            .unwrap_err();
        assert!(!err.to_string().contains("horse"), "{err}");

        let secret = "deadbeef".repeat(8);
        let json = dir.path().join("broken.json");
        fs::write(&json, format!("{{\"private_key\": \"{secret}\", oops}}")).unwrap();
        let err = store
            .add("c-0", "k", "cosmos", KeySource::KeyFile(&json))
            .unwrap_err();
        assert!(!err.to_string().contains(&secret), "{err}");

        let short = dir.path().join("short.json");
        fs::write(&short, "{\"private_key\": \"abcd\"}").unwrap();
        let err = store
            .add("c-0", "k", "cosmos", KeySource::KeyFile(&short))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: private_key is not 32 bytes", short.display())
        );
        let err = store
            .add(
                "c-0",
                "k",
                "cosmos",
                KeySource::Mnemonic {
                    file: &bad,
                    hd_path: "not/a/path",
                },
            )
            .unwrap_err();
        assert!(matches!(err, KeyError::Mnemonic(_) | KeyError::HdPath(_)));
    }
}
