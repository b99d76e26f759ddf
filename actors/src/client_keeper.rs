//! The ClientKeeper actor keeps the IBC clients relayd relays through alive when no packet does it for them:
//! every `check_interval` it reads each client, judges it with the pure `state::assess`, updates the
//! ones due (ahead of all other work on the host chain when expiry is near), and tells the coordinator when a
//! client becomes expired or frozen, so the paths through it stop with that reason instead of failing packet
//! by packet.

mod actor;
pub mod state;

pub use actor::*;
