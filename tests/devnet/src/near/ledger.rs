//! The token balances the NEAR devnet's IBC contract keeps for its ICS-20 port: NEAR-native denominations funded
//! at genesis, vouchers minted on receive, and one escrow account per channel. They live in the contract's own
//! store beside the IBC state (key `balances/{account}/{denom}`, value the balance as borsh `u128`, as NEP-141
//! contracts store balances), so they are rolled back with a failing message, committed into the NEAR trie with
//! the block and provable like every other contract entry.

use basecoin_store::context::Store;
use basecoin_store::types::{Height, Path};
use near_primitives::types::AccountId;

use super::ibc::ContractStorage;
use crate::app::store::Shared;

/// The NEAR-native denominations every funded user account (the relayer and `userN.devnet`) holds at genesis,
/// with the amount each holds. Named after NEP-141 token contracts, as near-ibc names NEAR-native denominations.
pub const GENESIS_TOKENS: &[(&str, u128)] = &[
    ("wrap.devnet", 1_000_000_000_000_000_000_000_000_000),
    ("usdc.devnet", 1_000_000_000_000),
];

/// Storage-key prefix of every balance.
const BALANCES: &str = "balances/";

/// Why a balance change was refused.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The account holds less than the amount.
    #[error("{account} holds {have} {denom}, less than {need}: insufficient balance")]
    InsufficientBalance {
        /// The account.
        account: String,
        /// The denomination.
        denom: String,
        /// What it holds.
        have: u128,
        /// What was asked for.
        need: u128,
    },
    /// The balance would exceed `u128`.
    #[error("balance of {denom} at {account} would overflow")]
    Overflow {
        /// The account.
        account: String,
        /// The denomination.
        denom: String,
    },
}

/// The storage key of `account`'s balance of `denom`. Account ids contain no `/`, so the key names one pair.
pub fn balance_key(account: &str, denom: &str) -> String {
    format!("{BALANCES}{account}/{denom}")
}

/// The ledger account holding a channel's escrow: `{channel}.{port}.escrow.{contract}`, a sub-account name of the
/// contract (only the contract could create it), standing for the escrow contract near-ibc deploys per channel.
pub fn escrow_account(port: &str, channel: &str, contract: &AccountId) -> String {
    format!("{channel}.{port}.escrow.{contract}")
}

fn decode(bytes: &[u8]) -> Option<u128> {
    borsh::from_slice::<u128>(bytes).ok()
}

/// Balances over the contract's store (the pending state of the block being executed).
#[derive(Clone, Debug)]
pub struct Ledger {
    store: Shared,
}

impl Ledger {
    /// The ledger in `store`.
    pub fn new(store: Shared) -> Self {
        Self { store }
    }

    /// The balance of `account` in `denom` (0 when it never held any).
    pub fn balance(&self, account: &str, denom: &str) -> u128 {
        self.store
            .get(Height::Pending, &Path::from(balance_key(account, denom)))
            .and_then(|b| decode(&b))
            .unwrap_or(0)
    }

    fn set(&self, account: &str, denom: &str, amount: u128) {
        let mut s = self.store.clone();
        let path = Path::from(balance_key(account, denom));
        if amount == 0 {
            s.delete(&path);
        } else {
            // The journaled store never fails a write; borsh of a u128 is its 16 little-endian bytes.
            let _ = s.set(path, amount.to_le_bytes().to_vec());
        }
    }

    /// Checks that `account` holds at least `amount` of `denom`.
    pub fn check_spendable(
        &self,
        account: &str,
        denom: &str,
        amount: u128,
    ) -> Result<(), LedgerError> {
        let have = self.balance(account, denom);
        if have < amount {
            return Err(LedgerError::InsufficientBalance {
                account: account.to_owned(),
                denom: denom.to_owned(),
                have,
                need: amount,
            });
        }
        Ok(())
    }

    /// Checks that `account` can be credited `amount` of `denom`.
    pub fn check_creditable(
        &self,
        account: &str,
        denom: &str,
        amount: u128,
    ) -> Result<(), LedgerError> {
        self.balance(account, denom)
            .checked_add(amount)
            .map(|_| ())
            .ok_or_else(|| LedgerError::Overflow {
                account: account.to_owned(),
                denom: denom.to_owned(),
            })
    }

    /// Creates `amount` of `denom` at `account`.
    pub fn mint(&self, account: &str, denom: &str, amount: u128) -> Result<(), LedgerError> {
        self.check_creditable(account, denom, amount)?;
        self.set(account, denom, self.balance(account, denom) + amount);
        Ok(())
    }

    /// Destroys `amount` of `denom` held by `account`.
    pub fn burn(&self, account: &str, denom: &str, amount: u128) -> Result<(), LedgerError> {
        self.check_spendable(account, denom, amount)?;
        self.set(account, denom, self.balance(account, denom) - amount);
        Ok(())
    }

    /// Moves `amount` of `denom` from `from` to `to`; both sides are checked before anything is written.
    pub fn send(&self, from: &str, to: &str, denom: &str, amount: u128) -> Result<(), LedgerError> {
        self.check_spendable(from, denom, amount)?;
        if from == to {
            return Ok(());
        }
        self.check_creditable(to, denom, amount)?;
        self.set(from, denom, self.balance(from, denom) - amount);
        self.set(to, denom, self.balance(to, denom) + amount);
        Ok(())
    }
}

/// `account`'s balance of `denom` in the contract's storage at one block (what `ft_balance_of` answers).
pub fn stored_balance(storage: &ContractStorage<'_>, account: &str, denom: &str) -> u128 {
    storage
        .get(&balance_key(account, denom))
        .and_then(|b| decode(b))
        .unwrap_or(0)
}

/// Every non-zero balance of `account` in the contract's storage at one block, by denomination.
pub fn stored_balances(storage: &ContractStorage<'_>, account: &str) -> Vec<(String, u128)> {
    let prefix = format!("{BALANCES}{account}/");
    storage
        .keys_with_prefix(&prefix)
        .into_iter()
        .filter_map(|key| {
            let amount = storage.get(&key).and_then(|b| decode(b))?;
            let denom = key.strip_prefix(&prefix)?.to_owned();
            (amount > 0).then_some((denom, amount))
        })
        .collect()
}
