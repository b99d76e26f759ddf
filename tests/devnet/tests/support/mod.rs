//! A minimal IBC relayer that drives devnet chains purely over their RPC: what relayd's Cosmos chain layer must
//! do against a devnet, step by step (transactions, light blocks, proofs, handshakes, packets).

pub mod chain;
pub mod handshake;
pub mod light;
pub mod packet;
pub mod proof;
pub mod relayd;
