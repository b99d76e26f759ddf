//! devnet: local chains that speak CometBFT's RPC and run ibc-rs, so relayd is judged by real IBC handlers.

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
pub mod rpc;

pub use chain::{start_chain, start_chains, ChainOptions, DevnetError, RunningChain};

/// The ICS-23 proof spec of a devnet chain's stores (basecoin's AVL tree), at both proof levels. Clients of a
/// devnet chain must be created with it.
pub fn proof_specs() -> Vec<ics23::ProofSpec> {
    vec![basecoin_store::avl::get_proof_spec(); 2]
}
