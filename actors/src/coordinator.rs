//! The RelayCoordinator (ADR-002's event handler): tracks every chain's height, turns observed IBC events into
//! at most one PacketBuilder per packet, routes later events only to the builder they concern, restarts builders
//! that fail (transient restart type, with a new generation so a stale exit is never mistaken for the live one),
//! resumes unfinished packets from sled at start, and clears pending packets on request.

mod actor;
mod admission;
pub mod caps;
mod clear;
pub mod clearing;
mod compaction;
mod consistency;
mod control;
pub mod decisions;
mod events;
mod handshakes;
mod introspect;
pub mod policy;
mod skip;
pub mod state;
pub mod window;

pub use actor::*;
pub use decisions::Scope;
pub use state::ChannelFilter;
