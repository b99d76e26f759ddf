//! Chain backends: how relayd talks to each kind of chain. The per-chain actors drive these.

pub mod any;
pub mod client_state;
pub mod cosmos;
pub mod endpoint;
pub mod factory;
pub mod near;
pub mod proof;
