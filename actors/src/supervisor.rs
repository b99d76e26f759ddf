//! Supervisors, as in Erlang/OTP: each restarts its children under a strategy, a restart type, a maximum
//! intensity per period and exponential backoff, and escalates when the intensity is exceeded. A chain that
//! escalates is marked degraded and reported; the other chains keep relaying.

pub mod any;
pub mod chain;
pub mod guard;
pub mod service;
pub mod state;
