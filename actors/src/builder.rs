//! Relay logic as pure state machines, `step(state, input) -> (state, effects)`, tested without actix; the
//! PacketBuilder actors turn effects into messages to the Querier, LightClient and TxSubmitter actors.

pub mod client;
pub mod handshake;
pub mod misbehaviour;
pub mod packet;
