//! Supervisors, as in Erlang/OTP: each restarts its children under a strategy, a restart type, a maximum
//! intensity per period and exponential backoff, and escalates when the intensity is exceeded. A chain that
//! escalates is marked degraded and reported; the other chains keep relaying.

pub mod any;
pub mod chain;
pub mod guard;
pub mod service;
pub mod state;

use relayd_messages::ActorKind;
use serde::Serialize;

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
    pub load: crate::meter::ActorLoad,
}
