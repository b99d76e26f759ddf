//! `deliver` transactions of one NEAR account as the TxSubmitter's submitter, and the NEAR event monitor as the
//! ChainMonitor's source.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use relayd_messages::{Datagram, ErrorKind, Refusal, RelayError, TxReport};
use tokio::sync::mpsc;

use crate::chain::endpoint::ChainError;
use crate::chain::near::monitor::NearEventMonitor;
use crate::chain::near::rpc::NearRpc;
use crate::chain::near::tx::{Admitted, NearTxError, NearTxOutcome, NearTxSubmitter};
use crate::chain_monitor::{BlockEvents, EventSource};
use crate::tx_submitter::{Confirmation, Submitter, TxOutcomes};

/// `deliver` transactions of one NEAR account.
pub struct NearSubmitter {
    inner: Arc<NearTxSubmitter>,
    rpc: NearRpc,
    account: String,
    /// The access key's public key (`ed25519:...`).
    key: String,
    max_msgs: usize,
    max_size: usize,
}

impl NearSubmitter {
    /// Wraps a `deliver` submitter; transactions carry at most `max_msgs` messages and `max_size` bytes, and as
    /// much estimated gas as the call is given.
    pub fn new(inner: NearTxSubmitter, rpc: NearRpc, max_msgs: usize, max_size: usize) -> Self {
        let account = inner.account().to_string();
        let key = inner.public_key().to_string();
        Self {
            key,
            inner: Arc::new(inner),
            rpc,
            account,
            max_msgs,
            max_size,
        }
    }
}

/// The report of an executed `deliver`: its height is the last block its receipts ran in, where the contract
/// recorded its IBC events.
async fn report(
    rpc: &NearRpc,
    outcome: &NearTxOutcome,
    messages: usize,
) -> Result<TxReport, ChainError> {
    let last = outcome
        .receipt_blocks
        .last()
        .copied()
        .unwrap_or(outcome.block_hash);
    let mut failure = None;
    for _ in 0..3 {
        match rpc.block_by_hash(last).await {
            Ok(block) => {
                return Ok(TxReport {
                    tx_hash: outcome.tx_hash.to_string(),
                    height: block.header.height,
                    messages,
                    gas_used: i64::try_from(outcome.gas_burnt).unwrap_or(i64::MAX),
                })
            }
            Err(e) => failure = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(failure.unwrap_or_else(|| ChainError::rpc(rpc.chain(), "block", "no answer")))
}

/// Waits for admitted calls in the order they were admitted, reporting each executed call; the first failure is
/// reported with what landed before it, after every admitted call has been waited for.
async fn settle_all(
    inner: Arc<NearTxSubmitter>,
    rpc: NearRpc,
    admitted: Vec<Admitted>,
    refused: Option<NearTxError>,
) -> TxOutcomes {
    let mut done = Vec::new();
    let mut failed: Option<RelayError> = None;
    for a in admitted {
        let (outcomes, error) = match inner.settle(a).await {
            Ok(outcomes) => (outcomes, None),
            Err((outcomes, e)) => (outcomes, Some(tx_error(&e))),
        };
        for o in outcomes {
            match report(&rpc, &o, o.messages).await {
                Ok(r) if failed.is_none() => done.push(r),
                Ok(_) => {}
                Err(e) => {
                    // Delivered, but its height is unknown: report the failure rather than a made-up height.
                    let reason = format!(
                        "deliver {} executed, but its block could not be read: {e}",
                        o.tx_hash
                    );
                    failed.get_or_insert(RelayError::new(ErrorKind::Unavailable, reason));
                }
            }
        }
        if let Some(e) = error {
            failed.get_or_insert(e);
        }
    }
    match failed.or_else(|| refused.as_ref().map(tx_error)) {
        None => Ok(done),
        Some(e) => Err((done, e)),
    }
}

/// How a `deliver` failure reads to the builders.
pub fn tx_error(e: &NearTxError) -> RelayError {
    let kind = match e {
        NearTxError::Rejected { .. }
        | NearTxError::Failed { .. }
        | NearTxError::OutOfGas { .. }
        | NearTxError::MessageRefused { .. } => ErrorKind::Rejected,
        NearTxError::Rpc(_)
        | NearTxError::NonceExhausted { .. }
        | NearTxError::Unconfirmed { .. } => ErrorKind::Unavailable,
    };
    // near-ibc reports a refused message in its logs only, with ibc-rs's wording.
    let refusal = match e {
        NearTxError::MessageRefused { logs, .. } => logs
            .iter()
            .find_map(|l| crate::failure::from_near_contract_log(l)),
        NearTxError::OutOfGas { .. } => Some(Refusal::OutOfGas),
        _ => None,
    };
    RelayError::new(kind, e.to_string()).with_refusal(refusal)
}

fn anys(msgs: Vec<Datagram>) -> Vec<Any> {
    msgs.into_iter()
        .map(|d| Any {
            type_url: d.type_url,
            value: d.value,
        })
        .collect()
}

impl Submitter for NearSubmitter {
    fn signer(&self) -> &str {
        &self.account
    }

    fn key_id(&self) -> Option<String> {
        Some(self.key.clone())
    }

    fn max_msgs(&self) -> usize {
        self.max_msgs
    }

    fn max_in_flight(&self) -> usize {
        self.inner.config().max_in_flight.max(1)
    }

    async fn submit(&mut self, msgs: Vec<Datagram>) -> TxOutcomes {
        match self.admit(msgs).await {
            Ok(confirmation) => confirmation.await,
            Err(e) => Err((Vec::new(), e)),
        }
    }

    /// Cuts the messages into `deliver` calls by estimated gas and size and has the node accept each, with
    /// increasing nonces; the confirmation waits for all of them (splitting any that runs out of gas).
    async fn admit(&mut self, msgs: Vec<Datagram>) -> Result<Confirmation, RelayError> {
        let mut admitted = Vec::new();
        let mut refused = None;
        for batch in self.inner.batches(anys(msgs), self.max_msgs, self.max_size) {
            match self.inner.admit(batch).await {
                Ok(a) => admitted.push(a),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if admitted.is_empty() {
            if let Some(e) = refused {
                return Err(tx_error(&e));
            }
        }
        Ok(Box::pin(settle_all(
            self.inner.clone(),
            self.rpc.clone(),
            admitted,
            refused,
        )))
    }
}

impl EventSource for NearEventMonitor {
    async fn run(
        self,
        start: u64,
        sink: mpsc::Sender<BlockEvents>,
        shutdown: impl Future<Output = ()> + 'static,
    ) {
        NearEventMonitor::run(self, start, sink, shutdown).await;
    }

    fn status(&self) -> Option<tokio::sync::watch::Receiver<crate::chain_monitor::MonitorStatus>> {
        Some(NearEventMonitor::status(self))
    }
}
