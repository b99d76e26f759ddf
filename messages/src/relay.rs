//! The messages relayd's actors exchange. Commands are imperative (`SubmitTx`), queries start with `Query`,
//! events are in the past tense (`BlockObserved`). Every message that starts work carries a [`CorrelationId`],
//! which the actors' tracing spans and the packet's lifecycle record carry too, so one packet can be followed
//! through every actor's log lines.
//!
//! The Querier's, the LightClient's and the TxSubmitter's messages live in `querier`, `light_client` and
//! `submitter`, and are re-exported here.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::{ChainId, ClientId, HandshakeState, ObservedEvent, PacketState, RelayObject};

pub use crate::light_client::{
    ClientUpdate, ConsensusAnchor, HeaderAt, PrepareClientUpdate, QueryVerifiedHeader,
    QueryVerifiedHeads, QueryVerifiedRoot, VerifiedHead, VerifiedHeader,
};
pub use crate::querier::{
    ClientSummary, PacketEventKind, QueryClient, QueryCommitments, QueryPacketEvents, QueryProof,
    QueryTxMessages, QueryUnreceived,
};
pub use crate::submitter::{SubmitTx, TxReport};

/// Names one unit of work across actors. Unique within a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CorrelationId(pub u64);

static NEXT_CORRELATION: AtomicU64 = AtomicU64::new(1);

impl CorrelationId {
    /// A fresh id. Ids start from the process start time so that ids of a restarted service do not repeat the
    /// previous run's in the persisted lifecycle records.
    pub fn fresh() -> Self {
        let n = NEXT_CORRELATION.fetch_add(1, Ordering::Relaxed);
        Self(epoch_base() + n)
    }
}

fn epoch_base() -> u64 {
    use std::sync::OnceLock;
    static BASE: OnceLock<u64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Seconds in the high bits, a counter in the low 24: unique across restarts more than a second apart.
        secs << 24
    })
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A protobuf message packed as `google.protobuf.Any`, as chains accept them in transactions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Datagram {
    /// The message's type URL, e.g. `/ibc.core.channel.v1.MsgRecvPacket`.
    pub type_url: String,
    /// The encoded message.
    pub value: Vec<u8>,
}

/// A value read from a chain's IBC store, with the height it was read at and, if asked, its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proven {
    /// The stored bytes; empty when the key is absent.
    pub value: Vec<u8>,
    /// The height whose state was read. Its proof verifies against the app hash of the header at
    /// `height + 1`, the height relayd sends as `proof_height`.
    pub height: u64,
    /// Protobuf `MerkleProof` bytes, innermost store first; `None` when no proof was asked for.
    pub proof: Option<Vec<u8>>,
}

/// Why an actor could not do what it was asked. Carries no key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct RelayError {
    /// What kind of failure, for the caller's retry decision.
    pub kind: ErrorKind,
    /// What happened, naming chain, object and height.
    pub message: String,
    /// Why the chain refused a transaction, when relayd acts on the reason (decided once, by the chain backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
}

/// Why a chain refused a transaction, as the builders act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Another relayer delivered it first.
    AlreadyRelayed,
    /// The packet timed out on the receiving chain.
    TimedOut,
    /// An ordered channel expects an earlier packet first.
    OutOfOrder,
    /// The receiving channel end is not open: closed, or its handshake unfinished (ibc-go reports both with one
    /// code, `channel` 5).
    ChannelNotOpen,
    /// The account sequence the transaction was signed with is not the chain's.
    SequenceMismatch,
    /// The transaction ran out of gas.
    OutOfGas,
    /// The fee was too low.
    InsufficientFee,
    /// These very transaction bytes are in the node's mempool already: an earlier broadcast of them was taken
    /// (its answer lost), so the transaction is admitted, not refused.
    TxInMempool,
}

/// Kinds of failure, as the builders act on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The node failed or could not be reached; trying again later can help.
    Unavailable,
    /// What the node returned did not verify; it is never forwarded.
    Unverified,
    /// Another relayer did the work first.
    AlreadyRelayed,
    /// The chain refused it for good.
    Rejected,
    /// The client is expired or frozen; the path cannot proceed without an operator.
    ClientUnusable,
    /// The actor asked is stopping or restarting.
    Stopped,
    /// What was asked for does not exist on the chain (a client the chain no longer has, e.g. after a reset).
    NotFound,
}

impl RelayError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            refusal: None,
        }
    }

    /// The same error, saying why the chain refused.
    pub fn with_refusal(mut self, refusal: Option<Refusal>) -> Self {
        self.refusal = refusal;
        self
    }

    /// Whether asking again can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unavailable | ErrorKind::Unverified | ErrorKind::Stopped
        )
    }
}

/// A block and its IBC events, in height order per chain (ChainMonitor → RelayCoordinator).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct BlockObserved {
    /// The chain.
    pub chain: ChainId,
    /// The height.
    pub height: u64,
    /// The block time, ns since the epoch (0 when the source did not say).
    pub time_ns: u64,
    /// Its IBC events, in block order (a bounded chunk of them when the block has many).
    pub events: Vec<ObservedEvent>,
    /// More events of this block follow in the next message: the block is finished (tips handed on, clearing,
    /// its checkpoint written) only with the message that is not partial.
    pub partial: bool,
}

/// The state of a relay object changed (PacketBuilder → RelayCoordinator, and out to subscribers).
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct LifecycleChanged {
    /// The object.
    pub object: RelayObject,
    /// The builder's generation.
    pub generation: u64,
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The new state's name: a packet's is a [`PacketState`]'s (read it with
    /// [`LifecycleChanged::packet_state`]); a handshake's is its phase's.
    pub state: String,
    /// A transaction hash, when the change came from one.
    pub tx_hash: Option<String>,
    /// The error, for failures and retries.
    pub error: Option<String>,
    /// Whether the object is done.
    pub is_final: bool,
}

impl LifecycleChanged {
    /// The packet's new state, when the object is a packet.
    pub fn packet_state(&self) -> Option<PacketState> {
        match self.object {
            RelayObject::Packet(_) => self.state.parse().ok(),
            _ => None,
        }
    }
}

/// A builder stopped (PacketBuilder → RelayCoordinator). The generation tells a stale exit from the live one.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct BuilderExited {
    /// The object.
    pub object: RelayObject,
    /// The generation that exited.
    pub generation: u64,
    /// Whether the object finished (true) or the builder failed (false; it will be restarted).
    pub finished: bool,
}

/// Relay pending packets of a channel now (CLI, admin API, the clear interval).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ClearReport, RelayError>")]
pub struct ClearPackets {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// The source chain.
    pub chain: ChainId,
    /// The source port.
    pub port: String,
    /// The source channel.
    pub channel: String,
    /// Only these sequences; `None` for all.
    pub sequences: Option<Vec<u64>>,
}

/// What a clearing found and started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearReport {
    /// Packets committed on the source and not received on the destination.
    pub unreceived: Vec<u64>,
    /// Packets received whose acknowledgements the source has not processed.
    pub unacknowledged: Vec<u64>,
    /// Builders started for them (those already running are not counted).
    pub started: usize,
    /// Committed and unreceived packets relayd does not relay by policy (their records say why); they are
    /// not in `unreceived`.
    #[serde(default)]
    pub skipped: Vec<u64>,
}

/// The kinds of supervised actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// Follows a chain's blocks and IBC events.
    ChainMonitor,
    /// Reads chain state with proofs.
    Querier,
    /// Verifies headers and prepares client updates.
    LightClient,
    /// Signs, batches and broadcasts transactions.
    TxSubmitter,
    /// Routes events to builders.
    RelayCoordinator,
    /// Drives one relay object.
    PacketBuilder,
    /// Keeps the clients relayd relays through fresh.
    ClientKeeper,
    /// Judges client updates for misbehaviour.
    MisbehaviourWatcher,
}

/// A supervised actor stopped (child → its supervisor). `clean` is false after a panic or a failure.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChildExited {
    /// Which child.
    pub kind: ActorKind,
    /// The incarnation that exited; older incarnations' exits are ignored.
    pub generation: u64,
    /// Whether it stopped on purpose.
    pub clean: bool,
    /// Why it failed (the panic message), when it did.
    pub reason: Option<String>,
}

/// Makes the receiving actor panic inside its handler. Honoured only when fault injection is enabled (tests
/// and drills), so that supervision can be exercised on a live system.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// What the coordinator tells a packet's builder (RelayCoordinator → PacketBuilder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PacketSeen {
    /// The destination reached a new block (timeouts are judged against it).
    DestinationTip {
        /// Its height.
        height: u64,
        /// Its time, ns since the epoch.
        time_ns: u64,
    },
    /// The destination wrote the packet's acknowledgement.
    AckWritten {
        /// The acknowledgement bytes.
        ack: Vec<u8>,
    },
    /// The source processed the acknowledgement.
    AckProcessed {
        /// The transaction that did, whoever sent it.
        tx_hash: Option<String>,
    },
    /// The source processed a timeout.
    TimeoutProcessed {
        /// The transaction that did, whoever sent it.
        tx_hash: Option<String>,
    },
    /// The destination's channel end was closed.
    DestinationClosed,
}

/// An observation about one packet, routed to its builder only.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct PacketObserved {
    /// The packet.
    pub key: crate::PacketKey,
    /// What was seen.
    pub seen: PacketSeen,
}

/// A chain reached a new height (coordinator → handshake builders, which re-read their ends on new blocks).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChainAdvanced {
    /// The chain.
    pub chain: ChainId,
    /// Its new height.
    pub height: u64,
}

/// Finish a connection or channel handshake (or close) whose state is `state` (the config executor at start,
/// `relayd create`, or a handshake event seen by the monitor). `object` names either end; the coordinator keeps
/// at most one builder per handshake and only for a state higher than the running builder's.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), RelayError>")]
pub struct RelayHandshake {
    /// The work this belongs to.
    pub correlation: CorrelationId,
    /// One end of the handshake.
    pub object: RelayObject,
    /// How far the handshake is known to have come.
    pub state: HandshakeState,
}

/// Stop working: a builder for a higher state of the same object replaces this one (coordinator → builder).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Supersede;

/// A chain's node became inconsistent with what relayd followed (its height went below the last delivered one,
/// or the block there is another), or consistent again (ChainMonitor → coordinator): every path to or from an
/// inconsistent chain stops until it is consistent again.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChainConsistencyChanged {
    /// The chain.
    pub chain: ChainId,
    /// Why it is inconsistent, in words for logs and records; `None` when it is consistent again.
    pub inconsistent: Option<String>,
}

/// A client relayd relays through changed health (ClientKeeper → coordinator): expired or frozen clients stop
/// the paths through them until they are usable again.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ClientHealthChanged {
    /// The chain hosting the client.
    pub host: ChainId,
    /// The client.
    pub client_id: ClientId,
    /// Whether packets may be relayed through it.
    pub usable: bool,
    /// Why, in words for logs and lifecycle records.
    pub reason: String,
}

/// Stop work on a packet without finishing it: its path is halted, and its record stays for when the path
/// resumes (coordinator → packet builder).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Halt {
    /// Why.
    pub reason: String,
}

/// A client was updated on `host` (RelayCoordinator → MisbehaviourWatcher), with the event as observed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ClientUpdateObserved {
    /// The chain hosting the client.
    pub host: ChainId,
    /// The `update_client` event.
    pub event: ObservedEvent,
}
