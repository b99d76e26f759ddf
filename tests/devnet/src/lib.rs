//! devnet: local chains that speak CometBFT's RPC and run ibc-rs, so relayd is judged by real IBC handlers.

pub mod genesis;
pub mod rpc;
