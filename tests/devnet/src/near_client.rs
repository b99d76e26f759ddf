//! A NEAR light client for the Cosmos devnet's ibc-rs, registered beside 07-tendermint: it judges the NEAR
//! headers and the proofs of NEAR state relayd sends, in the shapes of near-ibc's ICS-12 client. It is the
//! devnet's own code on nearcore's published crates, independent of relayd's NEAR light client.

mod client;
pub mod types;
pub mod verify;

#[cfg(test)]
mod tests;

pub use client::near_client_type;
pub use types::{
    LightClientBlock, NearClientState, NearConsensusState, NearHeader, NEAR_CLIENT_STATE_TYPE_URL,
    NEAR_CLIENT_TYPE, NEAR_CONSENSUS_STATE_TYPE_URL, NEAR_HEADER_TYPE_URL,
};
pub use verify::{
    verify_block, verify_header, verify_state, HeaderError, NearStateProof, Producers, ProofError,
};
