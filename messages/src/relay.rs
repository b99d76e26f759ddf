//! The messages relayd's actors exchange. Commands are imperative (`SubmitTx`), queries start with `Query`,
//! events are in the past tense (`BlockObserved`). Every message that starts work carries a [`CorrelationId`],
//! which the actors' tracing spans and the packet's lifecycle record carry too, so one packet can be followed
//! through every actor's log lines.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::{ChainId, ClientId, HandshakeState, ObservedEvent, PacketState, RelayObject};

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
    /// [`ClientSummary::anchor`].
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

/// A client was updated on `host` (RelayCoordinator → MisbehaviourWatcher), with the event as observed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ClientUpdateObserved {
    /// The chain hosting the client.
    pub host: ChainId,
    /// The `update_client` event.
    pub event: ObservedEvent,
}
