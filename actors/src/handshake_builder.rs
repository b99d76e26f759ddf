//! The HandshakeBuilder actor: finishes one connection or channel handshake (or channel close) between two
//! relayed chains. A thin shell over the pure `state` machine: it reads both ends through the
//! chains' Queriers, proves the end that is ahead under ADR-002's proof-height rule (query at h, make sure the
//! receiving chain's client holds h + 1, send the updates and the datagram in one transaction), and checks every
//! proof against relayd's own light client before the datagram leaves.

mod actor;
pub mod datagrams;
mod locate;
pub mod state;
pub mod tracked;

pub use actor::*;
pub use locate::{locate, EndId, Handshake, Kind};
