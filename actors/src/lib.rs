//! relayd's actors and the logic they run.
//!
//! Relay decisions live in pure modules (no actix, no IO) so they can be tested as plain functions; actors
//! are thin shells that turn those decisions into messages.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod chain;
pub mod chain_link;
pub mod chain_monitor;
pub mod client_keeper;
pub mod coordinator;
pub mod failure;
pub mod handshake_builder;
pub mod keys;
pub mod light_client;
pub mod meter;
pub mod metrics;
pub mod misbehaviour_watcher;
pub mod packet_builder;
pub mod proof_height;
pub mod querier;
pub mod retry;
pub mod routes;
pub mod rpc_pool;
pub mod scan;
pub mod store;
pub mod supervisor;
pub mod system;
pub mod tx_submitter;
