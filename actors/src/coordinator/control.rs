//! How the coordinator answers its control and status messages (defined in relayd-messages): who it reports
//! to, its subscribers, its view for status endpoints, and fault injection.

use std::collections::HashMap;

use actix::{Handler, MessageResult};
use relayd_messages::{
    AddRoutes, ChainId, ClientUpdateObserved, CoordinatorStatus, ForwardClientUpdates, InjectPanic,
    PanicAnyBuilder, QueryCoordinator, SubscribeLifecycle, SuperviseWith,
};

use super::RelayCoordinator;
use crate::meter::MeteredRecipient;
use crate::supervisor::guard::{injected_panic, ExitGuard};

impl Handler<ForwardClientUpdates<MeteredRecipient<ClientUpdateObserved>>> for RelayCoordinator {
    type Result = ();

    fn handle(
        &mut self,
        msg: ForwardClientUpdates<MeteredRecipient<ClientUpdateObserved>>,
        _: &mut Self::Context,
    ) {
        self.meter.handled();
        self.forward_client_updates(msg.0);
    }
}

impl Handler<SuperviseWith<ExitGuard>> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: SuperviseWith<ExitGuard>, _: &mut Self::Context) {
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
            waiting_builders: self.state.waiting_builders(),
            max_builders: self.state.max_builders(),
            events_handled: self.events_handled,
            load: self.meter.load(),
            builder_mailboxes,
            inconsistent: self.state.inconsistent_chains(),
            halted_clients: self.state.halted_clients(),
            intake: self
                .state
                .logged_lanes()
                .into_iter()
                .map(|(chain, port, channel, packets, lowest_sequence)| {
                    relayd_messages::IntakeLane {
                        chain,
                        port,
                        channel,
                        packets,
                        lowest_sequence,
                    }
                })
                .collect(),
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

impl Handler<AddRoutes> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: AddRoutes, _: &mut Self::Context) {
        self.state.add_routes(msg.0);
    }
}
