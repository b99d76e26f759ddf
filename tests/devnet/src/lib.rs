//! devnet: local chains that speak CometBFT's RPC and run ibc-rs, so relayd is judged by real IBC handlers.

pub mod app;
pub mod chain;
pub mod consensus;
pub mod genesis;
pub mod grpc;
pub mod home;
pub mod node;
pub mod rpc;

pub use chain::{start_chain, start_chains, ChainOptions, DevnetError, RunningChain};
