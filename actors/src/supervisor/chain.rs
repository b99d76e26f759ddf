//! The per-chain supervisor: starts ChainMonitor, Querier, LightClient and TxSubmitter on the chain's Arbiter,
//! each from fresh state built by the chain's factory, and restarts them when they fail, including by panic.

use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, MessageResult,
    Recipient, ResponseFuture,
};
use relayd_config::SupervisionConfig;
use relayd_messages::{
    ActorKind, BlockObserved, ChainConsistencyChanged, ChainStatus, ChildExited, ChildStatus,
    FinishInFlight, InjectPanic, PanicChild, QueryChainStatus, Quiesce, RelayError, StopChild,
    StopSupervisor,
};
use tracing::{error, info, warn};

use crate::chain::endpoint::ChainEndpoint;
use crate::chain::factory::ChainFactory;
use crate::chain_link::ChainLink;
use crate::chain_monitor::ChainMonitor;
use crate::light_client::LightClient;
use crate::meter::{Meter, MeteredRecipient};
use crate::querier::Querier;
use crate::store::{now_ms, StateStore};
use crate::supervisor::guard::ExitGuard;
use crate::supervisor::state::{affected, RestartDecision, RestartType, RestartWindow};
use crate::tx_submitter::TxSubmitter;

/// Children in start order (rest_for_one restarts the failed one and those after it).
pub const CHILDREN: [ActorKind; 4] = [
    ActorKind::ChainMonitor,
    ActorKind::Querier,
    ActorKind::LightClient,
    ActorKind::TxSubmitter,
];

enum Running<F: ChainFactory> {
    Monitor(Addr<ChainMonitor<F::Events>>),
    Querier(Addr<Querier<F::Endpoint>>),
    Light(Addr<LightClient<F::Light>>),
    Submitter(Addr<TxSubmitter<F::Submit>>),
}

struct Child<F: ChainFactory> {
    status: ChildStatus,
    window: RestartWindow,
    running: Option<Running<F>>,
}

/// The per-chain supervisor actor.
pub struct ChainSupervisor<F: ChainFactory + Unpin> {
    factory: F,
    link: ChainLink,
    store: StateStore,
    sink: MeteredRecipient<BlockObserved>,
    consistency: Option<Recipient<ChainConsistencyChanged>>,
    policy: SupervisionConfig,
    refresh_every: Duration,
    children: Vec<Child<F>>,
    degraded: bool,
    stopping: bool,
    meter: Meter,
}

impl<F: ChainFactory + Unpin> ChainSupervisor<F> {
    /// A supervisor for the chain `factory` builds; `link` is re-pointed at every (re)start.
    pub fn new(
        factory: F,
        link: ChainLink,
        store: StateStore,
        sink: MeteredRecipient<BlockObserved>,
        policy: SupervisionConfig,
        refresh_every: Duration,
    ) -> Self {
        let children = CHILDREN
            .iter()
            .map(|&kind| Child {
                status: ChildStatus::new(kind),
                window: RestartWindow::new(&policy, 0.2),
                running: None,
            })
            .collect();
        Self {
            factory,
            link,
            store,
            sink,
            consistency: None,
            policy,
            refresh_every,
            children,
            degraded: false,
            stopping: false,
            meter: Meter::new(),
        }
    }

    /// Tells `to` when the chain's node stops or starts again being consistent with what its monitor followed.
    pub fn with_consistency(mut self, to: Recipient<ChainConsistencyChanged>) -> Self {
        self.consistency = Some(to);
        self
    }

    fn chain(&self) -> String {
        self.factory.chain_id().to_string()
    }

    fn start_child(&mut self, index: usize, ctx: &mut Context<Self>) {
        if CHILDREN[index] != ActorKind::ChainMonitor {
            self.launch(index, None, ctx);
            return;
        }
        // The start height needs the chain when there is no checkpoint; resolve it, then start.
        self.children[index].status.generation += 1;
        let generation = self.children[index].status.generation;
        let checkpoint = self
            .store
            .checkpoint(self.factory.chain_id().as_str())
            .ok()
            .flatten();
        let endpoint = self.factory.endpoint();
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(async move {
                match checkpoint {
                    Some(h) => Ok(h + 1),
                    None => endpoint
                        .latest_height()
                        .await
                        .map_err(crate::querier::chain_error),
                }
            })
            .map(move |start, act, ctx| {
                // A later (re)start or a shutdown superseded this one while the height was read.
                if act.children[index].status.generation != generation || act.stopping {
                    return;
                }
                match start {
                    Ok(start) => act.launch(index, Some(start), ctx),
                    Err(e) => act.failed(index, e.to_string(), ctx),
                }
            }),
        );
    }

    fn launch(&mut self, index: usize, start: Option<u64>, ctx: &mut Context<Self>) {
        let kind = CHILDREN[index];
        let chain = self.factory.chain_id().clone();
        let generation = {
            let status = &mut self.children[index].status;
            status.generation += 1;
            status.generation
        };
        let guard = ExitGuard::new(
            kind,
            generation,
            MeteredRecipient::new(ctx.address().recipient(), self.meter.clone()),
        );
        let result: Result<Running<F>, RelayError> = match kind {
            ActorKind::ChainMonitor => self.factory.events().map(|events| {
                let monitor = ChainMonitor::new(
                    chain,
                    events,
                    start.unwrap_or(1),
                    self.sink.clone(),
                    self.consistency.clone(),
                    self.link.monitor_meter(),
                    guard,
                );
                Running::Monitor(monitor.start())
            }),
            ActorKind::Querier => Ok(Running::Querier(
                Querier::new(chain, self.factory.endpoint(), guard).start(),
            )),
            ActorKind::LightClient => self.factory.light().map(|light| {
                Running::Light(LightClient::new(chain, light, self.refresh_every, guard).start())
            }),
            _ => self.factory.submitter().and_then(|s| {
                let extra = self.factory.extra_submitters()?;
                let actor = extra
                    .into_iter()
                    .fold(TxSubmitter::new(chain, s, guard), TxSubmitter::with_lane)
                    .with_board(self.link.lane_board());
                Ok(Running::Submitter(actor.start()))
            }),
        };
        match result {
            Ok(running) => {
                self.link.update(|r| match &running {
                    Running::Monitor(_) => {}
                    Running::Querier(a) => {
                        r.proof = Some(a.clone().recipient());
                        r.client = Some(a.clone().recipient());
                        r.commitments = Some(a.clone().recipient());
                        r.events = Some(a.clone().recipient());
                        r.tx_messages = Some(a.clone().recipient());
                        r.unreceived = Some(a.clone().recipient());
                    }
                    Running::Light(a) => {
                        r.update = Some(a.clone().recipient());
                        r.header = Some(a.clone().recipient());
                        r.heads = Some(a.clone().recipient());
                        r.root = Some(a.clone().recipient());
                    }
                    Running::Submitter(a) => r.submit = Some(a.clone().recipient()),
                });
                let child = &mut self.children[index];
                child.running = Some(running);
                child.status.running = true;
                child.status.started_ms = now_ms();
            }
            Err(e) => {
                // The child was never made; its exit guard, dropped unused, reports an exit of this generation
                // that must not overwrite why it failed: move past that generation first.
                self.children[index].status.generation += 1;
                self.failed(index, e.to_string(), ctx)
            }
        }
    }

    fn unlink(&mut self, index: usize) {
        self.link.update(|r| match CHILDREN[index] {
            ActorKind::Querier => {
                r.proof = None;
                r.client = None;
                r.commitments = None;
                r.events = None;
                r.tx_messages = None;
                r.unreceived = None;
            }
            ActorKind::LightClient => {
                r.update = None;
                r.header = None;
                r.heads = None;
                r.root = None;
            }
            ActorKind::TxSubmitter => r.submit = None,
            _ => {}
        });
    }

    /// Stops a running child on purpose; its exit report is ignored because its generation is bumped first.
    fn stop_child(&mut self, index: usize) {
        self.unlink(index);
        let child = &mut self.children[index];
        child.status.generation += 1;
        child.status.running = false;
        match child.running.take() {
            Some(Running::Monitor(a)) => a.do_send(StopChild),
            Some(Running::Querier(a)) => a.do_send(StopChild),
            Some(Running::Light(a)) => a.do_send(StopChild),
            Some(Running::Submitter(a)) => a.do_send(StopChild),
            None => {}
        }
    }

    fn failed(&mut self, index: usize, reason: String, ctx: &mut Context<Self>) {
        let chain = self.chain();
        let kind = CHILDREN[index];
        self.unlink(index);
        {
            let child = &mut self.children[index];
            child.running = None;
            child.status.running = false;
            child.status.last_error = Some(reason.clone());
        }
        if self.stopping || !RestartType::Permanent.restarts(false) {
            return;
        }
        let decision = self.children[index].window.on_failure(Instant::now());
        let range = affected(self.policy.strategy, index, CHILDREN.len());
        // rest_for_one: the children started after the failed one depend on it and restart with it.
        for later in range.clone().skip(1) {
            if self.children[later].running.is_some() {
                self.stop_child(later);
            }
        }
        let delay = match decision {
            RestartDecision::Restart { delay, attempt } => {
                warn!(chain = %chain, child = ?kind, attempt, ?delay, error = %reason, "child failed; restarting");
                delay
            }
            RestartDecision::Escalate { failures } => {
                // Escalation: the chain is marked degraded and paused for a whole period, which also stops
                // hammering a failing node; the other chains are untouched.
                self.degraded = true;
                error!(chain = %chain, child = ?kind, failures, error = %reason, "restart intensity exceeded; chain degraded");
                self.policy.restart_period.get()
            }
        };
        ctx.run_later(delay, move |act, ctx| {
            if act.stopping {
                return;
            }
            for i in range {
                if act.children[i].running.is_none() {
                    act.children[i].status.restarts += 1;
                    act.start_child(i, ctx);
                }
            }
            act.degraded = false;
        });
    }
}

impl<S: crate::chain_monitor::EventSource + 'static> Handler<StopChild> for ChainMonitor<S> {
    type Result = ();
    fn handle(&mut self, _: StopChild, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl<L: crate::light_client::LightSource + 'static> Handler<StopChild> for LightClient<L> {
    type Result = ();
    fn handle(&mut self, _: StopChild, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl<S: crate::tx_submitter::Submitter + 'static> Handler<StopChild> for TxSubmitter<S> {
    type Result = ();
    fn handle(&mut self, _: StopChild, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl<E: ChainEndpoint + Clone + Unpin + 'static> Handler<StopChild> for Querier<E> {
    type Result = ();
    fn handle(&mut self, _: StopChild, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl<F: ChainFactory + Unpin> Actor for ChainSupervisor<F> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        info!(chain = %self.chain(), strategy = ?self.policy.strategy, "chain supervisor started");
        for i in 0..CHILDREN.len() {
            self.start_child(i, ctx);
        }
    }

    fn stopping(&mut self, _: &mut Self::Context) -> actix::Running {
        self.stopping = true;
        for i in 0..CHILDREN.len() {
            self.stop_child(i);
        }
        actix::Running::Stop
    }
}

impl<F: ChainFactory + Unpin> Handler<ChildExited> for ChainSupervisor<F> {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Self::Context) {
        self.meter.took();
        let Some(index) = CHILDREN.iter().position(|k| *k == msg.kind) else {
            return;
        };
        if msg.generation != self.children[index].status.generation {
            // A child this supervisor already replaced or stopped on purpose.
            return;
        }
        let reason = msg
            .reason
            .unwrap_or_else(|| "stopped on its own".to_owned());
        self.failed(index, reason, ctx);
    }
}

impl<F: ChainFactory + Unpin> Handler<QueryChainStatus> for ChainSupervisor<F> {
    type Result = MessageResult<QueryChainStatus>;

    fn handle(&mut self, _: QueryChainStatus, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        MessageResult(ChainStatus {
            chain: self.chain(),
            load: self.meter.load(),
            degraded: self.degraded,
            children: self.children.iter().map(|c| c.status.clone()).collect(),
        })
    }
}

impl<F: ChainFactory + Unpin> Handler<PanicChild> for ChainSupervisor<F> {
    type Result = bool;

    fn handle(&mut self, msg: PanicChild, _: &mut Self::Context) -> bool {
        self.meter.handled();
        let Some(index) = CHILDREN.iter().position(|k| *k == msg.0) else {
            return false;
        };
        match &self.children[index].running {
            Some(Running::Monitor(a)) => a.do_send(InjectPanic),
            Some(Running::Querier(a)) => a.do_send(InjectPanic),
            Some(Running::Light(a)) => a.do_send(InjectPanic),
            Some(Running::Submitter(a)) => a.do_send(InjectPanic),
            None => return false,
        }
        true
    }
}

impl<F: ChainFactory + Unpin> Handler<Quiesce> for ChainSupervisor<F> {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Quiesce, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        self.stopping = true;
        if let Some(index) = CHILDREN.iter().position(|k| *k == ActorKind::ChainMonitor) {
            self.stop_child(index);
        }
        let submitter = self.children.iter().find_map(|c| match &c.running {
            Some(Running::Submitter(a)) => Some(a.clone()),
            _ => None,
        });
        Box::pin(async move {
            if let Some(submitter) = submitter {
                let _ = submitter.send(FinishInFlight).await;
            }
        })
    }
}

impl<F: ChainFactory + Unpin> Handler<StopSupervisor> for ChainSupervisor<F> {
    type Result = ();

    fn handle(&mut self, _: StopSupervisor, ctx: &mut Self::Context) {
        self.meter.handled();
        ctx.stop();
    }
}
