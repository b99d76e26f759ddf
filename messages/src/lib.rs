//! The words relayd's actors and its host applications share: identifiers, heights and relay objects.
//!
//! Everything here is plain data with no IO, so a host application can depend on this crate to talk to
//! relayd without pulling in chain clients.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod event;
pub mod height;
pub mod ids;
pub mod object;
pub mod relay;

pub use event::{ChannelAttributes, ConnectionAttributes, IbcEvent, ObservedEvent, Packet};
pub use height::Height;
pub use ids::{ChainId, ChannelId, ClientId, ConnectionId, IdError, PortId, Sequence};
pub use object::{HandshakeState, PacketKey, RelayObject};
pub use relay::{
    ActorKind, BlockObserved, BuilderExited, ChainAdvanced, ChainConsistencyChanged, ChildExited,
    ClearPackets, ClearReport, ClientHealthChanged, ClientSummary, ClientUpdate,
    ClientUpdateObserved, ConsensusAnchor, CorrelationId, Datagram, ErrorKind, Halt, HeaderAt,
    InjectPanic, LifecycleChanged, PacketEventKind, PacketObserved, PacketSeen,
    PrepareClientUpdate, Proven, QueryClient, QueryCommitments, QueryPacketEvents, QueryProof,
    QueryTxMessages, QueryUnreceived, QueryVerifiedHeader, QueryVerifiedHeads, Refusal, RelayError,
    RelayHandshake, SubmitTx, Supersede, TxReport, VerifiedHead, VerifiedHeader,
};
