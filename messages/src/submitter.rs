//! The TxSubmitter's shutdown message (its transactions arrive as [`crate::SubmitTx`]).

use actix::Message;

/// Sends no new transaction from now on; answers once every transaction in flight, if any, has its outcome
/// (shutdown).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct FinishInFlight;
