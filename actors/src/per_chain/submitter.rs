//! The TxSubmitter actor: one chain's transactions. Requests queue while a transaction is in flight and the
//! next transaction takes as many as `max_msg_num` allows, so throughput grows with load instead of one packet
//! per block. Each client update is sent once per transaction, and not at all once it is known on chain.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;

use actix::{Actor, AsyncContext, Context, Handler, ResponseFuture};
use relayd_messages::{
    ActorKind, ChainId, Datagram, ErrorKind, InjectPanic, RelayError, SubmitTx, TxReport,
};
use tokio::sync::oneshot;
use tracing::{debug, Instrument};

use crate::chain::backend::Submitter;
use crate::supervision::guard::{injected_panic, ExitGuard};

/// Client updates remembered as committed; older ones are forgotten first.
const KNOWN_UPDATES: usize = 4096;

struct Pending {
    request: SubmitTx,
    reply: oneshot::Sender<Result<TxReport, RelayError>>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    busy: bool,
    known: HashSet<(String, u64)>,
    known_order: VecDeque<(String, u64)>,
}

/// The TxSubmitter actor.
pub struct TxSubmitter<S: Submitter + 'static> {
    chain: ChainId,
    submitter: Rc<tokio::sync::Mutex<S>>,
    queue: Rc<RefCell<Queue>>,
    max_msgs: usize,
    guard: ExitGuard,
}

impl<S: Submitter + 'static> TxSubmitter<S> {
    /// A submitter actor over `submitter`.
    pub fn new(chain: ChainId, submitter: S, guard: ExitGuard) -> Self {
        let max_msgs = submitter.max_msgs().max(1);
        Self {
            chain,
            submitter: Rc::new(tokio::sync::Mutex::new(submitter)),
            queue: Rc::new(RefCell::new(Queue::default())),
            max_msgs,
            guard,
        }
    }
}

/// Takes requests off the queue for one transaction: their update messages (each (client, height) once,
/// skipping ones already committed) followed by their datagrams, up to `max_msgs` datagrams.
fn take_batch(
    queue: &mut Queue,
    max_msgs: usize,
) -> (Vec<Pending>, Vec<Datagram>, Vec<(String, u64)>) {
    let mut taken = Vec::new();
    let mut msgs = Vec::new();
    let mut datagrams = Vec::new();
    let mut updates: Vec<(String, u64)> = Vec::new();
    let mut count = 0;
    while let Some(p) = queue.pending.front() {
        let n = p.request.datagrams.len();
        if count > 0 && count + n > max_msgs {
            break;
        }
        let Some(p) = queue.pending.pop_front() else {
            break;
        };
        if let Some((client, height, update)) = &p.request.update {
            let key = (client.to_string(), *height);
            if !queue.known.contains(&key) && !updates.contains(&key) {
                msgs.extend(update.iter().cloned());
                updates.push(key);
            }
        }
        datagrams.extend(p.request.datagrams.iter().cloned());
        count += n;
        taken.push(p);
    }
    msgs.extend(datagrams);
    (taken, msgs, updates)
}

fn remember(queue: &mut Queue, updates: Vec<(String, u64)>) {
    for key in updates {
        if queue.known.insert(key.clone()) {
            queue.known_order.push_back(key);
        }
    }
    while queue.known_order.len() > KNOWN_UPDATES {
        if let Some(old) = queue.known_order.pop_front() {
            queue.known.remove(&old);
        }
    }
}

async fn drain<S: Submitter>(
    chain: ChainId,
    submitter: Rc<tokio::sync::Mutex<S>>,
    queue: Rc<RefCell<Queue>>,
    max_msgs: usize,
) {
    loop {
        let (taken, msgs, updates) = {
            let mut q = queue.borrow_mut();
            if q.pending.is_empty() {
                q.busy = false;
                return;
            }
            take_batch(&mut q, max_msgs)
        };
        let ids: Vec<String> = taken
            .iter()
            .map(|p| p.request.correlation.to_string())
            .collect();
        let span =
            tracing::debug_span!("tx_submitter", chain = %chain, correlations = %ids.join(","));
        let result = async {
            debug!(messages = msgs.len(), requests = taken.len(), "submitting");
            submitter.lock().await.submit(msgs).await
        }
        .instrument(span)
        .await;
        match result {
            Ok(reports) => {
                remember(&mut queue.borrow_mut(), updates);
                let last = reports.last().cloned();
                for p in taken {
                    let reply = last.clone().ok_or_else(|| {
                        RelayError::new(ErrorKind::Unavailable, "no transaction was sent")
                    });
                    let _ = p.reply.send(reply);
                }
            }
            Err((_, e)) => {
                for p in taken {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

impl<S: Submitter + 'static> Actor for TxSubmitter<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.guard.stopped_cleanly();
    }
}

impl<S: Submitter + 'static> Handler<SubmitTx> for TxSubmitter<S> {
    type Result = ResponseFuture<Result<TxReport, RelayError>>;

    fn handle(&mut self, msg: SubmitTx, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.queue.borrow_mut();
            q.pending.push_back(Pending {
                request: msg,
                reply: tx,
            });
            !std::mem::replace(&mut q.busy, true)
        };
        if start {
            // Owned by the actor's context: if the actor dies, the drain dies with it and waiting callers see
            // their reply channel close.
            ctx.spawn(actix::fut::wrap_future(drain(
                self.chain.clone(),
                self.submitter.clone(),
                self.queue.clone(),
                self.max_msgs,
            )));
        }
        let chain = self.chain.clone();
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(RelayError::new(
                    ErrorKind::Stopped,
                    format!("{chain}: the tx submitter stopped before answering"),
                ))
            })
        })
    }
}

impl<S: Submitter + 'static> Handler<InjectPanic> for TxSubmitter<S> {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        injected_panic(ActorKind::TxSubmitter);
    }
}
