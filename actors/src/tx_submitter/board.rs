//! What the TxSubmitter shows of its lanes to whoever reports on the chain (the admin API, the metrics): each
//! signing account's balance, whether its lane is drained and the work it holds. The actor writes it; readers
//! on other threads take a copy.

use std::sync::{Arc, RwLock};

use serde::Serialize;

/// One signer lane as last published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaneView {
    /// The key name in relayd's key store (empty for a backend that does not name its keys).
    pub key: String,
    /// The account's address.
    pub address: String,
    /// The fee denom the balance is in (empty when the backend does not read balances).
    pub denom: String,
    /// The balance last read, a decimal string (amounts exceed JSON's safe integers).
    pub balance: Option<String>,
    /// Why the last reading failed.
    pub balance_error: Option<String>,
    /// The chain's `min_balance`, a decimal string, if set.
    pub min_balance: Option<String>,
    /// The balance is below `min_balance`.
    pub low: bool,
    /// The lane takes no new work (it is low and another lane is not).
    pub drained: bool,
    /// Requests waiting in the lane's queue.
    pub queued: usize,
    /// Requests in transactions being admitted or waiting for their blocks.
    pub in_flight: usize,
}

impl LaneView {
    /// `"drained"` or `"active"`.
    pub fn state(&self) -> &'static str {
        if self.drained {
            "drained"
        } else {
            "active"
        }
    }
}

/// The lanes of one chain's TxSubmitter, shared with readers on other threads.
#[derive(Debug, Clone, Default)]
pub struct LaneBoard(Arc<RwLock<Vec<LaneView>>>);

impl LaneBoard {
    /// Replaces the lanes shown.
    pub fn publish(&self, lanes: Vec<LaneView>) {
        match self.0.write() {
            Ok(mut v) => *v = lanes,
            Err(poisoned) => *poisoned.into_inner() = lanes,
        }
    }

    /// The lanes as last published (empty before the TxSubmitter first ran).
    pub fn lanes(&self) -> Vec<LaneView> {
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
