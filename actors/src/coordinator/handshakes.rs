//! The coordinator's handshake builders: one per handshake, for the highest state seen (`state` decides),
//! restarted with backoff after a failure.

use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, ResponseActFuture, WrapFuture};
use relayd_messages::{
    BuilderExited, CorrelationId, ErrorKind, HandshakeState, RelayError, RelayHandshake,
    RelayObject, Supersede,
};
use tracing::{debug, info, warn};

use super::decisions::{HandshakeExit, HandshakeVerdict, LiveHandshake};
use super::RelayCoordinator;
use crate::handshake_builder::{locate, Handshake, HandshakeBuilder, HandshakeEnv};

/// How many times a handshake event whose ends cannot be read yet is read again, and the first delay (it grows
/// linearly: 0.3 s, 0.6 s, ... 3 s in all, several blocks of any chain).
const EVENT_RETRIES: u32 = 4;
const EVENT_RETRY_DELAY: Duration = Duration::from_millis(300);

impl RelayCoordinator {
    fn handshake_env(&self) -> Option<HandshakeEnv> {
        let outputs = self.outputs.as_ref()?;
        Some(HandshakeEnv {
            links: self.links.clone(),
            exits: outputs.exits.clone(),
            lifecycle: outputs.lifecycle.clone(),
        })
    }

    /// A handshake event (or request) about `named` at `state`: locate both ends, then keep at most one builder
    /// per handshake, for the highest state seen.
    pub(super) fn observe_handshake(
        &mut self,
        named: RelayObject,
        state: HandshakeState,
        correlation: CorrelationId,
    ) -> ResponseActFuture<Self, Result<(), RelayError>> {
        let links = self.links.clone();
        let fut = async move { locate(&links, &named, state, correlation).await };
        Box::pin(fut.into_actor(self).map(move |located, act, _| {
            let handshake = located?;
            let object = handshake.object()?;
            match act.state.observe_handshake(&object, state) {
                HandshakeVerdict::Discard => {
                    debug!(%object, ?state, "handshake event at or below the running builder's; discarded");
                    return Ok(());
                }
                HandshakeVerdict::Supersede => {
                    if let Some(live) = act.state.handshake(&object) {
                        live.handle.do_send(Supersede);
                    }
                }
                HandshakeVerdict::Start => {}
            }
            act.spawn_handshake(object, handshake, state, correlation, 0);
            Ok(())
        }))
    }

    /// A handshake event seen in a block: [`Self::observe_handshake`], read again a little later while the end it
    /// names is not there yet. The ends are read at the chain's latest height as the querier last saw it, which
    /// can be the block before the event's; an event dropped then would be lost for good, since the initiating
    /// end's builder cannot learn the counterparty's id from its own end before the counterparty's next step.
    pub(super) fn handshake_event(
        &mut self,
        object: RelayObject,
        state: HandshakeState,
        attempt: u32,
        ctx: &mut Context<Self>,
    ) {
        let fut = self.observe_handshake(object.clone(), state, CorrelationId::fresh());
        ctx.spawn(fut.map(move |result, _, ctx| match result {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::Unavailable && attempt < EVENT_RETRIES => {
                debug!(%object, error = %e, attempt, "handshake event's ends not readable yet; reading again");
                ctx.run_later(EVENT_RETRY_DELAY * (attempt + 1), move |act, ctx| {
                    act.handshake_event(object, state, attempt + 1, ctx)
                });
            }
            Err(e) => debug!(%object, error = %e, "handshake event not relayed"),
        }));
    }

    fn spawn_handshake(
        &mut self,
        object: RelayObject,
        handshake: Handshake,
        state: HandshakeState,
        correlation: CorrelationId,
        restarts: u32,
    ) {
        let generation = self.state.next_generation();
        let Some(env) = self.handshake_env() else {
            return;
        };
        info!(%object, ?state, generation, "handshake builder started");
        let handle = HandshakeBuilder::new(
            handshake.clone(),
            state,
            object.clone(),
            generation,
            correlation,
            env,
        )
        .start();
        self.state.handshake_launched(
            object,
            LiveHandshake {
                handle,
                generation,
                state,
                handshake,
                correlation,
                restarts,
            },
        );
    }

    pub(super) fn handshake_exited(&mut self, msg: BuilderExited, ctx: &mut Context<Self>) {
        match self
            .state
            .handshake_exited(&msg.object, msg.generation, msg.finished)
        {
            HandshakeExit::Stale => {
                debug!(object = %msg.object, generation = msg.generation, "stale handshake builder exit ignored")
            }
            HandshakeExit::Finished => {}
            HandshakeExit::GiveUp(restarts) => {
                warn!(object = %msg.object, restarts, "handshake builder keeps failing; left to the operator")
            }
            HandshakeExit::Restart(delay, live) => {
                warn!(object = %msg.object, restarts = live.restarts, ?delay, "handshake builder failed; restarting");
                let object = msg.object;
                ctx.run_later(delay, move |act, _| {
                    if act.state.handshake(&object).is_some() {
                        return;
                    }
                    act.spawn_handshake(
                        object,
                        live.handshake,
                        live.state,
                        live.correlation,
                        live.restarts + 1,
                    );
                });
            }
        }
    }
}

impl Handler<RelayHandshake> for RelayCoordinator {
    type Result = ResponseActFuture<Self, Result<(), RelayError>>;

    fn handle(&mut self, msg: RelayHandshake, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        self.observe_handshake(msg.object, msg.state, msg.correlation)
    }
}
