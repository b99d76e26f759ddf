//! The Cosmos SDK / CometBFT backend.

pub mod backend;
pub mod client;
pub mod endpoint;
pub mod events;
pub mod factory;
pub mod grpc;
pub mod light_client;
pub mod monitor;
pub mod query;
pub mod rpc;
pub mod signer;
pub mod tx;
