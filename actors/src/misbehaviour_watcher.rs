//! The MisbehaviourWatcher actor guards the clients relayd relays through against forged histories: every
//! `update_client` event of such a client (the coordinator forwards them from the host chain's blocks) leads to
//! the installed header (carried by the event up to ibc-go v8, read from the transaction's `MsgUpdateClient`
//! from v9 on, see `from_tx`), which is judged by the pure `state::judge` against the header relayd's own
//! light client verified for the tracked chain at that height. On a conflict the evidence goes to the host as
//! `MsgSubmitMisbehaviour`, ahead of all other work there; the host freezes the client, and the ClientKeeper,
//! seeing it frozen, stops the paths through it.

mod actor;
pub mod from_tx;
pub mod state;

pub use actor::*;
