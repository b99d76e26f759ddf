//! What a host application embedding relayd hears: a packet's completion, filtered from its lifecycle changes.

use actix::Message;

use crate::PacketKey;

/// How a packet finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Received on the destination and its acknowledgement relayed back.
    Acknowledged,
    /// Timed out, and the timeout relayed back to the source.
    TimedOut,
    /// Given up on after its attempts; kept as a dead letter.
    Failed,
    /// Not relayed by policy (an ICS-20 memo or receiver over its configured size).
    Skipped,
}

/// A packet finished: what most hosts want to hear instead of every lifecycle step.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct PacketCompleted {
    /// The packet.
    pub key: PacketKey,
    /// How it finished.
    pub outcome: PacketOutcome,
    /// The transaction that finished it, when known.
    pub tx_hash: Option<String>,
    /// Why it failed, for failures.
    pub error: Option<String>,
}
