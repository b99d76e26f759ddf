//! Building, signing, batching, broadcasting and confirming Cosmos SDK transactions for relayd.
//!
//! Gas comes from simulation × `gas_adjustment`, capped by `max_gas`; the fee is gas × `gas_price`. The account
//! number and sequence are held locally so several transactions can be admitted before the first is in a block;
//! a sequence mismatch (code 32) takes the number the node expects, or reads the account again once nothing is
//! in flight, and retries without losing the batch. Failures are classified so callers know what to retry and
//! what already happened.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::tx::{Body, Fee, SignDoc, SignerInfo};
use ibc_proto::google::protobuf::Any;
use prost::Message;
use tendermint_rpc::Client;
use tracing::{debug, warn};

mod error;

pub use error::{classify, TxError};

use super::rpc::CosmosRpc;
use crate::failure;
use relayd_messages::Refusal;

/// How transactions are priced and sized on one chain.
#[derive(Debug, Clone)]
pub struct TxConfig {
    /// The chain id signed into every transaction.
    pub chain_id: String,
    /// Gas limit when simulation is unavailable.
    pub default_gas: u64,
    /// Multiplier on simulated gas.
    pub gas_adjustment: f64,
    /// Fee per unit of gas.
    pub gas_price: f64,
    /// Fee denomination.
    pub fee_denom: String,
    /// Highest gas limit ever set.
    pub max_gas: u64,
    /// Most messages per transaction.
    pub max_msg_num: usize,
    /// Largest encoded message payload per transaction, in bytes.
    pub max_tx_size: usize,
    /// How long to wait for a broadcast transaction to be included.
    pub confirm_timeout: Duration,
    /// How often to look for it meanwhile.
    pub poll_interval: Duration,
    /// Most admitted transactions waiting for their block at once.
    pub max_in_flight: usize,
}

/// What happened to one transaction that made it into a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// Upper-case hex transaction hash.
    pub hash: String,
    /// The including block.
    pub height: u64,
    /// Gas the chain charged.
    pub gas_used: i64,
    /// The transaction's events.
    pub events: Vec<tendermint::abci::Event>,
    /// How many messages it carried.
    pub messages: usize,
}

impl TxOutcome {
    /// The sequences of the packets this transaction's `send_packet` events announce, in order.
    pub fn sent_sequences(&self) -> impl Iterator<Item = u64> + '_ {
        self.events
            .iter()
            .filter(|e| e.kind == "send_packet")
            .flat_map(|e| e.attributes.iter())
            .filter(|a| a.key_bytes() == b"packet_sequence")
            .filter_map(|a| a.value_str().ok().and_then(|v| v.parse().ok()))
    }
}

/// Splits messages into transactions of at most `max_num` messages and `max_size` encoded bytes, keeping order.
/// A single message larger than `max_size` travels alone; the chain decides about it.
pub fn batches(msgs: Vec<Any>, max_num: usize, max_size: usize) -> Vec<Vec<Any>> {
    let mut out: Vec<Vec<Any>> = Vec::new();
    let mut size = 0;
    for msg in msgs {
        let len = msg.encoded_len();
        let fits = out
            .last()
            .is_some_and(|b| b.len() < max_num.max(1) && size + len <= max_size);
        if !fits {
            out.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(batch) = out.last_mut() {
            batch.push(msg);
        }
    }
    out
}

/// Signs and submits transactions for one account on one chain.
///
/// Submission has two halves: [`TxSubmitter::admit_batch`] signs with the locally held sequence and broadcasts
/// (the node's CheckTx admits the transaction to its mempool), and [`TxSubmitter::confirmation`] waits for the
/// admitted transaction's block. Several admitted transactions may wait at once: the chain checks sequence n + 1
/// against its check-state, which already counts the admitted n.
pub struct TxSubmitter {
    rpc: CosmosRpc,
    config: TxConfig,
    key: SigningKey,
    address: String,
    /// (account number, next sequence); `None` until first needed or after a mismatch.
    account: Option<(u64, u64)>,
    /// How many admitted transactions wait for their confirmation; a confirmation counts itself out when it
    /// ends, whichever way.
    in_flight: tokio::sync::watch::Sender<usize>,
    /// A confirmation timed out: the node may have dropped that transaction, and with it the meaning of every
    /// later sequence; the account is read again once nothing is in flight.
    stale: Arc<AtomicBool>,
}

/// Attempts per batch before giving up on retryable failures.
const ATTEMPTS: usize = 4;
/// The longest a confirmation waits for word of the chain's next block before asking the node anyway.
const NEXT_BLOCK_WAIT: Duration = Duration::from_secs(1);

/// A transaction the node admitted to its mempool, not yet seen in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Its hash.
    pub hash: tendermint::Hash,
    /// The sequence it was signed with.
    pub sequence: u64,
    /// How many messages it carries.
    pub messages: usize,
}

/// What earlier attempts at one batch learnt about its gas and fee.
#[derive(Debug, Clone, Copy)]
struct Pricing {
    gas_bump: f64,
    min_fee: Option<u128>,
}

impl Pricing {
    /// Raises the gas or the fee after a failure that asks for more; other failures leave them.
    fn learn(&mut self, e: &TxError) {
        match e {
            TxError::OutOfGas { .. } => self.gas_bump *= 1.5,
            TxError::InsufficientFee { required, .. } => {
                self.min_fee = required.or(self.min_fee.map(|f| f + f / 2));
            }
            _ => {}
        }
    }
}

impl Default for Pricing {
    fn default() -> Self {
        Self {
            gas_bump: 1.0,
            min_fee: None,
        }
    }
}

/// Counts one admitted transaction as in flight until dropped.
struct InFlight(tokio::sync::watch::Sender<usize>);

impl InFlight {
    fn new(count: &tokio::sync::watch::Sender<usize>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl TxSubmitter {
    /// A submitter signing with `key` (whose address, with the chain's prefix, is `address`).
    pub fn new(rpc: CosmosRpc, config: TxConfig, key: SigningKey, address: String) -> Self {
        Self {
            rpc,
            config,
            key,
            address,
            account: None,
            in_flight: tokio::sync::watch::Sender::new(0),
            stale: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The signer's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The chain's RPC client.
    pub fn rpc(&self) -> &CosmosRpc {
        &self.rpc
    }

    /// The transaction settings.
    pub fn config(&self) -> &TxConfig {
        &self.config
    }

    fn rpc_err(&self, reason: impl std::fmt::Display) -> TxError {
        TxError::Rpc {
            chain: self.rpc.chain().to_owned(),
            reason: reason.to_string(),
        }
    }

    /// Submits `msgs` in as few transactions as the limits allow, in order; stops at the first batch that fails
    /// for good and returns what succeeded so far with that error.
    pub async fn submit(
        &mut self,
        msgs: Vec<Any>,
    ) -> Result<Vec<TxOutcome>, (Vec<TxOutcome>, TxError)> {
        let mut done = Vec::new();
        for batch in batches(msgs, self.config.max_msg_num, self.config.max_tx_size) {
            match self.submit_batch(&batch).await {
                Ok(outcome) => done.push(outcome),
                Err(e) => return Err((done, e)),
            }
        }
        Ok(done)
    }

    /// Sends one transaction and waits for its block, retrying sequence, gas and fee problems and a lost
    /// transaction.
    pub async fn submit_batch(&mut self, msgs: &[Any]) -> Result<TxOutcome, TxError> {
        let mut pricing = Pricing::default();
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            let admitted = self.admit_priced(msgs, &mut pricing).await?;
            match self.confirmation(admitted).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) => {
                    debug!(chain = self.rpc.chain(), attempt, error = %e, "transaction failed in its block");
                    pricing.learn(&e);
                    match &e {
                        TxError::OutOfGas { .. } | TxError::InsufficientFee { .. } => {}
                        TxError::Unconfirmed { .. }
                        | TxError::Rpc { .. }
                        | TxError::Sequence { .. } => self.account = None,
                        TxError::AlreadyRelayed { .. } | TxError::Rejected { .. } => return Err(e),
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| self.rpc_err("no attempt made")))
    }

    /// Signs `msgs` with the next sequence and has the node admit them, retrying sequence, gas, fee and node
    /// problems; the sequence moves on once admitted. Wait for the outcome with [`Self::confirmation`].
    pub async fn admit_batch(&mut self, msgs: &[Any]) -> Result<Admitted, TxError> {
        self.admit_priced(msgs, &mut Pricing::default()).await
    }

    async fn admit_priced(
        &mut self,
        msgs: &[Any],
        pricing: &mut Pricing,
    ) -> Result<Admitted, TxError> {
        let mut last = None;
        let mut settled_once = false;
        for attempt in 1..=ATTEMPTS {
            if self.stale.swap(false, Ordering::Relaxed) {
                self.settle().await;
                self.account = None;
            }
            let result = self.try_once(msgs, *pricing).await;
            match result {
                Ok(admitted) => return Ok(admitted),
                Err((stage, e)) => {
                    debug!(chain = self.rpc.chain(), attempt, error = %e, "transaction attempt failed");
                    pricing.learn(&e);
                    match &e {
                        TxError::Sequence { expected, .. } => {
                            // The node checks against its check-state, which counts what it admitted; the number
                            // it names is right. Without one, the committed account is right only once nothing
                            // of ours is in flight.
                            self.account = match (expected, self.account) {
                                (Some(seq), Some((number, _))) => Some((number, *seq)),
                                (Some(seq), None) => {
                                    self.account().await.ok().map(|(number, _)| (number, *seq))
                                }
                                (None, _) => {
                                    self.settle().await;
                                    None
                                }
                            };
                        }
                        TxError::OutOfGas { .. } | TxError::InsufficientFee { .. } => {}
                        TxError::Rpc { .. } | TxError::Unconfirmed { .. } => self.account = None,
                        TxError::AlreadyRelayed { .. } | TxError::Rejected { .. } => {
                            // Simulation runs on committed state, without the effects of our transactions still
                            // in the mempool (a packet of an ordered channel after one in flight, say): the
                            // refusal counts once they have settled.
                            if stage == Stage::Simulate && !settled_once && self.in_flight() > 0 {
                                settled_once = true;
                                self.settle().await;
                                continue;
                            }
                            return Err(e);
                        }
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| self.rpc_err("no attempt made")))
    }

    /// How many admitted transactions wait for their confirmation.
    pub fn in_flight(&self) -> usize {
        *self.in_flight.borrow()
    }

    /// Waits until no admitted transaction of this submitter waits for its block (each ends by its confirmation
    /// timeout at the latest).
    async fn settle(&self) {
        let mut rx = self.in_flight.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Waits for `admitted` to be included and reports its outcome; a transaction the chain executed with an
    /// error, or one not seen within the confirmation timeout, is an error. Independent of the submitter, so
    /// several run at once while more transactions are admitted.
    pub fn confirmation(
        &self,
        admitted: Admitted,
    ) -> impl std::future::Future<Output = Result<TxOutcome, TxError>> + Send + 'static {
        let rpc = self.rpc.clone();
        let timeout = self.config.confirm_timeout;
        let poll = self.config.poll_interval;
        let stale = self.stale.clone();
        let guard = InFlight::new(&self.in_flight);
        let mut tip = rpc.pool().tip();
        let admitted_at = *tip.borrow_and_update();
        async move {
            let _guard = guard;
            let hash = admitted.hash;
            let deadline = tokio::time::Instant::now() + timeout;
            // Where something announces the chain's blocks (the service's monitor and probes), the node is asked
            // only after each new block: right away, and once more a poll later, since a node may index a block's
            // transactions just after announcing it. Where nothing does, it is asked every poll.
            let announced = admitted_at > 0;
            let mut seen = admitted_at;
            let mut asked_in_block = 2;
            loop {
                if announced && asked_in_block == 2 {
                    let next = tip.wait_for(|t| *t > seen);
                    let _ = tokio::time::timeout(NEXT_BLOCK_WAIT, next).await;
                    seen = *tip.borrow_and_update();
                    asked_in_block = 0;
                }
                asked_in_block += 1;
                if let Ok(found) = rpc.http().tx(hash, false).await {
                    let result = found.tx_result;
                    if result.code.is_err() {
                        return Err(classify(
                            rpc.chain(),
                            result.code.value(),
                            &result.codespace,
                            &result.log,
                        ));
                    }
                    return Ok(TxOutcome {
                        hash: hash.to_string(),
                        height: found.height.value(),
                        gas_used: result.gas_used,
                        events: result.events,
                        messages: admitted.messages,
                    });
                }
                if tokio::time::Instant::now() >= deadline {
                    stale.store(true, Ordering::Relaxed);
                    return Err(TxError::Unconfirmed {
                        chain: rpc.chain().to_owned(),
                        hash: hash.to_string(),
                        waited: timeout,
                    });
                }
                if !announced || asked_in_block == 1 {
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }

    async fn account(&mut self) -> Result<(u64, u64), TxError> {
        if let Some(acc) = self.account {
            return Ok(acc);
        }
        let path = "/cosmos.auth.v1beta1.Query/Account";
        let req = QueryAccountRequest {
            address: self.address.clone(),
        };
        let res = self
            .rpc
            .abci_grpc(path, &req)
            .await
            .map_err(|e| self.rpc_err(format!("{path}: {e}")))?;
        if res.code.is_err() {
            return Err(self.rpc_err(format!("{path}: {}", res.log)));
        }
        let any = QueryAccountResponse::decode(res.value.as_slice())
            .ok()
            .and_then(|r| r.account)
            .ok_or_else(|| self.rpc_err(format!("{path}: no account {}", self.address)))?;
        let base = BaseAccount::decode(any.value.as_slice())
            .map_err(|e| self.rpc_err(format!("{path}: not a BaseAccount: {e}")))?;
        let acc = (base.account_number, base.sequence);
        self.account = Some(acc);
        Ok(acc)
    }

    fn sign(
        &self,
        msgs: &[Any],
        number: u64,
        sequence: u64,
        gas: u64,
        fee: u128,
    ) -> Result<Vec<u8>, TxError> {
        let denom = self
            .config
            .fee_denom
            .parse()
            .map_err(|e| self.rpc_err(format!("fee denom: {e}")))?;
        let body = Body::new(msgs.to_vec(), "", 0u32);
        let auth = SignerInfo::single_direct(Some(self.key.public_key()), sequence).auth_info(
            Fee::from_amount_and_gas(cosmrs::Coin { denom, amount: fee }, gas),
        );
        let chain_id = self
            .config
            .chain_id
            .parse()
            .map_err(|e| self.rpc_err(format!("chain id: {e}")))?;
        SignDoc::new(&body, &auth, &chain_id, number)
            .and_then(|doc| doc.sign(&self.key))
            .and_then(|raw| raw.to_bytes())
            .map_err(|e| self.rpc_err(format!("signing: {e}")))
    }

    /// Gas for `msgs`: simulation × adjustment × bump, capped; the default when the node cannot simulate.
    async fn gas(
        &self,
        msgs: &[Any],
        number: u64,
        sequence: u64,
        bump: f64,
    ) -> Result<u64, TxError> {
        let probe = self.sign(msgs, number, sequence, self.config.max_gas, 0)?;
        let path = "/cosmos.tx.v1beta1.Service/Simulate";
        let req = SimulateRequest {
            tx_bytes: probe,
            ..Default::default()
        };
        let res = self
            .rpc
            .abci_grpc(path, &req)
            .await
            .map_err(|e| self.rpc_err(format!("{path}: {e}")))?;
        let simulated = if res.code.is_ok() {
            SimulateResponse::decode(res.value.as_slice())
                .ok()
                .and_then(|r| r.gas_info)
                .map(|g| g.gas_used)
        } else if res.code.value() == 6 {
            None
        } else {
            return Err(classify(
                self.rpc.chain(),
                res.code.value(),
                &res.codespace,
                &res.log,
            ));
        };
        let gas = match simulated {
            Some(used) => (used as f64 * self.config.gas_adjustment * bump).ceil() as u64,
            None => (self.config.default_gas as f64 * bump).ceil() as u64,
        };
        if gas > self.config.max_gas {
            warn!(
                chain = self.rpc.chain(),
                gas,
                max_gas = self.config.max_gas,
                "gas capped at max_gas"
            );
        }
        Ok(gas.min(self.config.max_gas))
    }

    /// One signed broadcast with the locally held sequence; says at which stage it failed.
    async fn try_once(
        &mut self,
        msgs: &[Any],
        pricing: Pricing,
    ) -> Result<Admitted, (Stage, TxError)> {
        let (number, sequence) = self.account().await.map_err(|e| (Stage::Account, e))?;
        let gas = self
            .gas(msgs, number, sequence, pricing.gas_bump)
            .await
            .map_err(|e| (Stage::Simulate, e))?;
        let fee =
            ((gas as f64 * self.config.gas_price).ceil() as u128).max(pricing.min_fee.unwrap_or(0));
        let tx = self
            .sign(msgs, number, sequence, gas, fee)
            .map_err(|e| (Stage::Broadcast, e))?;
        // CometBFT names a transaction by the SHA-256 of its bytes; known before sending, for the case below.
        let own_hash = {
            use sha2::Digest;
            tendermint::Hash::Sha256(sha2::Sha256::digest(&tx).into())
        };
        let sync = self.rpc.http().broadcast_tx_sync(tx).await.map_err(|e| {
            (
                Stage::Broadcast,
                self.rpc_err(format!("broadcast_tx_sync: {e}")),
            )
        })?;
        let in_mempool =
            failure::classify(&sync.codespace, sync.code.value()) == Some(Refusal::TxInMempool);
        if in_mempool {
            // A node took these very bytes from an earlier broadcast whose answer was lost (an endpoint that went
            // away after admitting it, then the next endpoint asked): admitted, and waited for like any other.
            debug!(chain = self.rpc.chain(), sequence, hash = %own_hash, "the transaction is in the mempool already; waiting for it");
        } else if sync.code.is_err() {
            return Err((
                Stage::Broadcast,
                classify(
                    self.rpc.chain(),
                    sync.code.value(),
                    &sync.codespace,
                    &sync.log,
                ),
            ));
        }
        // Admitted: the sequence is used whatever happens to the messages.
        self.account = Some((number, sequence + 1));
        Ok(Admitted {
            hash: if in_mempool { own_hash } else { sync.hash },
            sequence,
            messages: msgs.len(),
        })
    }
}

/// Where an attempt at admitting a transaction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Account,
    Simulate,
    Broadcast,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(len: usize) -> Any {
        Any {
            type_url: "/x".into(),
            value: vec![0; len],
        }
    }

    #[test]
    fn batches_respect_count_size_and_order() {
        let msgs: Vec<Any> = (0..7).map(|i| msg(10 + i)).collect();
        let by_count = batches(msgs.clone(), 3, usize::MAX);
        assert_eq!(by_count.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(by_count.concat(), msgs);
        let one = msg(10).encoded_len();
        let by_size = batches(vec![msg(10), msg(10), msg(10)], 30, 2 * one);
        assert_eq!(by_size.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        let huge = batches(vec![msg(10), msg(5000), msg(10)], 30, 100);
        assert_eq!(huge.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
        assert!(batches(Vec::new(), 3, 100).is_empty());
    }
}
