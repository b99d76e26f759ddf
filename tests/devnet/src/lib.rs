//! devnet: local chains that speak CometBFT's RPC and run ibc-rs, so relayd is judged by real IBC handlers.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod chain;
pub mod clients;
pub mod consensus;
pub mod genesis;
pub mod grpc;
pub mod home;
pub mod host;
pub mod near;
pub mod near_client;
pub mod node;
pub mod persist;
pub mod rpc;

pub use chain::{start_chain, start_chains, ChainOptions, DevnetError, RunningChain};

/// The ICS-23 proof spec of a Cosmos devnet chain's stores (Jellyfish Merkle trees, as Penumbra's), at both proof
/// levels. Clients of a devnet chain must be created with it.
pub fn proof_specs() -> Vec<ics23::ProofSpec> {
    vec![jmt::ics23_spec(); 2]
}
