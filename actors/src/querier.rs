//! The Querier: one chain's state reads with proofs. Requests run concurrently; the latest height and hosted
//! client states are cached briefly, because hundreds of builders ask for them within one block.

mod actor;
mod flights;

pub use actor::*;

#[cfg(test)]
mod tests;
