//! relayd as a program: the command line, logging and the service's start-up and shutdown.
//!
//! The relaying itself lives in `relayd-actors`; this crate wires it to a configuration file and a process.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod cli;
mod commands;
mod datadir;
#[cfg(feature = "demo")]
pub mod demo;
pub mod embed;
mod logging;
pub mod reload;
