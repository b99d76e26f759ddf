//! The PacketBuilder actor: a thin shell around the pure packet state machine (`state`). It feeds the
//! machine what the coordinator and the chain actors report, and turns the machine's effects into requests to
//! the source and destination chains' actors. Its lifecycle record in sled is written on every state change,
//! so a restarted builder (or a restarted relayd) resumes from it.

mod actor;
pub mod datagrams;
pub mod proving;
pub mod state;

pub use actor::*;
