//! The Querier's messages: reads of a chain's IBC store (with proofs), its hosted clients, pending packets, and
//! the events and messages of its transactions.

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::{ClientId, CorrelationId, Datagram, ObservedEvent, Proven, RelayError};

/// Read an ICS-24 path, with a proof (PacketBuilder → Querier).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Proven, RelayError>")]
pub struct QueryProof {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The ICS-24 path.
    pub path: String,
    /// The height; `None` means the latest the querier knows of.
    pub height: Option<u64>,
}

/// What relayd needs of a client hosted on a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSummary {
    /// The client.
    pub client_id: ClientId,
    /// The chain it tracks.
    pub tracked_chain: String,
    /// Its latest consensus height (revision height).
    pub latest_height: u64,
    /// Whether it is frozen (misbehaviour was submitted).
    pub frozen: bool,
    /// Its trusting period in seconds.
    pub trusting_period_secs: u64,
    /// Its ICS-23 proof specs, each protobuf-encoded, which judge proofs from the tracked chain.
    pub proof_specs: Vec<Vec<u8>>,
    /// The app hash and next validators hash of its consensus state at `latest_height`: where relayd's own
    /// light client may anchor its trust when it has none yet.
    pub anchor: Option<(Vec<u8>, Vec<u8>)>,
    /// The block time of its consensus state at `latest_height`, ns since the epoch: the client expires a
    /// trusting period after it.
    pub consensus_time_ns: Option<u64>,
}

/// Read a hosted client's state (PacketBuilder → Querier of the chain hosting the client).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ClientSummary, RelayError>")]
pub struct QueryClient {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The client.
    pub client_id: ClientId,
}

/// Which packets of a channel still need relaying, from commitments and unreceived queries (clearing).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<u64>, RelayError>")]
pub struct QueryCommitments {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The port on the queried chain.
    pub port: String,
    /// The channel on the queried chain.
    pub channel: String,
}

/// Which of `sequences` the queried chain (the destination) has not received or, for acks, not processed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<u64>, RelayError>")]
pub struct QueryUnreceived {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The port on the queried chain.
    pub port: String,
    /// The channel on the queried chain.
    pub channel: String,
    /// Candidate sequences.
    pub sequences: Vec<u64>,
    /// `false`: unreceived packets; `true`: unreceived acknowledgements.
    pub acks: bool,
}

/// Which packet events [`QueryPacketEvents`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PacketEventKind {
    /// `send_packet` on the queried (source) chain, by source port and channel.
    Sent,
    /// `write_acknowledgement` on the queried (destination) chain, by destination port and channel.
    AckWritten,
}

/// The send or write-ack events of some sequences of a channel, from the chain's transaction index: the packet
/// data (and ack bytes) of packets relayd never saw, for clearing after a fresh start (coordinator → Querier).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<ObservedEvent>, RelayError>")]
pub struct QueryPacketEvents {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// Send or write-ack.
    pub kind: PacketEventKind,
    /// The port on the queried chain.
    pub port: String,
    /// The channel on the queried chain.
    pub channel: String,
    /// The sequences wanted.
    pub sequences: Vec<u64>,
}

/// The messages of a committed, successful transaction, by hash, as `Any`s in their order: where the
/// misbehaviour watcher finds the header of an `update_client` event that carries none (ibc-go v9 and later),
/// in the transaction's `MsgUpdateClient` (MisbehaviourWatcher → Querier of the client's host).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<Datagram>, RelayError>")]
pub struct QueryTxMessages {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The transaction's hash, hex, as events carry it.
    pub tx_hash: String,
}
