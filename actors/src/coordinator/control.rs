//! The coordinator's control and status messages: who it reports to, its subscribers, its view for status
//! endpoints, and fault injection.

use std::collections::HashMap;

use actix::{Handler, Message, MessageResult, Recipient};
use relayd_messages::{ChainId, InjectPanic, LifecycleChanged};

use super::RelayCoordinator;
use crate::meter::{ActorLoad, MeteredRecipient};
use crate::supervisor::guard::{injected_panic, ExitGuard};

/// Adds a subscriber to every lifecycle change (embedding hosts, the admin API).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeLifecycle(pub Recipient<LifecycleChanged>);

/// The coordinator's view, for status endpoints and tests.
#[derive(Debug, Clone, Message)]
#[rtype(result = "CoordinatorStatus")]
pub struct QueryCoordinator;

/// What [`QueryCoordinator`] returns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CoordinatorStatus {
    /// Chain heights seen.
    pub heights: Vec<(String, u64)>,
    /// Live packet builders.
    pub builders: usize,
    /// Events routed so far.
    pub events_handled: u64,
    /// The coordinator's own mailbox: events from the monitors, builders and client keeper waiting, and
    /// messages handled.
    pub load: ActorLoad,
    /// Events waiting in the mailboxes of the live packet builders, summed per source chain.
    pub builder_mailboxes: Vec<(String, u64)>,
    /// Chains whose node is not consistent with what relayd followed, with why: their paths are stopped.
    pub inconsistent: Vec<(String, String)>,
}

/// Forwards the `update_client` events of the clients the routes go through to a watcher (misbehaviour
/// detection); a busy chain's updates of other clients never leave the coordinator. Sent before any block, so that
/// no update goes unjudged.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForwardClientUpdates(pub MeteredRecipient<relayd_messages::ClientUpdateObserved>);

impl Handler<ForwardClientUpdates> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: ForwardClientUpdates, _: &mut Self::Context) {
        self.meter.handled();
        self.forward_client_updates(msg.0);
    }
}

/// Hands the coordinator the guard that reports its exit to its supervisor (sent once, before any block).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SuperviseWith(pub ExitGuard);

impl Handler<SuperviseWith> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: SuperviseWith, _: &mut Self::Context) {
        self.meter.handled();
        self.guard = Some(msg.0);
    }
}

impl Handler<InjectPanic> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        self.meter.handled();
        injected_panic(relayd_messages::ActorKind::RelayCoordinator);
    }
}

/// Makes a live builder panic (fault injection).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct PanicAnyBuilder;

impl Handler<SubscribeLifecycle> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: SubscribeLifecycle, _: &mut Self::Context) {
        self.meter.handled();
        self.subscribers.push(msg.0);
    }
}

impl Handler<QueryCoordinator> for RelayCoordinator {
    type Result = MessageResult<QueryCoordinator>;

    fn handle(&mut self, _: QueryCoordinator, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        let mut heights: Vec<(String, u64)> = self
            .state
            .tips()
            .iter()
            .map(|(c, (h, _))| (c.to_string(), *h))
            .collect();
        heights.sort();
        let mut builder_mailboxes: HashMap<&ChainId, u64> = HashMap::new();
        for (key, live) in self.state.builders() {
            *builder_mailboxes.entry(&key.src_chain).or_default() +=
                live.handle.meter().load().mailbox_depth;
        }
        let mut builder_mailboxes: Vec<(String, u64)> = builder_mailboxes
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect();
        builder_mailboxes.sort();
        MessageResult(CoordinatorStatus {
            heights,
            builders: self.state.builders().len(),
            events_handled: self.events_handled,
            load: self.meter.load(),
            builder_mailboxes,
            inconsistent: self.state.inconsistent_chains(),
        })
    }
}

impl Handler<PanicAnyBuilder> for RelayCoordinator {
    type Result = bool;

    fn handle(&mut self, _: PanicAnyBuilder, _: &mut Self::Context) -> bool {
        self.meter.handled();
        match self.state.builders().values().next() {
            Some(live) => {
                live.handle.do_send(InjectPanic);
                true
            }
            None => false,
        }
    }
}

/// Routes resolved after start: those through a chain whose node did not answer at start, once it does.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddRoutes(pub Vec<crate::routes::Route>);

impl Handler<AddRoutes> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: AddRoutes, _: &mut Self::Context) {
        self.state.add_routes(msg.0);
    }
}
