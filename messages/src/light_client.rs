//! The LightClient's messages: client updates built from headers relayd verified itself, and the verified
//! headers, heads and state roots it holds.

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::{ClientId, CorrelationId, Datagram, RelayError};

/// A verified header set that brings a client to `target` (PacketBuilder → LightClient of the tracked chain).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ClientUpdate, RelayError>")]
pub struct PrepareClientUpdate {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The client on the counterparty that tracks this light client's chain.
    pub client_id: ClientId,
    /// The client's latest height on the counterparty, where its trust starts.
    pub trusted_height: u64,
    /// The client's consensus state at `trusted_height` (app hash, next validators hash), from
    /// [`crate::ClientSummary::anchor`].
    pub anchor: Option<(Vec<u8>, Vec<u8>)>,
    /// The height the client must hold a consensus state for.
    pub target: u64,
    /// The account that will sign the update on the counterparty.
    pub signer: String,
}

/// The answer to [`PrepareClientUpdate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUpdate {
    /// The height made available.
    pub target: u64,
    /// The app hash of the header at `target`, verified by relayd's own light client: proofs taken at
    /// `target - 1` are checked against it before they are forwarded.
    pub app_hash: Vec<u8>,
    /// The update messages (empty if the client already holds `target`).
    pub msgs: Vec<Datagram>,
}

/// A header of a chain as relayd's own light client verified it (LightClient → MisbehaviourWatcher). The
/// encodings are CometBFT's protobuf ones, so the vocabulary stays free of any chain library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedHeader {
    /// Its height.
    pub height: u64,
    /// Its block time, ns since the epoch.
    pub time_ns: u64,
    /// Protobuf `tendermint.types.SignedHeader`.
    pub signed_header: Vec<u8>,
    /// Protobuf `tendermint.types.ValidatorSet`: the validators at `height`, which signed it.
    pub validator_set: Vec<u8>,
}

/// What relayd's light client holds at a height (the answer to [`QueryVerifiedHeader`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HeaderAt {
    /// The chain's header at the height asked for, verified.
    Reached(VerifiedHeader),
    /// The chain has not reached the height yet: its latest header, verified, for the BFT-time rule (a later
    /// header may not carry an earlier time).
    NotYet(VerifiedHeader),
}

/// The header of this chain at `height`, verified by relayd's own light client from its trusted state
/// (MisbehaviourWatcher → LightClient of the tracked chain).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<HeaderAt, RelayError>")]
pub struct QueryVerifiedHeader {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The height.
    pub height: u64,
    /// Where to anchor trust when relayd holds none at or below `height`: a height and the counterparty
    /// client's consensus state there (app hash, next validators hash), as in [`PrepareClientUpdate::anchor`].
    pub anchor: Option<(u64, ConsensusAnchor)>,
}

/// A head of a chain whose light client verifies some heights only (NEAR serves light-client blocks at final
/// heads), as the proof-height rule needs it: its header commits to the state after its parent, so proofs for
/// it are read at `parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedHead {
    /// The head's height.
    pub height: u64,
    /// Its parent block's height (heights may be skipped).
    pub parent: u64,
    /// Its block time, ns since the epoch.
    pub time_ns: u64,
}

/// The heads relayd's light client has verified at or above `from`, newest first, after moving its trusted state
/// to the chain's latest (Builders → LightClient of a chain that proves at verified heads only).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<VerifiedHead>, RelayError>")]
pub struct QueryVerifiedHeads {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The lowest height of interest (the counterparty client's latest height).
    pub from: u64,
}

/// The state root the block at `height` commits to, as relayd's own light client of this chain verified that
/// block: NEAR's `prev_state_root`, which a `12-near` client's consensus state at `height` holds as its root
/// (HandshakeBuilder → LightClient of a NEAR chain, to tell which chain a `12-near` client tracks). Refused
/// (`Rejected`, not a node failure) when relayd holds no verified block at `height`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<u8>, RelayError>")]
pub struct QueryVerifiedRoot {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The height.
    pub height: u64,
}

/// A client's consensus state as relayd's light client may anchor its trust on it: (app hash, next validators
/// hash).
pub type ConsensusAnchor = (Vec<u8>, Vec<u8>);
