//! What the per-chain actors need from a chain, independent of its kind. Cosmos implements it over CometBFT
//! RPC and ABCI queries; NEAR over the IBC contract's view calls and `view_state` proofs, with function-call
//! transactions beside it (see `docs/ARCHITECTURE.md`, "Chain endpoint" and "NEAR backend").
//!
//! IBC state is named by ICS-24 paths and carried as the protobuf bytes every IBC host stores, so the same
//! values and proofs flow whatever the chain.

use std::fmt;

/// A height to query at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryHeight {
    /// The latest committed state.
    Latest,
    /// The state after the block at this height.
    At(u64),
}

/// A value read from a chain's IBC store, with the height it was read at and, if asked, its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// The stored bytes; empty when the key is absent.
    pub value: Vec<u8>,
    /// The height whose state was read. Its proof verifies against the app hash of the header at
    /// `height + 1`, the height relayd sends as `proof_height`.
    pub height: u64,
    /// The chain's proof of the value: on Cosmos protobuf `MerkleProof` bytes, innermost store first; on NEAR a
    /// borsh `NearStateProof` that checks against the block after `height`. `None` when no proof was asked for.
    pub proof: Option<Vec<u8>>,
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
    /// The IBC events of one block.
    async fn ibc_events_at(
        &self,
        height: u64,
    ) -> Result<Vec<relayd_messages::ObservedEvent>, ChainError>;
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
