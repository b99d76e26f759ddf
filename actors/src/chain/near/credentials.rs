//! Reads the NEAR access key relayd signs with from a near-cli credentials file
//! (`{"account_id", "public_key", "private_key"}`), refusing files other users could read.

use std::path::{Path, PathBuf};

use near_crypto::{InMemorySigner, PublicKey, SecretKey, Signer};
use near_primitives::types::AccountId;

/// Why a credentials file was refused. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or other users may read or write the file.
    #[error("{path}: mode {mode:o} lets other users read the key; run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a near-cli credentials document.
    #[error("{path}: not a near-cli credentials file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The account in the file is not the one configured.
    #[error("{path}: key is for account {found}, the chain's signer is {expected}")]
    WrongAccount {
        /// The file.
        path: PathBuf,
        /// The file's account.
        found: String,
        /// The configured account.
        expected: String,
    },
}

/// The file's fields. near-cli writes `private_key`; older tools wrote `secret_key`.
#[derive(serde::Deserialize)]
struct CredentialsFile {
    account_id: String,
    public_key: String,
    #[serde(alias = "secret_key")]
    private_key: String,
}

/// Loads the signer from `path`. When `expected_account` is given, the file must be for that account.
pub fn load_signer(
    path: &Path,
    expected_account: Option<&str>,
) -> Result<Signer, CredentialsError> {
    check_mode(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Io {
        path: path.to_owned(),
        source,
    })?;
    let format = |reason: String| CredentialsError::Format {
        path: path.to_owned(),
        reason,
    };
    let file: CredentialsFile = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
    let account: AccountId = file
        .account_id
        .parse()
        .map_err(|e| format(format!("account_id: {e}")))?;
    if let Some(expected) = expected_account {
        if account.as_str() != expected {
            return Err(CredentialsError::WrongAccount {
                path: path.to_owned(),
                found: account.to_string(),
                expected: expected.to_owned(),
            });
        }
    }
    let public: PublicKey = file
        .public_key
        .parse()
        .map_err(|_| format("public_key is not a NEAR public key".to_owned()))?;
    // The parse error would echo the input, so it is replaced by a fixed message.
    let secret: SecretKey = file
        .private_key
        .parse()
        .map_err(|_| format("private_key is not a NEAR secret key".to_owned()))?;
    if secret.public_key() != public {
        return Err(format(
            "private_key does not belong to public_key".to_owned(),
        ));
    }
    Ok(InMemorySigner::from_secret_key(account, secret))
}

#[cfg(unix)]
fn check_mode(path: &Path) -> Result<(), CredentialsError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| CredentialsError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialsError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path) -> Result<(), CredentialsError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use near_crypto::KeyType;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn body(account: &str, secret: &SecretKey, public: &PublicKey) -> String {
        serde_json::json!({
            "account_id": account,
            "public_key": public.to_string(),
            "private_key": secret.to_string(),
        })
        .to_string()
    }

    #[test]
    fn a_private_file_loads_and_signs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = SecretKey::from_seed(KeyType::ED25519, "relayer");
        let path = write(
            dir.path(),
            "k.json",
            &body("relayer.test.near", &secret, &secret.public_key()),
            0o600,
        );
        let signer = load_signer(&path, Some("relayer.test.near")).expect("loads");
        assert_eq!(signer.get_account_id().as_str(), "relayer.test.near");
        assert_eq!(signer.public_key(), secret.public_key());
        let sig = signer.sign(b"msg");
        assert!(sig.verify(b"msg", &secret.public_key()));
    }

    #[test]
    fn readable_files_wrong_accounts_and_mismatched_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = SecretKey::from_seed(KeyType::ED25519, "relayer");
        let good = body("relayer.test.near", &secret, &secret.public_key());
        let path = write(dir.path(), "open.json", &good, 0o644);
        assert!(matches!(
            load_signer(&path, None),
            Err(CredentialsError::Permissions { mode: 0o644, .. })
        ));
        let path = write(dir.path(), "k.json", &good, 0o600);
        assert!(matches!(
            load_signer(&path, Some("someone.near")),
            Err(CredentialsError::WrongAccount { .. })
        ));
        let other = SecretKey::from_seed(KeyType::ED25519, "other");
        let path = write(
            dir.path(),
            "mixed.json",
            &body("relayer.test.near", &secret, &other.public_key()),
            0o600,
        );
        assert!(matches!(
            load_signer(&path, None),
            Err(CredentialsError::Format { .. })
        ));
        let path = write(dir.path(), "junk.json", "{\"account_id\": 1}", 0o600);
        let err = load_signer(&path, None).expect_err("junk");
        assert!(matches!(err, CredentialsError::Format { .. }));
        let path = write(
            dir.path(),
            "badkey.json",
            r#"{"account_id":"a.near","public_key":"ed25519:xx","private_key":"ed25519:SECRETSTUFF"}"#,
            0o600,
        );
        let err = load_signer(&path, None).expect_err("bad key").to_string();
        assert!(!err.contains("SECRETSTUFF"), "{err}");
    }
}
