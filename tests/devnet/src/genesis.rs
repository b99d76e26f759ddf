//! A devnet chain's genesis: its validators and funded accounts, derived from a seed so a deterministic run gets
//! the same keys, addresses and genesis time every time.

use std::time::Duration;

use bip32::{Language, Mnemonic};
use cosmrs::crypto::secp256k1::SigningKey;
use sha2::{Digest, Sha256};
use tendermint::{chain, PublicKey, Time};

/// The HD path of every genesis account, the Cosmos default.
pub const HD_PATH: &str = "m/44'/118'/0'/0/0";
/// Bech32 prefix of account addresses.
pub const ACCOUNT_PREFIX: &str = "cosmos";
/// The staking and fee denomination.
pub const DENOM: &str = "stake";

/// Errors while building a genesis.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The chain id is not a valid CometBFT chain id.
    #[error("invalid chain id {0:?}: {1}")]
    ChainId(String, String),
    /// Key derivation failed.
    #[error("key derivation failed: {0}")]
    Key(String),
}

/// A validator's consensus key and voting power.
#[derive(Clone)]
pub struct ValidatorKey {
    /// The ed25519 signing key that signs this validator's precommits.
    pub signing_key: ed25519_consensus::SigningKey,
    /// Voting power.
    pub power: u64,
}

impl ValidatorKey {
    /// The validator's public key as CometBFT names it.
    #[allow(
        clippy::expect_used,
        reason = "an ed25519 verification key is 32 bytes"
    )]
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_raw_ed25519(self.signing_key.verification_key().as_bytes())
            .expect("an ed25519 verification key is 32 bytes")
    }

    /// The validator as it appears in a validator set.
    #[allow(clippy::expect_used, reason = "devnet powers are small")]
    pub fn info(&self) -> tendermint::validator::Info {
        tendermint::validator::Info::new(
            self.public_key(),
            self.power.try_into().expect("devnet powers are small"),
        )
    }
}

/// A funded account whose key is known, so tests, the relayer and the demo can sign with it.
#[derive(Clone)]
pub struct GenesisAccount {
    /// A name for key files, e.g. `relayer` or `user1`.
    pub name: String,
    /// The BIP-39 mnemonic the key derives from at [`HD_PATH`].
    pub mnemonic: String,
    /// The raw 32-byte secp256k1 private key.
    pub private_key: [u8; 32],
    /// Bech32 address with [`ACCOUNT_PREFIX`].
    pub address: String,
    /// Starting balances, `(denom, amount)`.
    pub coins: Vec<(String, u128)>,
}

impl GenesisAccount {
    /// The account's signing key.
    #[allow(
        clippy::expect_used,
        reason = "keys are generated or checked when the genesis is made"
    )]
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_slice(&self.private_key).expect("stored keys are valid")
    }
}

/// Everything a chain starts from.
#[derive(Clone)]
pub struct Genesis {
    /// The chain id, e.g. `ibc-0` (revision 0).
    pub chain_id: chain::Id,
    /// Time of the genesis; block 1 comes one block time later.
    pub genesis_time: Time,
    /// The validator set; at least two so commits carry several signatures.
    pub validators: Vec<ValidatorKey>,
    /// Keys that join when validators rotate (`validators.len() + 1` of them, power 10): a standby group as
    /// large as the genesis set, then one more. Not validators at genesis.
    pub standby: Vec<ValidatorKey>,
    /// Funded accounts in account-number order.
    pub accounts: Vec<GenesisAccount>,
    /// Minimum fee per unit of gas, in [`DENOM`].
    pub min_gas_price: f64,
    /// The staking unbonding period, reported by the staking Params query.
    pub unbonding_period: Duration,
}

/// How to build a genesis.
#[derive(Debug, Clone)]
pub struct GenesisOptions {
    /// The chain id.
    pub chain_id: String,
    /// Number of validators (at least 2).
    pub validators: usize,
    /// Number of funded accounts besides `relayer`.
    pub accounts: usize,
    /// With a seed, keys and genesis time are fixed; without, they are random and the genesis time is now.
    pub seed: Option<String>,
}

impl Default for GenesisOptions {
    fn default() -> Self {
        Self {
            chain_id: "ibc-0".to_owned(),
            validators: 2,
            accounts: 2,
            seed: None,
        }
    }
}

/// Starting balance of every genesis account.
pub const GENESIS_BALANCE: u128 = 100_000_000_000_000;

/// A fixed genesis time for deterministic runs: 2025-01-01T00:00:00Z.
const FIXED_GENESIS_UNIX: i64 = 1_735_689_600;

fn derive(seed: &[u8], chain_id: &str, what: &str, index: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(chain_id.as_bytes());
    h.update(what.as_bytes());
    h.update((index as u64).to_be_bytes());
    h.finalize().into()
}

impl Genesis {
    /// Builds a genesis from options.
    #[allow(clippy::expect_used, reason = "a fixed unix time is in range")]
    pub fn build(opts: &GenesisOptions) -> Result<Self, GenesisError> {
        let chain_id = chain::Id::try_from(opts.chain_id.clone())
            .map_err(|e| GenesisError::ChainId(opts.chain_id.clone(), e.to_string()))?;
        let seed: Vec<u8> = match &opts.seed {
            Some(s) => s.as_bytes().to_vec(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let genesis_time = if opts.seed.is_some() {
            Time::from_unix_timestamp(FIXED_GENESIS_UNIX, 0).expect("fixed time is valid")
        } else {
            Time::now()
        };
        let count = opts.validators.max(2);
        let mut validators: Vec<ValidatorKey> = (0..2 * count + 1)
            .map(|i| ValidatorKey {
                signing_key: ed25519_consensus::SigningKey::from(derive(
                    &seed,
                    &opts.chain_id,
                    "validator",
                    i,
                )),
                power: 10,
            })
            .collect();
        let standby = validators.split_off(count);
        let names = std::iter::once("relayer".to_owned())
            .chain((1..=opts.accounts).map(|i| format!("user{i}")));
        let accounts = names
            .enumerate()
            .map(|(i, name)| {
                let entropy = derive(&seed, &opts.chain_id, "account", i);
                account(name, entropy)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            chain_id,
            genesis_time,
            validators,
            standby,
            accounts,
            min_gas_price: 0.001,
            unbonding_period: Duration::from_secs(21 * 24 * 3600),
        })
    }

    /// The account with this name.
    pub fn account(&self, name: &str) -> Option<&GenesisAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The validator set at genesis.
    pub fn validator_set(&self) -> tendermint::validator::Set {
        let infos: Vec<_> = self.validators.iter().map(ValidatorKey::info).collect();
        tendermint::validator::Set::without_proposer(infos)
    }
}

fn account(name: String, entropy: [u8; 32]) -> Result<GenesisAccount, GenesisError> {
    let mnemonic = Mnemonic::from_entropy(entropy, Language::English);
    let seed = mnemonic.to_seed("");
    let path = HD_PATH
        .parse()
        .map_err(|e: bip32::Error| GenesisError::Key(e.to_string()))?;
    let xprv =
        bip32::XPrv::derive_from_path(seed, &path).map_err(|e| GenesisError::Key(e.to_string()))?;
    let address = SigningKey::from(&xprv)
        .public_key()
        .account_id(ACCOUNT_PREFIX)
        .map_err(|e| GenesisError::Key(e.to_string()))?
        .to_string();
    Ok(GenesisAccount {
        name,
        mnemonic: mnemonic.phrase().to_owned(),
        private_key: xprv.private_key().to_bytes().into(),
        address,
        coins: vec![(DENOM.to_owned(), GENESIS_BALANCE)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_genesis_is_reproducible() {
        let opts = GenesisOptions {
            seed: Some("test".into()),
            ..GenesisOptions::default()
        };
        let a = Genesis::build(&opts).unwrap();
        let b = Genesis::build(&opts).unwrap();
        assert_eq!(a.genesis_time, b.genesis_time);
        assert_eq!(a.accounts[0].address, b.accounts[0].address);
        assert_eq!(a.accounts[0].mnemonic, b.accounts[0].mnemonic);
        assert_eq!(a.validators.len(), 2);
        assert_eq!(a.accounts.len(), 3);
        assert!(a.accounts[0].address.starts_with("cosmos1"));
        // The stored private key is the one the mnemonic derives.
        let from_key = a.accounts[0]
            .signing_key()
            .public_key()
            .account_id("cosmos")
            .unwrap();
        assert_eq!(from_key.to_string(), a.accounts[0].address);
    }

    #[test]
    fn chains_get_different_keys() {
        let a = Genesis::build(&GenesisOptions {
            chain_id: "ibc-0".into(),
            seed: Some("s".into()),
            ..Default::default()
        })
        .unwrap();
        let b = Genesis::build(&GenesisOptions {
            chain_id: "ibc-1".into(),
            seed: Some("s".into()),
            ..Default::default()
        })
        .unwrap();
        assert_ne!(a.accounts[0].address, b.accounts[0].address);
    }
}
