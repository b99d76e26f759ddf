//! The NEAR devnet's genesis: block producers, funded accounts and the IBC contract account, each with an ed25519
//! key derived from a seed (reproducible runs) or from fresh randomness.

use near_crypto::{ED25519SecretKey, PublicKey, SecretKey};
use near_primitives::types::{AccountId, Balance};
use sha2::{Digest, Sha256};

/// One yoctoNEAR-denominated NEAR.
pub const ONE_NEAR: u128 = 1_000_000_000_000_000_000_000_000;
/// Balance of every funded genesis account.
pub const GENESIS_BALANCE: u128 = 1_000_000 * ONE_NEAR;
/// Base stake of a block producer; stakes vary per epoch around it (see [`epoch_block_producers`]).
pub const BASE_STAKE: u128 = 100_000 * ONE_NEAR;
/// The account holding the IBC module.
pub const IBC_ACCOUNT: &str = "ibc.devnet";
/// The account relayd signs with.
pub const RELAYER_ACCOUNT: &str = "relayer.devnet";

/// How to build the genesis.
#[derive(Debug, Clone)]
pub struct NearGenesisOptions {
    /// Chain id reported by `status`.
    pub chain_id: String,
    /// Block producers (at least 2).
    pub validators: usize,
    /// Funded accounts besides the relayer (`user0.devnet`, ...).
    pub accounts: usize,
    /// Blocks per epoch (at least 5, so light-client blocks of one epoch exist before the next one starts).
    pub epoch_length: u64,
    /// Derives every key from this seed when set.
    pub seed: Option<String>,
    /// Full-access keys of the relayer account (at least 1): the first is [`NearGenesis::relayer`]'s, the others
    /// are [`NearGenesis::relayer_keys`], each with a nonce of its own.
    pub relayer_keys: usize,
}

impl Default for NearGenesisOptions {
    fn default() -> Self {
        Self {
            chain_id: "near-devnet".to_owned(),
            validators: 3,
            accounts: 2,
            epoch_length: 10,
            seed: None,
            relayer_keys: 1,
        }
    }
}

/// Why a genesis could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NearGenesisError {
    /// Fewer than two block producers.
    #[error("at least 2 block producers are needed, got {0}")]
    Validators(usize),
    /// Epochs too short for light-client blocks.
    #[error("epoch length {0} is below the minimum of 5 blocks")]
    EpochLength(u64),
    /// The relayer account needs its one key at least.
    #[error("the relayer account needs at least 1 key, got {0}")]
    RelayerKeys(usize),
    /// A generated account id is not valid.
    #[error("account id {0}: {1}")]
    AccountId(String, String),
}

/// An account with its full-access key.
#[derive(Clone)]
pub struct NearAccount {
    /// The account id.
    pub account_id: AccountId,
    /// The full-access key's secret.
    pub secret_key: SecretKey,
}

impl std::fmt::Debug for NearAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearAccount")
            .field("account_id", &self.account_id)
            .field("public_key", &self.secret_key.public_key())
            .finish_non_exhaustive()
    }
}

impl NearAccount {
    /// The full-access public key.
    pub fn public_key(&self) -> PublicKey {
        self.secret_key.public_key()
    }

    /// The near-cli credential file body: `{account_id, public_key, private_key}`.
    pub fn credentials_json(&self) -> serde_json::Value {
        serde_json::json!({
            "account_id": self.account_id.to_string(),
            "public_key": self.public_key().to_string(),
            "private_key": self.secret_key.to_string(),
        })
    }
}

/// The devnet's genesis.
#[derive(Debug, Clone)]
pub struct NearGenesis {
    /// Chain id.
    pub chain_id: String,
    /// Block producers, in index order (stakes per epoch come from [`epoch_block_producers`]).
    pub validators: Vec<NearAccount>,
    /// The relayer account.
    pub relayer: NearAccount,
    /// Further full-access keys of the relayer account (same account id, other keys).
    pub relayer_keys: Vec<NearAccount>,
    /// Other funded accounts.
    pub accounts: Vec<NearAccount>,
    /// The IBC contract account (it has a key too, as deployed contracts usually do).
    pub ibc: NearAccount,
    /// Blocks per epoch.
    pub epoch_length: u64,
}

fn derive_key(seed: &[u8], name: &str) -> SecretKey {
    let digest = Sha256::new()
        .chain_update(seed)
        .chain_update(b"/")
        .chain_update(name.as_bytes())
        .finalize();
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&digest);
    let signing = ed25519_dalek::SigningKey::from_bytes(&secret);
    SecretKey::ED25519(ED25519SecretKey(signing.to_keypair_bytes()))
}

fn account(seed: &[u8], name: &str) -> Result<NearAccount, NearGenesisError> {
    let account_id: AccountId =
        name.parse()
            .map_err(|e: near_primitives::account::id::ParseAccountError| {
                NearGenesisError::AccountId(name.to_owned(), e.to_string())
            })?;
    Ok(NearAccount {
        account_id,
        secret_key: derive_key(seed, name),
    })
}

impl NearGenesis {
    /// Builds the genesis accounts and keys.
    pub fn build(opts: &NearGenesisOptions) -> Result<Self, NearGenesisError> {
        if opts.validators < 2 {
            return Err(NearGenesisError::Validators(opts.validators));
        }
        if opts.relayer_keys == 0 {
            return Err(NearGenesisError::RelayerKeys(0));
        }
        if opts.epoch_length < 5 {
            return Err(NearGenesisError::EpochLength(opts.epoch_length));
        }
        let seed: Vec<u8> = match &opts.seed {
            Some(s) => format!("{s}/{}", opts.chain_id).into_bytes(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let validators = (0..opts.validators)
            .map(|i| account(&seed, &format!("node{i}.devnet")))
            .collect::<Result<Vec<_>, _>>()?;
        let accounts = (0..opts.accounts)
            .map(|i| account(&seed, &format!("user{i}.devnet")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            chain_id: opts.chain_id.clone(),
            validators,
            relayer: account(&seed, RELAYER_ACCOUNT)?,
            relayer_keys: (1..opts.relayer_keys)
                .map(|i| {
                    Ok(NearAccount {
                        secret_key: derive_key(&seed, &format!("{RELAYER_ACCOUNT}/key{i}")),
                        ..account(&seed, RELAYER_ACCOUNT)?
                    })
                })
                .collect::<Result<Vec<_>, NearGenesisError>>()?,
            accounts,
            ibc: account(&seed, IBC_ACCOUNT)?,
            epoch_length: opts.epoch_length,
        })
    }

    /// Every account funded at genesis: validators, relayer, users, the IBC contract.
    pub fn funded(&self) -> impl Iterator<Item = &NearAccount> {
        self.validators
            .iter()
            .chain(std::iter::once(&self.relayer))
            .chain(self.accounts.iter())
            .chain(std::iter::once(&self.ibc))
    }
}

/// The block producers of epoch `epoch` as `(validator index, stake)`, in the order approvals are listed.
///
/// With three or more validators one of them sits out each epoch (index `epoch % n`), and stakes rotate, so
/// every epoch change hands over to a different set and `next_bps` really changes.
pub fn epoch_block_producers(validators: usize, epoch: u64) -> Vec<(usize, Balance)> {
    let n = validators as u64;
    (0..validators)
        .filter(|i| n < 3 || *i as u64 != epoch % n)
        .map(|i| {
            let weight = 1 + (i as u64 + epoch) % n;
            (i, Balance::from_yoctonear(BASE_STAKE * u128::from(weight)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_keys_are_reproducible_and_distinct() {
        let opts = NearGenesisOptions {
            seed: Some("s".into()),
            ..Default::default()
        };
        let a = NearGenesis::build(&opts).unwrap();
        let b = NearGenesis::build(&opts).unwrap();
        assert_eq!(a.relayer.public_key(), b.relayer.public_key());
        assert_ne!(a.relayer.public_key(), a.ibc.public_key());
        let msg = b"hello";
        let sig = a.relayer.secret_key.sign(msg);
        assert!(sig.verify(msg, &a.relayer.public_key()));
    }

    #[test]
    fn further_relayer_keys_are_distinct_keys_of_the_relayer_account() {
        let opts = NearGenesisOptions {
            seed: Some("s".into()),
            relayer_keys: 3,
            ..Default::default()
        };
        let g = NearGenesis::build(&opts).unwrap();
        assert_eq!(g.relayer_keys.len(), 2);
        let mut keys = vec![g.relayer.public_key()];
        for k in &g.relayer_keys {
            assert_eq!(k.account_id, g.relayer.account_id);
            assert!(!keys.contains(&k.public_key()));
            keys.push(k.public_key());
        }
        let state = super::super::runtime::genesis_state(&g);
        for key in &keys {
            assert!(
                super::super::runtime::get_access_key(&state, &g.relayer.account_id, key).is_some()
            );
        }
        assert!(NearGenesis::build(&NearGenesisOptions {
            relayer_keys: 0,
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn block_producer_sets_change_between_epochs() {
        assert_ne!(epoch_block_producers(3, 0), epoch_block_producers(3, 1));
        assert_eq!(epoch_block_producers(3, 0).len(), 2);
        assert_eq!(epoch_block_producers(2, 5).len(), 2);
        assert_ne!(epoch_block_producers(2, 0), epoch_block_producers(2, 1));
        assert!(NearGenesis::build(&NearGenesisOptions {
            validators: 1,
            ..Default::default()
        })
        .is_err());
    }
}
