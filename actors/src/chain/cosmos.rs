//! The Cosmos SDK / CometBFT backend.

pub mod events;
