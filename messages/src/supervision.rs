//! The supervisors' messages and what they report: a chain's supervisor (its children's state, shutdown in
//! two steps), the service supervisor of the ClientKeeper and MisbehaviourWatcher, every actor's mailbox load,
//! and the fault-injection hooks (inert unless relayd-actors' `fault-injection` feature enables injected
//! panics).

use actix::Message;
use serde::Serialize;

use crate::ActorKind;

/// What an actor's meter reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActorLoad {
    /// Work sent to it and not taken up yet (for a chain's monitor: blocks read from the node and not yet
    /// accepted by the coordinator).
    pub mailbox_depth: u64,
    /// Messages it has handled since it started.
    pub messages_handled: u64,
}

/// What a supervisor reports about one child, for status endpoints and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChildStatus {
    /// The child's kind.
    pub kind: ActorKind,
    /// Its current incarnation (starts at 1).
    pub generation: u64,
    /// Restarts so far.
    pub restarts: u64,
    /// Whether it is running now.
    pub running: bool,
    /// Why it last failed.
    pub last_error: Option<String>,
    /// When it (last) started, ms since the epoch.
    pub started_ms: u64,
}

impl ChildStatus {
    /// A child of `kind` not started yet.
    pub fn new(kind: ActorKind) -> Self {
        Self {
            kind,
            generation: 0,
            restarts: 0,
            running: false,
            last_error: None,
            started_ms: 0,
        }
    }
}

/// A chain's supervision state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    /// The chain.
    pub chain: String,
    /// Whether a child exceeded its restart intensity (the chain is paused and retried after a cool-down).
    pub degraded: bool,
    /// The children, in start order.
    pub children: Vec<ChildStatus>,
    /// The supervisor's own mailbox: children's exit reports waiting, and messages handled.
    pub load: ActorLoad,
}

/// Reports the chain's supervision state.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ChainStatus")]
pub struct QueryChainStatus;

/// Makes one child panic (fault injection; see [`crate::InjectPanic`]).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct PanicChild(pub ActorKind);

/// Asks a child to stop (its supervisor is restarting it with its siblings, or shutting down).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopChild;

/// The first step of a graceful shutdown: the chain's monitor stops (no new blocks, so no new packets or
/// clearing), no child is restarted any more, and the TxSubmitter sends no new transaction. Answers once the
/// transaction in flight, if any, has its outcome; [`StopSupervisor`] follows.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Quiesce;

/// Stops the supervisor and its children (shutdown).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopSupervisor;

/// What [`QueryServiceStatus`] returns: the keeper's and the watcher's supervision state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    /// The ClientKeeper, and whether its restarts are paused (intensity exceeded).
    pub client_keeper: (ChildStatus, bool),
    /// The MisbehaviourWatcher, and whether its restarts are paused.
    pub misbehaviour_watcher: (ChildStatus, bool),
    /// The supervisor's own mailbox: exit reports waiting, and messages handled (forwarded requests included).
    pub load: ActorLoad,
}

/// Reports the keeper's and the watcher's supervision state.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ServiceStatus")]
pub struct QueryServiceStatus;

/// Makes the keeper or the watcher panic (fault injection; see [`crate::InjectPanic`]).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct PanicService(pub ActorKind);

/// Stops the service supervisor and its children (shutdown).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopServices;
