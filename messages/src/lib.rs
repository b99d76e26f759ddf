//! The words relayd's actors and its host applications share: identifiers, heights and relay objects.
//!
//! Everything here is plain data with no IO, so a host application can depend on this crate to talk to
//! relayd without pulling in chain clients.

pub mod event;
pub mod height;
pub mod ids;
pub mod object;

pub use event::{ChannelAttributes, ConnectionAttributes, IbcEvent, ObservedEvent, Packet};
pub use height::Height;
pub use ids::{ChainId, ChannelId, ClientId, ConnectionId, IdError, PortId, Sequence};
pub use object::{HandshakeState, PacketKey, RelayObject};
