//! The ChainMonitor actor: follows one chain block by block from where the last run stopped (the sled
//! checkpoint) and hands each block's IBC events to the RelayCoordinator, waiting for it to accept each one so
//! that a slow coordinator slows the monitor instead of losing blocks.

mod actor;
pub mod chunks;
pub(crate) mod consistency;
pub mod source;

pub use actor::*;
pub use source::{
    BlockEvents, EventError, EventSource, MonitorStatus, SourceMode, Stalled, StopReason,
};
