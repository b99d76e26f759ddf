//! `deliver` transactions of one NEAR account as the TxSubmitter's submitter, and the NEAR event monitor as the
//! ChainMonitor's source.

use std::future::Future;
use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use relayd_messages::{Datagram, ErrorKind, RelayError, TxReport};
use tokio::sync::mpsc;

use crate::chain::endpoint::ChainError;
use crate::chain::near::monitor::NearEventMonitor;
use crate::chain::near::rpc::NearRpc;
use crate::chain::near::tx::{NearTxError, NearTxOutcome, NearTxSubmitter};
use crate::chain_monitor::{BlockEvents, EventSource};
use crate::tx_submitter::Submitter;

/// `deliver` transactions of one NEAR account.
pub struct NearSubmitter {
    inner: NearTxSubmitter,
    rpc: NearRpc,
    account: String,
    max_msgs: usize,
    max_size: usize,
}

impl NearSubmitter {
    /// Wraps a `deliver` submitter; transactions carry at most `max_msgs` messages and `max_size` bytes.
    pub fn new(inner: NearTxSubmitter, rpc: NearRpc, max_msgs: usize, max_size: usize) -> Self {
        let account = inner.account().to_string();
        Self {
            inner,
            rpc,
            account,
            max_msgs,
            max_size,
        }
    }

    /// The report of an executed `deliver`: its height is the last block its receipts ran in, where the contract
    /// recorded its IBC events.
    async fn report(
        &self,
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
            match self.rpc.block_by_hash(last).await {
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
        Err(failure.unwrap_or_else(|| ChainError::rpc(self.rpc.chain(), "block", "no answer")))
    }
}

/// How a `deliver` failure reads to the builders.
pub fn tx_error(e: &NearTxError) -> RelayError {
    let kind = match e {
        NearTxError::Rejected { .. }
        | NearTxError::Failed { .. }
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
        _ => None,
    };
    RelayError::new(kind, e.to_string()).with_refusal(refusal)
}

impl Submitter for NearSubmitter {
    fn signer(&self) -> &str {
        &self.account
    }

    fn max_msgs(&self) -> usize {
        self.max_msgs
    }

    async fn submit(
        &mut self,
        msgs: Vec<Datagram>,
    ) -> Result<Vec<TxReport>, (Vec<TxReport>, RelayError)> {
        let anys = msgs
            .into_iter()
            .map(|d| Any {
                type_url: d.type_url,
                value: d.value,
            })
            .collect();
        let mut done = Vec::new();
        for batch in crate::chain::cosmos::tx::batches(anys, self.max_msgs, self.max_size) {
            let outcome = match self.inner.submit(&batch).await {
                Ok(outcome) => outcome,
                Err(e) => return Err((done, tx_error(&e))),
            };
            match self.report(&outcome, batch.len()).await {
                Ok(report) => done.push(report),
                Err(e) => {
                    // Delivered, but its height is unknown: report the failure rather than a made-up height.
                    let reason = format!(
                        "deliver {} executed, but its block could not be read: {e}",
                        outcome.tx_hash
                    );
                    return Err((done, RelayError::new(ErrorKind::Unavailable, reason)));
                }
            }
        }
        Ok(done)
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
}
