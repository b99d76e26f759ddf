//! Property tests and fuzzing of every decoder of data from outside relayd's process in this crate: CometBFT
//! events and RPC answers, NEAR RPC answers, ICS-23 and NEAR proofs. Inputs are generated in the shapes nodes
//! send and mutated from recorded answers, not only random bytes. No input may panic; no wrong claim may pass a
//! proof check.
//!
//! `PROPTEST_CASES` sets the number of cases of every property for soak runs (`benches/fuzz.sh`).

mod events;
mod json;
mod near;
mod proofs;
mod rpc;

use proptest::test_runner::Config;

/// `default` cases, or `PROPTEST_CASES` when set.
pub fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
