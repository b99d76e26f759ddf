//! The RelayCoordinator's own messages: its subscribers, its view for status endpoints, routes found after
//! start, dead-letter retries, and its fault-injection hook (inert unless relayd-actors' `fault-injection`
//! feature enables injected panics).

use actix::{Message, Recipient};
use serde::Serialize;

use crate::{ActorLoad, LifecycleChanged, PacketKey, RelayObject, Route};

/// Adds a subscriber to every lifecycle change (embedding hosts, the admin API).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeLifecycle(pub Recipient<LifecycleChanged>);

/// The coordinator's view, for status endpoints and tests.
#[derive(Debug, Clone, Message)]
#[rtype(result = "CoordinatorStatus")]
pub struct QueryCoordinator;

/// What [`QueryCoordinator`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoordinatorStatus {
    /// Chain heights seen.
    pub heights: Vec<(String, u64)>,
    /// Live packet builders.
    pub builders: usize,
    /// Packets waiting for a builder slot (the window of running builders is full).
    pub waiting_builders: usize,
    /// The bound on live packet builders (`[global] max_builders`).
    pub max_builders: usize,
    /// Events routed so far.
    pub events_handled: u64,
    /// The coordinator's own mailbox: events from the monitors, builders and client keeper waiting, and
    /// messages handled.
    pub load: ActorLoad,
    /// Events waiting in the mailboxes of the live packet builders, summed per source chain.
    pub builder_mailboxes: Vec<(String, u64)>,
    /// Chains whose node is not consistent with what relayd followed, with why: their paths are stopped.
    pub inconsistent: Vec<(String, String)>,
    /// Clients whose paths are stopped (host chain, client, why): expired, frozen, or not found on their host.
    pub halted_clients: Vec<(String, String, String)>,
    /// Packets observed but not given lifecycle records yet (they wait in the intake log), per source channel.
    pub intake: Vec<IntakeLane>,
}

/// The packets of one source channel waiting in the intake log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntakeLane {
    /// The source chain.
    pub chain: String,
    /// The source port.
    pub port: String,
    /// The source channel.
    pub channel: String,
    /// Packets waiting.
    pub packets: usize,
    /// The lowest sequence waiting.
    pub lowest_sequence: u64,
}

/// Forwards the `update_client` events of the clients the routes go through to a watcher (misbehaviour
/// detection); a busy chain's updates of other clients never leave the coordinator. Sent before any block, so that
/// no update goes unjudged. `R` is the watcher's (metered) recipient of [`crate::ClientUpdateObserved`]: a runtime
/// handle, so the message is generic over it and this crate needs no actor runtime.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForwardClientUpdates<R>(pub R);

/// Hands the coordinator the guard `G` that reports its exit to its supervisor (sent once, before any block); the
/// guard is the supervision runtime's own type.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SuperviseWith<G>(pub G);

/// Makes a live builder panic (fault injection).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct PanicAnyBuilder;

/// Routes resolved after start: those through a chain whose node did not answer at start, once it does.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddRoutes(pub Vec<Route>);

/// Lists the live packet builders.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<BuilderStatus>")]
pub struct QueryBuilders;

/// One live packet builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuilderStatus {
    /// The relay object it drives.
    pub object: RelayObject,
    /// The destination chain.
    pub dst_chain: String,
    /// Its incarnation (unique within the process).
    pub generation: u64,
    /// Restarts of this packet's builder so far.
    pub restarts: u32,
    /// When this incarnation started, ms since the epoch.
    pub started_ms: u64,
    /// Its mailbox: the coordinator's events waiting for it, and those handled.
    pub load: ActorLoad,
}

/// Takes a packet out of the dead-letter queue and relays it again from the start, with fresh attempts.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), RetryError>")]
pub struct RetryPacket(pub PacketKey);

/// Why a dead letter could not be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    /// No dead letter has that key.
    #[error("{0} is not in the dead-letter queue")]
    NotDead(String),
    /// The packet's channel is not relayed by this service (any more).
    #[error("{0} is not on a relayed channel")]
    NoRoute(String),
    /// The state database failed.
    #[error("{0}")]
    Store(String),
}
