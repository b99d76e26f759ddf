//! The ChainMonitor's actix shell: runs its chain's event source and forwards each block.

use actix::Recipient;
use actix::{Actor, AsyncContext, Context, Handler};
use relayd_messages::{ActorKind, BlockObserved, ChainConsistencyChanged, ChainId, InjectPanic};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::chunks::{block_messages, MAX_EVENTS_PER_MESSAGE};
use super::source::{BlockEvents, EventSource};
use crate::meter::{Meter, MeteredRecipient};
use crate::supervisor::guard::{injected_panic, ExitGuard};

/// Aborts the event source's task when the monitor goes, however it goes.
struct SourceTask(tokio::task::JoinHandle<()>);

impl Drop for SourceTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The ChainMonitor actor.
pub struct ChainMonitor<S: EventSource + 'static> {
    chain: ChainId,
    source: Option<S>,
    start: u64,
    sink: MeteredRecipient<BlockObserved>,
    consistency: Option<Recipient<ChainConsistencyChanged>>,
    meter: Meter,
    task: Option<SourceTask>,
    stop: Option<oneshot::Sender<()>>,
    guard: ExitGuard,
}

impl<S: EventSource + 'static> ChainMonitor<S> {
    /// A monitor delivering from height `start` on into `sink`, counting the blocks it holds and delivers on
    /// `meter`, and telling `consistency` when the node stops or starts again agreeing with what was followed.
    pub fn new(
        chain: ChainId,
        source: S,
        start: u64,
        sink: MeteredRecipient<BlockObserved>,
        consistency: Option<Recipient<ChainConsistencyChanged>>,
        meter: Meter,
        guard: ExitGuard,
    ) -> Self {
        Self {
            chain,
            source: Some(source),
            start,
            sink,
            consistency,
            meter,
            task: None,
            stop: None,
            guard,
        }
    }
}

impl<S: EventSource + 'static> Actor for ChainMonitor<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(source) = self.source.take() else {
            return;
        };
        info!(chain = %self.chain, from = self.start, "chain monitor started");
        if let (Some(status), Some(to)) = (source.status(), self.consistency.clone()) {
            ctx.spawn(actix::fut::wrap_future::<_, Self>(report_consistency(
                self.chain.clone(),
                status,
                to,
            )));
        }
        let (tx, mut rx) = mpsc::channel::<BlockEvents>(16);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        self.stop = Some(stop_tx);
        let shutdown = async move {
            let _ = stop_rx.await;
        };
        self.task = Some(SourceTask(actix::spawn(
            source.run(self.start, tx, shutdown),
        )));
        let sink = self.sink.clone();
        let chain = self.chain.clone();
        let meter = self.meter.clone();
        ctx.spawn(actix::fut::wrap_future::<_, Self>(async move {
            while let Some(block) = rx.recv().await {
                // This block and those read behind it wait for the coordinator.
                meter.set_waiting(rx.len() as u64 + 1);
                for observed in block_messages(
                    &chain,
                    block.height,
                    block.time_ns,
                    block.events,
                    MAX_EVENTS_PER_MESSAGE,
                ) {
                    if let Err(e) = sink.send(observed).await {
                        warn!(chain = %chain, error = %e, "the coordinator is gone; monitor stops delivering");
                        return;
                    }
                }
                meter.handled();
                meter.set_waiting(rx.len() as u64);
            }
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.guard.stopped_cleanly();
    }
}

/// Tells the coordinator each change of the node's consistency. The first verdict after a (re)start is always
/// told, consistent or not, so that a path stopped by an earlier monitor resumes once this one finds the node
/// consistent; verdicts are read only once the monitor has judged the node (delivered a height or found it
/// inconsistent).
async fn report_consistency(
    chain: ChainId,
    mut status: tokio::sync::watch::Receiver<super::MonitorStatus>,
    to: Recipient<ChainConsistencyChanged>,
) {
    let mut told: Option<Option<String>> = None;
    while status.changed().await.is_ok() {
        let verdict = {
            let s = status.borrow_and_update();
            if s.last_height.is_none() && s.inconsistent.is_none() {
                continue;
            }
            s.inconsistent.clone()
        };
        if told.as_ref() == Some(&verdict) {
            continue;
        }
        let message = ChainConsistencyChanged {
            chain: chain.clone(),
            inconsistent: verdict.clone(),
        };
        if to.send(message).await.is_err() {
            warn!(chain = %chain, "the coordinator is gone; consistency is no longer reported");
            return;
        }
        told = Some(verdict);
    }
}

impl<S: EventSource + 'static> Handler<InjectPanic> for ChainMonitor<S> {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        self.meter.handled();
        injected_panic(ActorKind::ChainMonitor);
    }
}
