//! The words relayd's actors and its host applications share: identifiers, heights, relay objects, and every
//! actor message, grouped by the actor that handles it.
//!
//! Everything here is plain data with no IO, so a host application can depend on this crate to talk to
//! relayd without pulling in chain clients.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod coordinator;
pub mod event;
pub mod height;
pub mod host;
pub mod ids;
pub mod keeper;
pub mod lifecycle;
pub mod light_client;
pub mod object;
pub mod querier;
pub mod relay;
pub mod route;
pub mod submitter;
pub mod supervision;
pub mod watcher;

pub use coordinator::{
    AddRoutes, BuilderStatus, CoordinatorStatus, ForwardClientUpdates, IntakeLane, PanicAnyBuilder,
    QueryBuilders, QueryCoordinator, RetryError, RetryPacket, SubscribeLifecycle, SuperviseWith,
};
pub use event::{ChannelAttributes, ConnectionAttributes, IbcEvent, ObservedEvent, Packet};
pub use height::Height;
pub use host::{PacketCompleted, PacketOutcome};
pub use ids::{ChainId, ChannelId, ClientId, ConnectionId, IdError, PortId, Sequence};
pub use keeper::{CheckClients, ClientReport, QueryClientHealth};
pub use lifecycle::{PacketState, SkipReason, UnknownPacketState};
pub use object::{HandshakeState, PacketKey, RelayObject};
pub use relay::{
    ActorKind, BlockObserved, BuilderExited, ChainAdvanced, ChainConsistencyChanged, ChildExited,
    ClearPackets, ClearReport, ClientHealthChanged, ClientSummary, ClientUpdate,
    ClientUpdateObserved, ConsensusAnchor, CorrelationId, Datagram, ErrorKind, Halt, HeaderAt,
    InjectPanic, LifecycleChanged, PacketEventKind, PacketObserved, PacketSeen,
    PrepareClientUpdate, Proven, QueryClient, QueryCommitments, QueryPacketEvents, QueryProof,
    QueryTxMessages, QueryUnreceived, QueryVerifiedHeader, QueryVerifiedHeads, QueryVerifiedRoot,
    Refusal, RelayError, RelayHandshake, SubmitTx, Supersede, TxReport, VerifiedHead,
    VerifiedHeader,
};
pub use route::Route;
pub use submitter::FinishInFlight;
pub use supervision::{
    ActorLoad, ChainStatus, ChildStatus, PanicChild, PanicService, QueryChainStatus,
    QueryServiceStatus, Quiesce, ServiceStatus, StopChild, StopServices, StopSupervisor,
};
pub use watcher::{EvidenceSummary, MisbehaviourReport, MisbehaviourStatus, QueryMisbehaviour};
