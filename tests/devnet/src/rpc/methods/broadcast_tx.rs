//! Broadcasting transactions (`broadcast_tx_sync`, `_async`, `_commit`): CheckTx's verdict now, and for
//! `_commit` the block that includes the transaction, waited for on the node's events.

use serde_json::Value;
use tendermint::{abci, Hash};
use tendermint_rpc::endpoint::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::{height, to_json, tx_hash, Ctx};
use crate::rpc::error::RpcError;
use crate::rpc::node::{NodeEvent, TxRecord};
use crate::rpc::params::Params;

impl Ctx {
    fn tx_arg(p: &Params) -> Result<Vec<u8>, RpcError> {
        match p.bytes("tx") {
            Some(tx) if !tx.is_empty() => Ok(tx),
            _ => Err(RpcError::internal("tx is empty")),
        }
    }

    pub(super) fn broadcast_tx_sync(&self, p: &Params) -> Result<Value, RpcError> {
        let tx = Self::tx_arg(p)?;
        let hash = tx_hash(&tx);
        let check = self.node.submit_tx(tx);
        to_json(&broadcast::tx_sync::Response {
            codespace: check.codespace,
            code: check.code,
            data: check.data,
            log: check.log,
            hash,
        })
    }

    pub(super) fn broadcast_tx_async(&self, p: &Params) -> Result<Value, RpcError> {
        let tx = Self::tx_arg(p)?;
        let hash = tx_hash(&tx);
        // Async callers only learn the hash; CheckTx's verdict is visible later through tx/tx_search.
        let check = self.node.submit_tx(tx);
        if check.code.is_err() {
            tracing::debug!(%hash, code = check.code.value(), log = %check.log, "broadcast_tx_async: CheckTx rejected");
        }
        to_json(&broadcast::tx_async::Response {
            codespace: String::new(),
            code: abci::Code::Ok,
            data: Default::default(),
            log: String::new(),
            hash,
        })
    }

    pub(super) async fn broadcast_tx_commit(&self, p: &Params) -> Result<Value, RpcError> {
        let tx = Self::tx_arg(p)?;
        let hash = tx_hash(&tx);
        // Subscribe before submitting so the commit event cannot slip past.
        let mut events = self.node.subscribe();
        let check_tx = self.node.submit_tx(tx);
        if check_tx.code.is_err() {
            return commit_response(check_tx, hash, None);
        }
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::Tx(rec)) if rec.hash == hash => return Ok(rec),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        if let Some(rec) = self.node.tx(&hash) {
                            return Ok(rec);
                        }
                    }
                    Err(RecvError::Closed) => {
                        return Err(RpcError::internal(
                            "failed to wait for tx commit: the node stopped",
                        ))
                    }
                }
            }
        };
        match tokio::time::timeout(self.config.broadcast_tx_commit_timeout, wait).await {
            Ok(rec) => commit_response(check_tx, hash, Some(rec?.as_ref())),
            Err(_) => Err(RpcError::internal(
                "timed out waiting for tx to be included in a block",
            )),
        }
    }
}

/// The `broadcast_tx_commit` result; `rec` is `None` when CheckTx rejected the transaction (height 0).
fn commit_response(
    check_tx: abci::response::CheckTx,
    hash: Hash,
    rec: Option<&TxRecord>,
) -> Result<Value, RpcError> {
    let (tx_result, included_at) = match rec {
        Some(r) => (r.result.clone(), r.height),
        None => (abci::types::ExecTxResult::default(), 0),
    };
    let mut out = to_json(&broadcast::tx_commit::Response {
        check_tx,
        tx_result,
        hash,
        height: height(included_at)?,
    })?;
    // v0.38's CheckTx has no sender/priority/mempool_error any more.
    if let Some(check) = out.get_mut("check_tx").and_then(Value::as_object_mut) {
        for gone in ["sender", "priority", "mempool_error"] {
            check.remove(gone);
        }
    }
    Ok(out)
}
