//! What a chain backend implements for the TxSubmitter: signing and broadcasting transactions for one account.
//! Cosmos and NEAR each implement it in their `backend` module.

use std::future::Future;
use std::pin::Pin;

use relayd_messages::{Datagram, RelayError, TxReport};

/// The outcome of admitted transactions: their reports, or what landed before the one that failed and why.
pub type TxOutcomes = Result<Vec<TxReport>, (Vec<TxReport>, RelayError)>;

/// Waits for the outcome of transactions a chain admitted (see [`Submitter::admit`]).
pub type Confirmation = Pin<Box<dyn Future<Output = TxOutcomes>>>;

/// Reads an account's balance in the fee denom, apart from the submitter (so that a reading never waits for a
/// transaction being admitted).
pub type ReadBalance =
    std::rc::Rc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<u128, RelayError>>>>>;

/// A lane's account as its funds are watched: which key it is, the denom fees are paid in, the balance below
/// which the lane is drained, and how to read the balance.
#[derive(Clone)]
pub struct Wallet {
    /// The key name in relayd's key store.
    pub key: String,
    /// The fee denom.
    pub denom: String,
    /// The chain's `min_balance`, if set.
    pub minimum: Option<u128>,
    /// Reads the balance.
    pub read: ReadBalance,
}

/// Signs and broadcasts transactions for one account.
#[allow(async_fn_in_trait)]
pub trait Submitter: Unpin {
    /// The account that signs, as the chain spells it (datagrams carry it as their signer).
    fn signer(&self) -> &str;
    /// Sends `msgs` in order in as few transactions as the limits allow and waits for them to land; on failure
    /// returns what was done before it.
    async fn submit(&mut self, msgs: Vec<Datagram>) -> TxOutcomes;
    /// Makes datagrams built for the chain's primary signer this account's own (sets their signer field), or
    /// says why one cannot be. By default they are sent as built (a backend with one account).
    fn own(&self, msgs: Vec<Datagram>) -> Result<Vec<Datagram>, RelayError> {
        Ok(msgs)
    }
    /// What tells this lane's key apart when the backend reads no balances (so has no [`Wallet`] naming it): a
    /// NEAR access key's public key, several of which may sign for one account. None by default.
    fn key_id(&self) -> Option<String> {
        None
    }
    /// The account's wallet, when the backend reads balances (the lane is then drained below its minimum).
    fn wallet(&self) -> Option<Wallet> {
        None
    }
    /// Most messages per transaction.
    fn max_msgs(&self) -> usize;
    /// Most transactions that may be admitted and waiting for their block at once; 1 sends the next
    /// transaction only once the previous one has its outcome.
    fn max_in_flight(&self) -> usize {
        1
    }
    /// Has the chain admit `msgs` (in order, in as few transactions as the limits allow) and returns the wait
    /// for their outcome, so that more can be admitted meanwhile. An error means nothing was admitted. By
    /// default the whole submission happens here and the confirmation is ready at once.
    async fn admit(&mut self, msgs: Vec<Datagram>) -> Result<Confirmation, RelayError> {
        let outcome = self.submit(msgs).await;
        Ok(Box::pin(std::future::ready(outcome)))
    }
}
