//! Sends IBC messages to NEAR: signed `deliver(messages)` function calls to the IBC contract, with the deposit
//! near-ibc asks per message. Messages are cut into calls by estimated gas and size ([`batch`]), several calls may
//! be outstanding with increasing nonces of the access key ([`nonce`]), a stale nonce is recovered from the node's
//! InvalidNonce answer, and a call that ran out of gas is split and sent again. Outcomes are classified in
//! [`outcome`].

pub mod batch;
pub mod nonce;
pub mod outcome;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use ibc_proto::google::protobuf::Any;
use near_crypto::Signer;
use near_primitives::hash::CryptoHash;
use near_primitives::types::{AccountId, Gas};
use near_primitives::views::TxExecutionStatus;
use tokio::sync::Mutex;

use super::bounded::CallError;
use super::rpc::NearRpc;
use crate::chain::endpoint::ChainError;
use batch::{BatchLimits, GasTable, MsgKind};
use nonce::NonceBook;
pub use outcome::{
    classify_error, classify_outcome, ran_out_of_gas, sign_deliver, NearTxError, NearTxOutcome,
    SendResult,
};

/// Gas the devnet's `deliver` receipt burns besides its messages, measured from its receipts
/// (docs/benchmarks.md): the receipt's own execution plus the call's fixed part.
pub const MEASURED_BASE_GAS: u64 = 7_428_000_000_000;
/// Gas the devnet's `deliver` receipt burns per message, measured from its receipts for every kind
/// (docs/benchmarks.md).
pub const MEASURED_GAS_PER_MESSAGE: u64 = 15_000_000_000_000;

/// How `deliver` transactions are made.
#[derive(Debug, Clone)]
pub struct NearTxConfig {
    /// Gas attached to each call.
    pub gas: Gas,
    /// How long the submitter waits for an outcome: until final by default, so the outcome relayd reads cannot
    /// be reverted.
    pub wait_until: TxExecutionStatus,
    /// How many times a stale nonce is refreshed and the call sent again.
    pub nonce_retries: usize,
    /// Percent of the attached gas kept spare when cutting batches by their estimated gas.
    pub gas_margin_percent: u64,
    /// The gas estimates batching starts from, learnt from executed calls afterwards.
    pub gas_estimates: GasTable,
    /// Most `deliver` transactions admitted and waiting for their outcome at once.
    pub max_in_flight: usize,
}

impl Default for NearTxConfig {
    fn default() -> Self {
        Self {
            // NEAR's per-transaction maximum; `deliver` runs light clients and handlers in wasm.
            gas: Gas::from_teragas(300),
            wait_until: TxExecutionStatus::Final,
            nonce_retries: 3,
            gas_margin_percent: 10,
            gas_estimates: GasTable::uniform(MEASURED_BASE_GAS, MEASURED_GAS_PER_MESSAGE),
            max_in_flight: 4,
        }
    }
}

/// A `deliver` transaction the node accepted into its pool, not yet known executed.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The transaction hash.
    pub tx_hash: CryptoHash,
    /// The nonce it carries.
    pub nonce: u64,
    /// The messages it carries.
    pub messages: Vec<Any>,
}

/// What a confirmation found, before the submitter acts on it.
enum Confirmed {
    Outcome(NearTxOutcome),
    /// Executed as a transaction whose nonce was already used (another sender got there first): not applied.
    StaleNonce(u64),
}

/// Sends `deliver` transactions for one access key.
pub struct NearTxSubmitter {
    rpc: NearRpc,
    signer: Signer,
    contract: AccountId,
    config: NearTxConfig,
    /// Held from reading the key to the node's answer, so nonces go out in the order they are taken.
    nonces: Mutex<NonceBook>,
    gas: std::sync::Mutex<GasTable>,
    /// Nonces found already used (at admission or execution) and replaced.
    stale_nonces: std::sync::atomic::AtomicU64,
}

/// A batch still to be confirmed, or to be sent (again).
enum Work {
    Sent(Admitted),
    Unsent(Vec<Any>),
}

/// Outcomes of the calls that went through, or those and the failure that stopped the rest.
pub type Settled = Result<Vec<NearTxOutcome>, (Vec<NearTxOutcome>, NearTxError)>;

impl NearTxSubmitter {
    /// A submitter signing with `signer` for calls to `contract`.
    pub fn new(rpc: NearRpc, signer: Signer, contract: AccountId, config: NearTxConfig) -> Self {
        Self {
            gas: std::sync::Mutex::new(config.gas_estimates.clone()),
            rpc,
            signer,
            contract,
            config,
            nonces: Mutex::new(NonceBook::default()),
            stale_nonces: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The signing account.
    pub fn account(&self) -> AccountId {
        self.signer.get_account_id()
    }

    /// The access key's public key.
    pub fn public_key(&self) -> near_crypto::PublicKey {
        self.signer.public_key()
    }

    /// How calls are made.
    pub fn config(&self) -> &NearTxConfig {
        &self.config
    }

    fn table(&self) -> std::sync::MutexGuard<'_, GasTable> {
        // The table holds plain numbers: one a panicking thread left half-updated is still usable.
        self.gas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many nonces were found already used and replaced by a fresh one since this submitter started.
    pub fn stale_nonces(&self) -> u64 {
        self.stale_nonces.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_stale(&self) {
        self.stale_nonces
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The gas estimates as learnt so far.
    pub fn gas_table(&self) -> GasTable {
        self.table().clone()
    }

    /// The learnt estimate for one message of `kind`.
    pub fn gas_per_message(&self, kind: MsgKind) -> u64 {
        self.table().per_message(kind)
    }

    /// Cuts `messages` into `deliver` calls, in order, each within the attached gas (less the margin) by the
    /// current estimates, `max_size` transaction bytes and `max_msgs` messages.
    pub fn batches(&self, messages: Vec<Any>, max_msgs: usize, max_size: usize) -> Vec<Vec<Any>> {
        let limits = BatchLimits::new(
            self.config.gas.as_gas(),
            self.config.gas_margin_percent,
            max_size,
            max_msgs,
        );
        batch::cut(messages, &self.table(), limits)
    }

    /// Signs `messages` into one `deliver` call with the key's next nonce and has the node accept it, without
    /// waiting for it to execute. A nonce the node reports used is replaced by one past the key's nonce and the
    /// call sent again (another sender may be using the key).
    pub async fn admit(&self, messages: Vec<Any>) -> Result<Admitted, NearTxError> {
        let chain = self.rpc.chain().to_owned();
        let mut book = self.nonces.lock().await;
        let mut ak_nonce = 0;
        for _ in 0..=self.config.nonce_retries {
            // The final block's view of the key gives a recent block hash to sign against; the nonces relayd has
            // outstanding are ahead of it.
            let (key, block_hash) = self
                .rpc
                .access_key(&self.signer.get_account_id(), &self.signer.public_key())
                .await?;
            let nonce = book.next(key.nonce);
            let signed = sign_deliver(
                &self.signer,
                &self.contract,
                &messages,
                nonce,
                block_hash,
                self.config.gas,
            );
            let tx_hash = signed.get_hash();
            let err = match self.rpc.send_tx(signed, TxExecutionStatus::None).await {
                Ok(_) => {
                    book.used(nonce);
                    return Ok(Admitted {
                        tx_hash,
                        nonce,
                        messages,
                    });
                }
                Err(e) => e,
            };
            let verdict = match &err {
                CallError::Call(e) => classify_error(e),
                // The transaction may have been admitted all the same.
                CallError::TooLarge { .. } => SendResult::Transport(err.to_string()),
            };
            match verdict {
                SendResult::StaleNonce(n) => {
                    tracing::debug!(chain, nonce, ak_nonce = n, "stale nonce, sending again");
                    ak_nonce = n;
                    book.stale(n);
                    self.count_stale();
                }
                // Refused before the pool: the nonce was not consumed.
                SendResult::Rejected(reason) => {
                    return Err(NearTxError::Rejected { chain, reason })
                }
                _ => {
                    // The transaction may have been accepted: read the nonce again next time.
                    book.forget();
                    return Err(NearTxError::Rpc(ChainError::rpc(
                        &chain,
                        "send_tx",
                        err.to_string(),
                    )));
                }
            }
        }
        book.forget();
        Err(NearTxError::NonceExhausted {
            chain,
            attempts: self.config.nonce_retries + 1,
            ak_nonce,
        })
    }

    /// Waits for an admitted call's outcome and learns its gas.
    async fn confirm(&self, admitted: &Admitted) -> Result<Confirmed, NearTxError> {
        let chain = self.rpc.chain().to_owned();
        let tx_hash = admitted.tx_hash;
        let response = self
            .rpc
            .tx_status(tx_hash, self.account(), self.config.wait_until.clone())
            .await?;
        let Some(outcome) = response.final_execution_outcome else {
            return Err(NearTxError::Unconfirmed { chain, tx_hash });
        };
        let prepaid = self.config.gas.as_gas();
        match classify_outcome(&outcome.into_outcome()) {
            SendResult::StaleNonce(n) => Ok(Confirmed::StaleNonce(n)),
            SendResult::Rejected(reason) => Err(NearTxError::Rejected { chain, reason }),
            SendResult::Transport(reason) => {
                Err(NearTxError::Rpc(ChainError::rpc(&chain, "tx", reason)))
            }
            SendResult::NoOutcome => Err(NearTxError::Unconfirmed { chain, tx_hash }),
            SendResult::Done {
                block_hash,
                receipt_blocks,
                logs,
                failure,
                refused,
                gas_burnt,
                receipt_gas,
            } => match failure {
                Some(f) if ran_out_of_gas(&f, receipt_gas, prepaid) => {
                    self.table().learn_exceeded(&admitted.messages, prepaid);
                    Err(NearTxError::OutOfGas {
                        chain,
                        tx_hash,
                        messages: admitted.messages.len(),
                        prepaid,
                    })
                }
                Some(f) => Err(NearTxError::Failed {
                    chain,
                    tx_hash,
                    reason: f.to_string(),
                }),
                None => {
                    self.table().learn(&admitted.messages, receipt_gas);
                    if refused {
                        return Err(NearTxError::MessageRefused {
                            chain,
                            tx_hash,
                            logs,
                        });
                    }
                    Ok(Confirmed::Outcome(NearTxOutcome {
                        tx_hash,
                        block_hash,
                        receipt_blocks,
                        logs,
                        gas_burnt,
                        receipt_gas,
                        nonce: admitted.nonce,
                        messages: admitted.messages.len(),
                    }))
                }
            },
        }
    }

    /// Waits for an admitted call until everything it carries executed: a call executed with a nonce another
    /// sender had used is sent again with a fresh one, and a call that ran out of gas is split in halves, each
    /// sent and settled in order. Stops at the first other failure.
    pub async fn settle(&self, admitted: Admitted) -> Settled {
        let chain = self.rpc.chain().to_owned();
        let mut work = VecDeque::from([Work::Sent(admitted)]);
        let mut outcomes = Vec::new();
        let mut resent = 0;
        while let Some(item) = work.pop_front() {
            let admitted = match item {
                Work::Sent(a) => a,
                Work::Unsent(messages) => match self.admit(messages).await {
                    Ok(a) => a,
                    Err(e) => return Err((outcomes, e)),
                },
            };
            match self.confirm(&admitted).await {
                Ok(Confirmed::Outcome(o)) => outcomes.push(o),
                Ok(Confirmed::StaleNonce(n)) => {
                    resent += 1;
                    if resent > self.config.nonce_retries {
                        let e = NearTxError::NonceExhausted {
                            chain,
                            attempts: resent,
                            ak_nonce: n,
                        };
                        return Err((outcomes, e));
                    }
                    tracing::debug!(
                        chain,
                        nonce = admitted.nonce,
                        ak_nonce = n,
                        "executed with a used nonce, sending again"
                    );
                    self.nonces.lock().await.stale(n);
                    self.count_stale();
                    work.push_front(Work::Unsent(admitted.messages));
                }
                Err(NearTxError::OutOfGas { .. }) if admitted.messages.len() > 1 => {
                    let mut first = admitted.messages;
                    let second = first.split_off(first.len() / 2);
                    tracing::debug!(
                        chain,
                        first = first.len(),
                        second = second.len(),
                        "deliver ran out of gas, splitting"
                    );
                    work.push_front(Work::Unsent(second));
                    work.push_front(Work::Unsent(first));
                }
                Err(e) => return Err((outcomes, e)),
            }
        }
        Ok(outcomes)
    }

    /// Delivers `messages` in one call and waits for its outcome (sent again with a fresh nonce if another
    /// sender used its nonce first).
    pub async fn submit(&self, messages: &[Any]) -> Result<NearTxOutcome, NearTxError> {
        let mut admitted = self.admit(messages.to_vec()).await?;
        let mut ak_nonce = 0;
        for _ in 0..=self.config.nonce_retries {
            match self.confirm(&admitted).await? {
                Confirmed::Outcome(o) => return Ok(o),
                Confirmed::StaleNonce(n) => {
                    ak_nonce = n;
                    self.nonces.lock().await.stale(n);
                    self.count_stale();
                    admitted = self.admit(admitted.messages).await?;
                }
            }
        }
        Err(NearTxError::NonceExhausted {
            chain: self.rpc.chain().to_owned(),
            attempts: self.config.nonce_retries + 1,
            ak_nonce,
        })
    }

    /// Delivers `messages` in order, in calls cut by gas, `max_num` messages and `max_size` bytes, one after the
    /// other, and stops at the first that fails: later messages usually depend on earlier ones (an update before
    /// the proof it makes checkable).
    pub async fn submit_all(
        &self,
        messages: Vec<Any>,
        max_num: usize,
        max_size: usize,
    ) -> Result<Vec<NearTxOutcome>, NearTxError> {
        let mut outcomes = Vec::new();
        for batch in self.batches(messages, max_num, max_size) {
            let admitted = self.admit(batch).await?;
            outcomes.extend(self.settle(admitted).await.map_err(|(_, e)| e)?);
        }
        Ok(outcomes)
    }
}
