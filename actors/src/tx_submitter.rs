//! The TxSubmitter actor: one chain's transactions. Requests queue and each transaction takes as many as
//! `max_msg_num` allows, so throughput grows with load instead of one packet per block. Up to the submitter's
//! `max_in_flight` transactions are admitted to the chain and wait for their blocks at once, each request
//! answered when its own transaction's outcome is known. Each client update is sent once per transaction, and
//! not at all once it is known on chain. A chain with several signing keys has one lane per key, each with its
//! own queue and sequence; a lane whose account falls below the chain's `min_balance` is drained until topped
//! up.

mod actor;
pub mod backend;
mod board;
mod funds;
#[cfg(test)]
mod lane_tests;
mod state;
#[cfg(test)]
mod tests;

pub use actor::*;
pub use backend::{Confirmation, ReadBalance, Submitter, TxOutcomes, Wallet};
pub use board::{LaneBoard, LaneView};
