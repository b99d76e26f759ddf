//! Balances (the SDK's x/bank): what fees, `MsgSend` and ICS-20 escrow/mint/burn move around.

use basecoin_store::context::Store;
use basecoin_store::types::{Height, Path};

use super::auth::Accounts;
use super::store::Shared;

/// Why a bank operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// Not enough coins; worded like the SDK so relayer logs read the same.
    #[error("spendable balance {have}{denom} is smaller than {need}{denom}: insufficient funds")]
    InsufficientFunds {
        /// What the account holds.
        have: u128,
        /// What was asked for.
        need: u128,
        /// The denomination.
        denom: String,
    },
    /// A balance would exceed u128.
    #[error("balance overflow for {denom} at {address}")]
    Overflow {
        /// The account.
        address: String,
        /// The denomination.
        denom: String,
    },
}

fn balance_path(address: &str, denom: &str) -> Path {
    format!("balances/{address}/{denom}").into()
}

fn trace_path(hash: &str) -> Path {
    format!("denomTraces/{hash}").into()
}

/// The bank keeper over the `bank` store, creating accounts in `accounts` for first-time recipients.
#[derive(Clone, Debug)]
pub struct Bank {
    store: Shared,
    accounts: Accounts,
}

impl Bank {
    /// A bank over `store` that registers recipients in `accounts`.
    pub fn new(store: Shared, accounts: Accounts) -> Self {
        Self { store, accounts }
    }

    /// The account keeper this bank registers recipients with.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Pending balance.
    pub fn balance(&self, address: &str, denom: &str) -> u128 {
        self.balance_at(Height::Pending, address, denom)
    }

    /// Balance at a store height.
    pub fn balance_at(&self, height: Height, address: &str, denom: &str) -> u128 {
        self.store
            .get(height, &balance_path(address, denom))
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// All non-zero balances of `address` in the pending state (committed state between blocks), sorted by denom.
    pub fn all_balances(&self, address: &str) -> Vec<(String, u128)> {
        let prefix = format!("balances/{address}/");
        let mut out: Vec<(String, u128)> = self
            .store
            .get_keys(&prefix.clone().into())
            .into_iter()
            .filter_map(|p| {
                let key = p.to_string();
                let denom = key.strip_prefix(&prefix)?.to_owned();
                let amount = self.balance(address, &denom);
                (amount > 0).then_some((denom, amount))
            })
            .collect();
        out.sort();
        out
    }

    fn set_balance(&self, address: &str, denom: &str, amount: u128) {
        let mut s = self.store.clone();
        if amount == 0 {
            s.delete(&balance_path(address, denom));
        } else {
            // The journaled store never fails (its error type is Infallible).
            let _ = s.set(
                balance_path(address, denom),
                amount.to_string().into_bytes(),
            );
        }
    }

    /// Checks that `address` holds at least `amount` of `denom`.
    pub fn check_spendable(
        &self,
        address: &str,
        denom: &str,
        amount: u128,
    ) -> Result<(), BankError> {
        let have = self.balance(address, denom);
        if have < amount {
            return Err(BankError::InsufficientFunds {
                have,
                need: amount,
                denom: denom.to_owned(),
            });
        }
        Ok(())
    }

    /// Creates `amount` of `denom` at `address`.
    pub fn mint(&self, address: &str, denom: &str, amount: u128) -> Result<(), BankError> {
        self.accounts.ensure(address);
        let new = self
            .balance(address, denom)
            .checked_add(amount)
            .ok_or_else(|| BankError::Overflow {
                address: address.to_owned(),
                denom: denom.to_owned(),
            })?;
        self.set_balance(address, denom, new);
        Ok(())
    }

    /// Destroys `amount` of `denom` held by `address`.
    pub fn burn(&self, address: &str, denom: &str, amount: u128) -> Result<(), BankError> {
        self.check_spendable(address, denom, amount)?;
        let have = self.balance(address, denom);
        self.set_balance(address, denom, have - amount);
        Ok(())
    }

    /// Moves `amount` of `denom` from `from` to `to`.
    pub fn send(&self, from: &str, to: &str, denom: &str, amount: u128) -> Result<(), BankError> {
        self.check_spendable(from, denom, amount)?;
        if from == to {
            return Ok(());
        }
        // Check the credit side before writing anything so a failure leaves no half-done transfer.
        let to_new =
            self.balance(to, denom)
                .checked_add(amount)
                .ok_or_else(|| BankError::Overflow {
                    address: to.to_owned(),
                    denom: denom.to_owned(),
                })?;
        let from_new = self.balance(from, denom) - amount;
        self.accounts.ensure(to);
        self.set_balance(from, denom, from_new);
        self.set_balance(to, denom, to_new);
        Ok(())
    }

    /// Records that voucher denom `ibc/{hash}` stands for the trace `path` (e.g. `transfer/channel-0/stake`).
    pub fn set_denom_trace(&self, hash: &str, path: &str) {
        let mut s = self.store.clone();
        let _ = s.set(trace_path(hash), path.as_bytes().to_vec());
    }

    /// The full trace behind voucher denom `ibc/{hash}`.
    pub fn denom_trace(&self, hash: &str) -> Option<String> {
        self.store
            .get(Height::Pending, &trace_path(hash))
            .and_then(|b| String::from_utf8(b).ok())
    }
}
