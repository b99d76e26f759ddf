//! What the per-chain actors need from a chain, independent of its kind. Cosmos implements it over CometBFT
//! RPC and ABCI queries; NEAR over the IBC contract's view calls and `view_state` proofs, with function-call
//! transactions beside it (see `docs/ARCHITECTURE.md`, "Chain endpoint" and "NEAR backend").
//!
//! IBC state is named by ICS-24 paths and carried as the protobuf bytes every IBC host stores, so the same
//! values and proofs flow whatever the chain.

use std::fmt;

use ibc_proto::ibc::core::channel::v1::{Channel, Order, State};
use ibc_proto::ibc::core::connection::v1::ConnectionEnd;
use prost::Message;

/// A height to query at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryHeight {
    /// The latest committed state.
    Latest,
    /// The state after the block at this height.
    At(u64),
}

pub use relayd_messages::Proven;

/// Whether `e` is the `kind` event of a packet on `port`/`channel` whose sequence is still `wanted`; the sequence
/// is taken out of `wanted` when it is. Every chain kind's `packet_events` filters what it finds with this.
pub fn take_packet_event(
    e: &relayd_messages::ObservedEvent,
    kind: relayd_messages::PacketEventKind,
    port: &str,
    channel: &str,
    wanted: &mut std::collections::HashSet<u64>,
) -> bool {
    use relayd_messages::{IbcEvent, PacketEventKind};
    let (p, c, sequence) = match (&e.event, kind) {
        (IbcEvent::SendPacket(packet), PacketEventKind::Sent) => (
            &packet.source_port,
            &packet.source_channel,
            packet.sequence.0,
        ),
        (IbcEvent::WriteAcknowledgement { packet, .. }, PacketEventKind::AckWritten) => (
            &packet.destination_port,
            &packet.destination_channel,
            packet.sequence.0,
        ),
        _ => return false,
    };
    p.as_str() == port && c.as_str() == channel && wanted.remove(&sequence)
}

/// What the per-chain actors ask of a chain, whatever its kind. Transactions go through the chain's submitter
/// (`cosmos::tx::TxSubmitter`) and headers through its light-block source, because both keep state of their own.
#[allow(async_fn_in_trait)]
pub trait ChainEndpoint {
    /// The chain id.
    fn chain_id(&self) -> &str;
    /// The latest committed height.
    async fn latest_height(&self) -> Result<u64, ChainError>;
    /// The value at an ICS-24 path of the IBC store, with a proof if asked.
    async fn query_ibc(
        &self,
        path: &str,
        height: QueryHeight,
        prove: bool,
    ) -> Result<Proven, ChainError>;
    /// Sequences with a packet commitment on a channel.
    async fn packet_commitments(&self, port: &str, channel: &str) -> Result<Vec<u64>, ChainError>;
    /// Sequences with a written acknowledgement on a channel.
    async fn packet_acknowledgements(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<Vec<u64>, ChainError>;
    /// Of `sequences` sent to this chain's channel, those it has not received.
    async fn unreceived_packets(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError>;
    /// Of `sequences` acknowledged on the counterparty, those whose acks this chain has not processed.
    async fn unreceived_acks(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError>;
    /// The port and channel on the counterparty, the connection and the ordering of a channel on this chain.
    async fn channel_route(&self, port: &str, channel: &str) -> Result<ChannelInfo, ChainError> {
        let p = path::channel(port, channel);
        let raw = self.query_ibc(&p, QueryHeight::Latest, false).await?;
        let chain = self.chain_id();
        if raw.value.is_empty() {
            return Err(ChainError::rpc(chain, &p, "no such channel"));
        }
        ChannelInfo::decode(chain, &p, &raw.value)
    }

    /// The client a connection on this chain is built on.
    async fn connection_client(&self, connection: &str) -> Result<String, ChainError> {
        let p = path::connection(connection);
        let raw = self.query_ibc(&p, QueryHeight::Latest, false).await?;
        let chain = self.chain_id();
        if raw.value.is_empty() {
            return Err(ChainError::rpc(chain, &p, "no such connection"));
        }
        let end = ConnectionEnd::decode(raw.value.as_slice())
            .map_err(|e| ChainError::rpc(chain, &p, format!("undecodable connection end: {e}")))?;
        Ok(end.client_id)
    }

    /// The send or write-ack events of `sequences` on a channel of this chain, found through the chain's
    /// transaction index. Chains without one answer with an error naming the gap.
    async fn packet_events(
        &self,
        kind: relayd_messages::PacketEventKind,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<relayd_messages::ObservedEvent>, ChainError> {
        let _ = (kind, port, channel, sequences);
        Err(ChainError::Node {
            chain: self.chain_id().to_owned(),
            call: "packet events".into(),
            reason: "this chain kind has no transaction index to find old packet events in".into(),
        })
    }

    /// The messages of the committed, successful transaction `tx_hash` (hex), in order. Chains without a
    /// transaction index answer with an error naming the gap.
    async fn tx_messages(
        &self,
        tx_hash: &str,
    ) -> Result<Vec<relayd_messages::Datagram>, ChainError> {
        Err(ChainError::Node {
            chain: self.chain_id().to_owned(),
            call: format!("tx {tx_hash}"),
            reason: "this chain kind has no transaction index to read messages from".into(),
        })
    }

    /// The IBC events of one block.
    async fn ibc_events_at(
        &self,
        height: u64,
    ) -> Result<Vec<relayd_messages::ObservedEvent>, ChainError>;
}

/// A channel end as routing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The counterparty's port.
    pub counterparty_port: String,
    /// The counterparty's channel (empty while the handshake has not reached it).
    pub counterparty_channel: String,
    /// The connection the channel runs over.
    pub connection: String,
    /// Whether packets must be delivered in sequence order.
    pub ordered: bool,
    /// Whether the channel is open (closed channels only take timeouts).
    pub open: bool,
}

impl ChannelInfo {
    /// The channel end stored at `p` on `chain` (its protobuf bytes, as the IBC store holds them).
    pub fn decode(chain: &str, p: &str, value: &[u8]) -> Result<Self, ChainError> {
        let end = Channel::decode(value)
            .map_err(|e| ChainError::rpc(chain, p, format!("undecodable channel end: {e}")))?;
        Ok(Self::of(end))
    }

    /// What routing needs of a channel end.
    pub fn of(end: Channel) -> Self {
        let counterparty = end.counterparty.unwrap_or_default();
        Self {
            counterparty_port: counterparty.port_id,
            counterparty_channel: counterparty.channel_id,
            connection: end.connection_hops.into_iter().next().unwrap_or_default(),
            ordered: end.ordering == Order::Ordered as i32,
            open: end.state == State::Open as i32,
        }
    }
}

/// ICS-24 paths of the IBC store.
pub mod path {
    /// `clients/{client}/clientState`
    pub fn client_state(client: &str) -> String {
        format!("clients/{client}/clientState")
    }
    /// `clients/{client}/consensusStates/{rev}-{height}`
    pub fn consensus_state(client: &str, revision: u64, height: u64) -> String {
        format!("clients/{client}/consensusStates/{revision}-{height}")
    }
    /// `connections/{connection}`
    pub fn connection(connection: &str) -> String {
        format!("connections/{connection}")
    }
    /// `channelEnds/ports/{port}/channels/{channel}`
    pub fn channel(port: &str, channel: &str) -> String {
        format!("channelEnds/ports/{port}/channels/{channel}")
    }
    /// `commitments/ports/{port}/channels/{channel}/sequences/{seq}`
    pub fn commitment(port: &str, channel: &str, seq: u64) -> String {
        format!("commitments/ports/{port}/channels/{channel}/sequences/{seq}")
    }
    /// `acks/ports/{port}/channels/{channel}/sequences/{seq}`
    pub fn ack(port: &str, channel: &str, seq: u64) -> String {
        format!("acks/ports/{port}/channels/{channel}/sequences/{seq}")
    }
    /// `receipts/ports/{port}/channels/{channel}/sequences/{seq}`
    pub fn receipt(port: &str, channel: &str, seq: u64) -> String {
        format!("receipts/ports/{port}/channels/{channel}/sequences/{seq}")
    }
    /// `nextSequenceRecv/ports/{port}/channels/{channel}`
    pub fn next_sequence_recv(port: &str, channel: &str) -> String {
        format!("nextSequenceRecv/ports/{port}/channels/{channel}")
    }
}

/// Why a chain request failed. Each variant names the chain; none carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The node could not be reached or answered garbage.
    #[error("{chain}: {call}: {reason}")]
    Rpc {
        /// The chain.
        chain: String,
        /// What was asked.
        call: String,
        /// The transport or decoding error.
        reason: String,
    },
    /// The node answered with an application error.
    #[error("{chain}: {call}: code {code}: {log}")]
    Query {
        /// The chain.
        chain: String,
        /// What was asked.
        call: String,
        /// The ABCI code.
        code: u32,
        /// The node's message.
        log: String,
    },
    /// A NEAR node answered with an error of its own: an unknown block, a contract that panicked, a view of an
    /// account that does not exist.
    #[error("{chain}: {call}: {reason}")]
    Node {
        /// The chain.
        chain: String,
        /// What was asked.
        call: String,
        /// The node's error.
        reason: String,
    },
    /// The node's answer was larger than relayd reads from a node; it was refused unread.
    #[error("{chain}: {call}: the node's answer is larger than {limit} bytes; refused")]
    TooLarge {
        /// The chain.
        chain: String,
        /// What was asked.
        call: String,
        /// The bound, in bytes.
        limit: usize,
    },
    /// A proof was asked for and none came back.
    #[error("{chain}: {path} at height {height}: the node returned no proof")]
    MissingProof {
        /// The chain.
        chain: String,
        /// The path.
        path: String,
        /// The height.
        height: u64,
    },
}

impl ChainError {
    /// Shorthand for an RPC-level failure.
    pub fn rpc(chain: &str, call: &str, reason: impl fmt::Display) -> Self {
        Self::Rpc {
            chain: chain.to_owned(),
            call: call.to_owned(),
            reason: reason.to_string(),
        }
    }
}
