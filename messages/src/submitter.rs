//! The TxSubmitter's messages: the datagrams it broadcasts, what became of them, and its shutdown.

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::{ClientId, CorrelationId, Datagram, RelayError};

/// Broadcast datagrams, after the client update they need, in as few transactions as the limits allow
/// (PacketBuilder → TxSubmitter of the destination).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<TxReport, RelayError>")]
pub struct SubmitTx {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The client update the datagrams depend on: (client, height) and its messages. The submitter sends each
    /// (client, height) once per transaction and skips updates it already saw committed.
    pub update: Option<(ClientId, u64, Vec<Datagram>)>,
    /// The datagrams.
    pub datagrams: Vec<Datagram>,
    /// Higher goes into the next transaction first when requests queue (the path's configured priority).
    pub priority: u8,
    /// The channel end (`port/channel` on this chain) of an ordered channel the datagrams belong to: such
    /// requests all go out on one signer of a chain with several, so that their order holds. `None` for any
    /// other request, which may go out on any signer.
    pub ordered_channel: Option<String>,
}

/// What happened to submitted datagrams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxReport {
    /// The including transaction.
    pub tx_hash: String,
    /// Its height.
    pub height: u64,
    /// Messages in that transaction (all requests batched with this one).
    pub messages: usize,
    /// Gas it used.
    pub gas_used: i64,
}

/// Sends no new transaction from now on; answers once every transaction in flight, if any, has its outcome
/// (shutdown).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct FinishInFlight;
