//! The service supervisor: the ClientKeeper and the MisbehaviourWatcher serve every chain, so a panic in either
//! must not end it for the rest of the service's life. It restarts them under the same OTP rules as a chain's
//! children (permanent, intensity per period, backoff; beyond the intensity they are paused for a period), each
//! from a fresh actor, and stands in front of them: requests for them come to it and are forwarded, so the admin
//! API, hosts and the coordinator keep one address across restarts.

use std::time::Instant;

use actix::{
    Actor, ActorContext, Addr, AsyncContext, Context, Handler, MessageResult, ResponseFuture,
};
use relayd_config::SupervisionConfig;
use relayd_messages::{
    ActorKind, CheckClients, ChildExited, ChildStatus, ClientReport, ClientUpdateObserved,
    InjectPanic, MisbehaviourStatus, PanicService, QueryClientHealth, QueryMisbehaviour,
    QueryServiceStatus, ServiceStatus, StopServices,
};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::client_keeper::ClientKeeper;
use crate::meter::{Meter, MeteredRecipient};
use crate::misbehaviour_watcher::MisbehaviourWatcher;
use crate::store::now_ms;
use crate::supervisor::guard::ExitGuard;
use crate::supervisor::state::{RestartDecision, RestartWindow};

/// Builds a fresh child, given the guard that reports its exit.
pub type Make<A> = Box<dyn Fn(ExitGuard) -> A>;

struct Slot<A: Actor> {
    addr: Option<Addr<A>>,
    status: ChildStatus,
    window: RestartWindow,
    make: Make<A>,
    /// Whether the restart is paused after the intensity was exceeded.
    degraded: bool,
}

impl<A: Actor> Slot<A> {
    fn new(kind: ActorKind, make: Make<A>, policy: &SupervisionConfig) -> Self {
        Self {
            addr: None,
            status: ChildStatus::new(kind),
            window: RestartWindow::new(policy, 0.2),
            make,
            degraded: false,
        }
    }
}

/// The service supervisor actor.
pub struct ServiceSupervisor {
    keeper: Slot<ClientKeeper>,
    watcher: Slot<MisbehaviourWatcher>,
    policy: SupervisionConfig,
    /// The watcher's meter: an update it cannot be given (it is restarting) is taken off its count.
    watcher_meter: Meter,
    stopping: bool,
    meter: Meter,
    /// Told the coordinator's failure: relaying cannot go on without it, so it escalates to the service's host.
    escalate: Option<oneshot::Sender<String>>,
}

impl ServiceSupervisor {
    /// A supervisor starting the keeper and the watcher from `make_keeper` and `make_watcher` (again at every
    /// restart) under `policy`; `watcher_meter` is the watcher's mailbox meter.
    pub fn new(
        make_keeper: Make<ClientKeeper>,
        make_watcher: Make<MisbehaviourWatcher>,
        watcher_meter: Meter,
        policy: SupervisionConfig,
    ) -> Self {
        Self {
            keeper: Slot::new(ActorKind::ClientKeeper, make_keeper, &policy),
            watcher: Slot::new(ActorKind::MisbehaviourWatcher, make_watcher, &policy),
            policy,
            watcher_meter,
            stopping: false,
            meter: Meter::new(),
            escalate: None,
        }
    }

    /// Reports a failure of the coordinator (whose guard reports to this supervisor) to `escalate`. The
    /// coordinator is not restarted here: every chain's monitor, every builder and the host hold its address,
    /// and its state is in sled, so the host restarts the whole service (`relayd start` exits with an error for
    /// its service manager to restart it).
    pub fn with_escalation(mut self, escalate: oneshot::Sender<String>) -> Self {
        self.escalate = Some(escalate);
        self
    }

    fn guard(&self, kind: ActorKind, generation: u64, ctx: &Context<Self>) -> ExitGuard {
        ExitGuard::new(
            kind,
            generation,
            MeteredRecipient::new(ctx.address().recipient(), self.meter.clone()),
        )
    }

    fn launch(&mut self, kind: ActorKind, ctx: &mut Context<Self>) {
        match kind {
            ActorKind::ClientKeeper => {
                let generation = self.keeper.status.generation + 1;
                let guard = self.guard(kind, generation, ctx);
                let addr = (self.keeper.make)(guard).start();
                if generation > 1 {
                    // A fresh keeper knows no client yet: it checks them now rather than a whole interval later.
                    addr.do_send(CheckClients);
                }
                started(&mut self.keeper.status, generation);
                self.keeper.addr = Some(addr);
            }
            ActorKind::MisbehaviourWatcher => {
                let generation = self.watcher.status.generation + 1;
                let guard = self.guard(kind, generation, ctx);
                self.watcher.addr = Some((self.watcher.make)(guard).start());
                started(&mut self.watcher.status, generation);
            }
            _ => {}
        }
    }

    /// The supervision state of child `kind`: its status, restart window and whether it is paused.
    fn state_of(
        &mut self,
        kind: ActorKind,
    ) -> Option<(&mut ChildStatus, &mut RestartWindow, &mut bool)> {
        match kind {
            ActorKind::ClientKeeper => Some((
                &mut self.keeper.status,
                &mut self.keeper.window,
                &mut self.keeper.degraded,
            )),
            ActorKind::MisbehaviourWatcher => Some((
                &mut self.watcher.status,
                &mut self.watcher.window,
                &mut self.watcher.degraded,
            )),
            _ => None,
        }
    }
}

fn started(status: &mut ChildStatus, generation: u64) {
    status.generation = generation;
    status.running = true;
    status.started_ms = now_ms();
}

impl Actor for ServiceSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Client updates come in bursts with blocks; none may be dropped on the way to the watcher.
        ctx.set_mailbox_capacity(4096);
        self.launch(ActorKind::ClientKeeper, ctx);
        self.launch(ActorKind::MisbehaviourWatcher, ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> actix::Running {
        self.stopping = true;
        actix::Running::Stop
    }
}

impl Handler<ChildExited> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Self::Context) {
        self.meter.took();
        let stopping = self.stopping;
        let period = self.policy.restart_period.get();
        let generation = match msg.kind {
            ActorKind::ClientKeeper => self.keeper.status.generation,
            ActorKind::MisbehaviourWatcher => self.watcher.status.generation,
            ActorKind::RelayCoordinator if !msg.clean && !stopping => {
                let reason = msg
                    .reason
                    .unwrap_or_else(|| "stopped on its own".to_owned());
                error!(error = %reason, "the relay coordinator failed; relaying cannot go on: escalating");
                if let Some(escalate) = self.escalate.take() {
                    let _ = escalate.send(reason);
                }
                return;
            }
            _ => return,
        };
        if msg.generation != generation {
            // An incarnation already replaced.
            return;
        }
        match msg.kind {
            ActorKind::ClientKeeper => self.keeper.addr = None,
            _ => self.watcher.addr = None,
        }
        let Some((status, window, degraded)) = self.state_of(msg.kind) else {
            return;
        };
        let reason = msg
            .reason
            .unwrap_or_else(|| "stopped on its own".to_owned());
        status.running = false;
        status.last_error = Some(reason.clone());
        if stopping {
            return;
        }
        // Permanent: the keeper and the watcher must run for as long as the service does.
        let delay = match window.on_failure(Instant::now()) {
            RestartDecision::Restart { delay, attempt } => {
                warn!(child = ?msg.kind, attempt, ?delay, error = %reason, "service actor failed; restarting");
                delay
            }
            RestartDecision::Escalate { failures } => {
                *degraded = true;
                error!(child = ?msg.kind, failures, error = %reason, "restart intensity exceeded; paused for a period");
                period
            }
        };
        let kind = msg.kind;
        ctx.run_later(delay, move |act, ctx| {
            if act.stopping {
                return;
            }
            let Some((status, _, degraded)) = act.state_of(kind) else {
                return;
            };
            status.restarts += 1;
            *degraded = false;
            info!(child = ?kind, restarts = status.restarts, "service actor restarted");
            act.launch(kind, ctx);
        });
    }
}

impl Handler<QueryClientHealth> for ServiceSupervisor {
    type Result = ResponseFuture<Vec<ClientReport>>;

    fn handle(&mut self, msg: QueryClientHealth, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        let keeper = self.keeper.addr.clone();
        Box::pin(async move {
            match keeper {
                Some(k) => k.send(msg).await.unwrap_or_default(),
                // Restarting: nothing judged yet.
                None => Vec::new(),
            }
        })
    }
}

impl Handler<CheckClients> for ServiceSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: CheckClients, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        let keeper = self.keeper.addr.clone();
        Box::pin(async move {
            if let Some(k) = keeper {
                let _ = k.send(msg).await;
            }
        })
    }
}

impl Handler<QueryMisbehaviour> for ServiceSupervisor {
    type Result = ResponseFuture<MisbehaviourStatus>;

    fn handle(&mut self, msg: QueryMisbehaviour, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        let watcher = self.watcher.addr.clone();
        Box::pin(async move {
            match watcher {
                Some(w) => w.send(msg).await.unwrap_or_default(),
                None => MisbehaviourStatus::default(),
            }
        })
    }
}

impl Handler<ClientUpdateObserved> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ClientUpdateObserved, _: &mut Self::Context) {
        self.meter.handled();
        match &self.watcher.addr {
            // Past the mailbox limit, as the coordinator sent it: evidence must not be lost to a full mailbox.
            Some(w) if w.connected() => w.do_send(msg),
            // Restarting: this update goes unjudged (the next ones are judged by the fresh watcher).
            _ => self.watcher_meter.unqueued(),
        }
    }
}

impl Handler<QueryServiceStatus> for ServiceSupervisor {
    type Result = MessageResult<QueryServiceStatus>;

    fn handle(&mut self, _: QueryServiceStatus, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        MessageResult(ServiceStatus {
            client_keeper: (self.keeper.status.clone(), self.keeper.degraded),
            misbehaviour_watcher: (self.watcher.status.clone(), self.watcher.degraded),
            load: self.meter.load(),
        })
    }
}

impl Handler<PanicService> for ServiceSupervisor {
    type Result = bool;

    fn handle(&mut self, msg: PanicService, _: &mut Self::Context) -> bool {
        self.meter.handled();
        match msg.0 {
            ActorKind::ClientKeeper => self.keeper.addr.as_ref().map(|a| a.do_send(InjectPanic)),
            ActorKind::MisbehaviourWatcher => {
                self.watcher.addr.as_ref().map(|a| a.do_send(InjectPanic))
            }
            _ => None,
        }
        .is_some()
    }
}

impl Handler<StopServices> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, _: StopServices, ctx: &mut Self::Context) {
        self.meter.handled();
        self.stopping = true;
        ctx.stop();
    }
}
