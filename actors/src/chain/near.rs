//! The NEAR backend: relayd's own NEAR light client and proof checks (pure), and access to a NEAR node and its
//! IBC contract (octopus-network `near-ibc` interface) over NEAR JSON-RPC.

pub mod contract;
pub mod credentials;
pub mod execution_proof;
pub mod light_client;
pub mod state_proof;
pub mod trie;
