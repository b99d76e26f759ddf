//! Accounts (the SDK's x/auth): account numbers, sequences and public keys, stored as `BaseAccount` protobuf so
//! the auth Account query can hand them out unchanged.

use std::str::FromStr;

use basecoin_store::context::Store;
use basecoin_store::types::{Height, Path};
use cosmrs::proto::cosmos::auth::v1beta1::BaseAccount;
use prost::Message;

use super::store::Shared;
use crate::genesis::ACCOUNT_PREFIX;

const NEXT_NUMBER_KEY: &str = "nextAccountNumber";

fn account_path(address: &str) -> Path {
    format!("accounts/{address}").into()
}

/// Checks that `address` is a bech32 account address of this chain.
pub fn validate_address(address: &str) -> Result<(), String> {
    let id = cosmrs::AccountId::from_str(address)
        .map_err(|e| format!("invalid address {address:?}: {e}"))?;
    if id.prefix() != ACCOUNT_PREFIX {
        return Err(format!(
            "invalid address {address:?}: expected prefix {ACCOUNT_PREFIX}"
        ));
    }
    Ok(())
}

/// Bech32 address of raw 20 address bytes.
pub fn address_of(bytes: &[u8]) -> String {
    // Only called with 20-byte hashes (module and escrow addresses), which are always valid account ids.
    cosmrs::AccountId::new(ACCOUNT_PREFIX, bytes)
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// The account keeper over the `acc` store.
#[derive(Clone, Debug)]
pub struct Accounts {
    store: Shared,
}

impl Accounts {
    /// Accounts kept in `store`.
    pub fn new(store: Shared) -> Self {
        Self { store }
    }

    /// The account at `address` in the pending state.
    pub fn get(&self, address: &str) -> Option<BaseAccount> {
        self.get_at(Height::Pending, address)
    }

    /// The account at `address` at a store height.
    pub fn get_at(&self, height: Height, address: &str) -> Option<BaseAccount> {
        let bytes = self.store.get(height, &account_path(address))?;
        BaseAccount::decode(bytes.as_slice()).ok()
    }

    /// Stores `account`.
    pub fn set(&self, account: &BaseAccount) {
        let mut s = self.store.clone();
        // The journaled store never fails (its error type is Infallible).
        let _ = s.set(account_path(&account.address), account.encode_to_vec());
    }

    /// The account at `address`, created with the next account number if it does not exist yet (as the SDK's
    /// bank does for a first-time recipient).
    pub fn ensure(&self, address: &str) -> BaseAccount {
        if let Some(a) = self.get(address) {
            return a;
        }
        let mut s = self.store.clone();
        let next = s
            .get(Height::Pending, &NEXT_NUMBER_KEY.to_owned().into())
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        let _ = s.set(
            NEXT_NUMBER_KEY.to_owned().into(),
            (next + 1).to_be_bytes().to_vec(),
        );
        let account = BaseAccount {
            address: address.to_owned(),
            pub_key: None,
            account_number: next,
            sequence: 0,
        };
        self.set(&account);
        account
    }
}
