//! The TxSubmitter's actix shell: queues requests, batches them into transactions, answers each.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix::{Actor, AsyncContext, Context, Handler, ResponseFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use relayd_messages::{
    ActorKind, ChainId, Datagram, ErrorKind, FinishInFlight, InjectPanic, RelayError, SubmitTx,
    TxReport,
};
use tokio::sync::{oneshot, Notify};
use tracing::{debug, Instrument};

use super::backend::{Confirmation, Submitter, TxOutcomes};
use crate::supervisor::guard::{injected_panic, ExitGuard};

/// Client updates remembered as committed; older ones are forgotten first.
const KNOWN_UPDATES: usize = 4096;

/// A client update as the submitter tracks it: (client, height).
type UpdateKey = (String, u64);

struct Pending {
    request: SubmitTx,
    reply: oneshot::Sender<Result<TxReport, RelayError>>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    /// Halves of refused batches, each to go out as a transaction of its own, first half first.
    split: VecDeque<Vec<Pending>>,
    /// A drain task is running.
    busy: bool,
    known: HashSet<UpdateKey>,
    known_order: VecDeque<UpdateKey>,
    /// Shutting down: no new transaction starts; requests stay queued until the actor stops.
    closing: bool,
    /// Told when no transaction is being admitted or waits for its block any more, once closing.
    idle: Vec<oneshot::Sender<()>>,
}

/// The TxSubmitter actor.
pub struct TxSubmitter<S: Submitter + 'static> {
    chain: ChainId,
    submitter: Rc<tokio::sync::Mutex<S>>,
    queue: Rc<RefCell<Queue>>,
    /// Wakes the drain when requests arrive or shutdown begins.
    wake: Rc<Notify>,
    limits: Limits,
    guard: ExitGuard,
}

/// How much one chain takes at once.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Messages per transaction.
    max_msgs: usize,
    /// Transactions admitted and waiting for their block.
    max_in_flight: usize,
}

impl<S: Submitter + 'static> TxSubmitter<S> {
    /// A submitter actor over `submitter`.
    pub fn new(chain: ChainId, submitter: S, guard: ExitGuard) -> Self {
        let limits = Limits {
            max_msgs: submitter.max_msgs().max(1),
            max_in_flight: submitter.max_in_flight().max(1),
        };
        Self {
            chain,
            submitter: Rc::new(tokio::sync::Mutex::new(submitter)),
            queue: Rc::new(RefCell::new(Queue::default())),
            wake: Rc::new(Notify::new()),
            limits,
            guard,
        }
    }
}

/// The messages a request adds to a transaction that already holds the updates `taken`: its datagrams, and its
/// update unless committed or already in the transaction.
fn added_messages(known: &HashSet<UpdateKey>, taken: &[UpdateKey], p: &Pending) -> usize {
    let update = match &p.request.update {
        Some((client, height, msgs)) => {
            let key = (client.to_string(), *height);
            if known.contains(&key) || taken.contains(&key) {
                0
            } else {
                msgs.len()
            }
        }
        None => 0,
    };
    update + p.request.datagrams.len()
}

/// Takes requests off the queue for one transaction, up to `max_msgs` messages (updates included): higher
/// priority first, and first come, first served within a priority (the sort is stable).
fn take_batch(queue: &mut Queue, max_msgs: usize) -> Vec<Pending> {
    queue
        .pending
        .make_contiguous()
        .sort_by_key(|p| std::cmp::Reverse(p.request.priority));
    let mut taken = Vec::new();
    let mut updates: Vec<UpdateKey> = Vec::new();
    let mut count = 0;
    while let Some(p) = queue.pending.front() {
        let n = added_messages(&queue.known, &updates, p);
        if count > 0 && count + n > max_msgs {
            break;
        }
        let Some(p) = queue.pending.pop_front() else {
            break;
        };
        if let Some((client, height, _)) = &p.request.update {
            updates.push((client.to_string(), *height));
        }
        count += n;
        taken.push(p);
    }
    taken
}

/// The next transaction's requests: the first half of a refused batch, unless queued requests of a higher
/// priority wait.
fn next_group(queue: &mut Queue, max_msgs: usize) -> Option<Vec<Pending>> {
    let top = queue.pending.iter().map(|p| p.request.priority).max();
    let split = queue
        .split
        .front()
        .and_then(|g| g.iter().map(|p| p.request.priority).max());
    match (split, top) {
        (Some(s), Some(t)) if t > s => Some(take_batch(queue, max_msgs)),
        (Some(_), _) => queue.split.pop_front(),
        (None, Some(_)) => Some(take_batch(queue, max_msgs)),
        (None, None) => None,
    }
}

fn remember(queue: &mut Queue, updates: Vec<UpdateKey>) {
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

/// The messages of one transaction for `group`: its update messages (each (client, height) once, skipping ones
/// already committed) followed by its datagrams. An update only in flight in another transaction is carried
/// again: the chain checks and simulates a transaction against committed state, without the effects of those
/// still in its mempool, and installing the same header twice is a no-op.
fn messages_of(queue: &Queue, group: &[Pending]) -> (Vec<Datagram>, Vec<UpdateKey>) {
    let mut msgs = Vec::new();
    let mut datagrams = Vec::new();
    let mut updates: Vec<UpdateKey> = Vec::new();
    for p in group {
        if let Some((client, height, update)) = &p.request.update {
            let key = (client.to_string(), *height);
            if !queue.known.contains(&key) && !updates.contains(&key) {
                msgs.extend(update.iter().cloned());
                updates.push(key);
            }
        }
        datagrams.extend(p.request.datagrams.iter().cloned());
    }
    msgs.extend(datagrams);
    (msgs, updates)
}

/// Halves a refused group when it holds more than one request, so that one bad datagram fails alone (a few
/// more transactions for it, instead of losing the batch); `false` when there is nothing left to halve.
fn split_refused(queue: &mut Queue, group: &mut Vec<Pending>) -> bool {
    if group.len() < 2 {
        return false;
    }
    let mut first = std::mem::take(group);
    let second = first.split_off(first.len() / 2);
    queue.split.push_front(second);
    queue.split.push_front(first);
    true
}

fn answer(group: Vec<Pending>, reply: impl Fn() -> Result<TxReport, RelayError>) {
    for p in group {
        let _ = p.reply.send(reply());
    }
}

type Admitting = Pin<
    Box<
        dyn Future<
            Output = (
                Vec<Pending>,
                Vec<UpdateKey>,
                Result<Confirmation, RelayError>,
            ),
        >,
    >,
>;
type Confirming = Pin<Box<dyn Future<Output = (Vec<Pending>, Vec<UpdateKey>, TxOutcomes)>>>;

/// What the drain learnt in one turn.
enum Step {
    Admitted(
        Vec<Pending>,
        Vec<UpdateKey>,
        Result<Confirmation, RelayError>,
    ),
    Confirmed(Vec<Pending>, Vec<UpdateKey>, TxOutcomes),
    Woken,
}

/// Admits one transaction at a time (sequence numbers are handed out in order) while up to
/// `limits.max_in_flight` admitted ones wait for their blocks; ends once nothing is queued or in flight, or
/// closing and nothing is in flight.
async fn drain<S: Submitter + 'static>(
    chain: ChainId,
    submitter: Rc<tokio::sync::Mutex<S>>,
    queue: Rc<RefCell<Queue>>,
    wake: Rc<Notify>,
    limits: Limits,
) {
    let mut admitting: Option<Admitting> = None;
    let mut confirming: FuturesUnordered<Confirming> = FuturesUnordered::new();
    loop {
        if admitting.is_none() {
            let group = {
                let mut q = queue.borrow_mut();
                if q.closing || confirming.len() >= limits.max_in_flight {
                    None
                } else {
                    next_group(&mut q, limits.max_msgs)
                }
            };
            if let Some(group) = group {
                let (msgs, updates) = messages_of(&queue.borrow(), &group);
                if msgs.is_empty() {
                    // Update-only requests (client refreshes) whose update an earlier transaction committed.
                    answer(group, || {
                        Err(RelayError::new(
                            ErrorKind::AlreadyRelayed,
                            "nothing left to send: the client update is already on chain",
                        ))
                    });
                    continue;
                }
                let ids: Vec<String> = group
                    .iter()
                    .map(|p| p.request.correlation.to_string())
                    .collect();
                let span = tracing::debug_span!("tx_submitter", chain = %chain, correlations = %ids.join(","));
                let submitter = submitter.clone();
                let in_flight = confirming.len();
                admitting = Some(Box::pin(
                    async move {
                        debug!(
                            messages = msgs.len(),
                            requests = group.len(),
                            in_flight,
                            "admitting"
                        );
                        let result = submitter.lock().await.admit(msgs).await;
                        (group, updates, result)
                    }
                    .instrument(span),
                ));
            }
        }
        if admitting.is_none() && confirming.is_empty() {
            let mut q = queue.borrow_mut();
            let queued = !q.pending.is_empty() || !q.split.is_empty();
            if q.closing || !queued {
                q.busy = false;
                for waiter in q.idle.drain(..) {
                    let _ = waiter.send(());
                }
                return;
            }
            continue;
        }
        let step = {
            let admit = async {
                match admitting.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            };
            let confirm = async {
                match confirming.next().await {
                    Some(done) => done,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                (group, updates, result) = admit => Step::Admitted(group, updates, result),
                (group, updates, outcome) = confirm => Step::Confirmed(group, updates, outcome),
                () = wake.notified() => Step::Woken,
            }
        };
        match step {
            Step::Woken => {}
            Step::Admitted(mut group, updates, result) => {
                admitting = None;
                match result {
                    Ok(confirmation) => confirming.push(Box::pin(async move {
                        let outcome = confirmation.await;
                        (group, updates, outcome)
                    })),
                    Err(e) => {
                        let refused = e.kind == ErrorKind::Rejected;
                        if !(refused && split_refused(&mut queue.borrow_mut(), &mut group)) {
                            answer(group, || Err(e.clone()));
                        } else {
                            debug!(chain = %chain, error = %e, "transaction refused on admission; splitting the batch");
                        }
                    }
                }
            }
            Step::Confirmed(mut group, updates, outcome) => match outcome {
                Ok(reports) => {
                    remember(&mut queue.borrow_mut(), updates);
                    let last = reports.last().cloned();
                    answer(group, || {
                        last.clone().ok_or_else(|| {
                            RelayError::new(ErrorKind::Unavailable, "no transaction was sent")
                        })
                    });
                }
                Err((_, e)) => {
                    let refused = e.kind == ErrorKind::Rejected;
                    if !(refused && split_refused(&mut queue.borrow_mut(), &mut group)) {
                        answer(group, || Err(e.clone()));
                    } else {
                        debug!(chain = %chain, error = %e, "transaction failed in its block; splitting the batch");
                    }
                }
            },
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
            !q.closing && !std::mem::replace(&mut q.busy, true)
        };
        if !start {
            self.wake.notify_one();
        } else {
            // Owned by the actor's context: if the actor dies, the drain dies with it and waiting callers see
            // their reply channel close.
            ctx.spawn(actix::fut::wrap_future(drain(
                self.chain.clone(),
                self.submitter.clone(),
                self.queue.clone(),
                self.wake.clone(),
                self.limits,
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

impl<S: Submitter + 'static> Handler<FinishInFlight> for TxSubmitter<S> {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: FinishInFlight, _: &mut Self::Context) -> Self::Result {
        let mut q = self.queue.borrow_mut();
        q.closing = true;
        if !q.busy {
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        q.idle.push(tx);
        self.wake.notify_one();
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl<S: Submitter + 'static> Handler<InjectPanic> for TxSubmitter<S> {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        injected_panic(ActorKind::TxSubmitter);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use actix::{Actor, Context, Handler};
    use relayd_messages::{
        ActorKind, ChainId, ChildExited, ClientId, CorrelationId, Datagram, ErrorKind, RelayError,
        SubmitTx, TxReport,
    };
    use tokio::sync::oneshot;

    use super::TxSubmitter;
    use crate::supervisor::guard::ExitGuard;
    use crate::tx_submitter::{Confirmation, Submitter};

    /// Refuses any transaction holding a datagram whose value is `bad`, as a chain refuses a whole tx for one
    /// failing message; the first transaction waits for `gate` so that later requests queue behind it.
    struct Refusing {
        sent: Rc<RefCell<Vec<Vec<Vec<u8>>>>>,
        gate: Option<oneshot::Receiver<()>>,
    }

    impl Submitter for Refusing {
        fn signer(&self) -> &str {
            "relayer"
        }

        async fn submit(
            &mut self,
            msgs: Vec<Datagram>,
        ) -> Result<Vec<TxReport>, (Vec<TxReport>, RelayError)> {
            if let Some(gate) = self.gate.take() {
                let _ = gate.await;
            }
            if msgs.iter().any(|m| m.value == b"bad") {
                return Err((
                    Vec::new(),
                    RelayError::new(ErrorKind::Rejected, "message failed"),
                ));
            }
            let mut sent = self.sent.borrow_mut();
            sent.push(msgs.iter().map(|m| m.value.clone()).collect());
            Ok(vec![TxReport {
                tx_hash: format!("tx{}", sent.len()),
                height: 1,
                messages: msgs.len(),
                gas_used: 1,
            }])
        }

        fn max_msgs(&self) -> usize {
            100
        }
    }

    struct Sink;
    impl Actor for Sink {
        type Context = Context<Self>;
    }
    impl Handler<ChildExited> for Sink {
        type Result = ();
        fn handle(&mut self, _: ChildExited, _: &mut Self::Context) {}
    }

    fn request(value: &[u8]) -> SubmitTx {
        let client = ClientId::new("07-tendermint-0").expect("client id");
        SubmitTx {
            correlation: CorrelationId::fresh(),
            update: Some((
                client,
                7,
                vec![Datagram {
                    type_url: "update".into(),
                    value: b"update".to_vec(),
                }],
            )),
            datagrams: vec![Datagram {
                type_url: "recv".into(),
                value: value.to_vec(),
            }],
            priority: 0,
        }
    }

    #[actix_rt::test]
    async fn one_refused_datagram_fails_alone_and_the_rest_of_its_batch_lands() {
        let sent = Rc::new(RefCell::new(Vec::new()));
        let (open, gate) = oneshot::channel();
        let sink = Sink.start().recipient();
        let submitter = Refusing {
            sent: sent.clone(),
            gate: Some(gate),
        };
        let addr = TxSubmitter::new(
            ChainId::new("chain-a").expect("chain id"),
            submitter,
            ExitGuard::new(ActorKind::TxSubmitter, 1, sink),
        )
        .start();
        // The first request holds the submitter busy so the next eight queue into one batch.
        let first = addr.send(request(b"first"));
        tokio::task::yield_now().await;
        let values: Vec<Vec<u8>> = (0..8)
            .map(|i| {
                if i == 2 {
                    b"bad".to_vec()
                } else {
                    format!("p{i}").into_bytes()
                }
            })
            .collect();
        let replies: Vec<_> = values.iter().map(|v| addr.send(request(v))).collect();
        tokio::task::yield_now().await;
        open.send(()).expect("gate");
        first.await.expect("mailbox").expect("first tx");
        let mut results = Vec::new();
        for r in replies {
            results.push(r.await.expect("mailbox"));
        }

        for (i, r) in results.iter().enumerate() {
            if i == 2 {
                let e = r.as_ref().expect_err("the bad datagram is refused");
                assert_eq!(e.kind, ErrorKind::Rejected);
            } else {
                assert!(r.is_ok(), "request {i} lost with its batch: {r:?}");
            }
        }
        let sent = sent.borrow();
        let datagrams: Vec<Vec<u8>> = sent
            .iter()
            .flatten()
            .filter(|v| v.as_slice() != b"update")
            .cloned()
            .collect();
        let mut expected = vec![b"first".to_vec()];
        expected.extend(values.iter().filter(|v| v.as_slice() != b"bad").cloned());
        assert_eq!(datagrams, expected, "each good datagram once, in order");
        // The shared update went out with the first transaction and was then known as committed.
        let updates = sent.iter().flatten().filter(|v| v.as_slice() == b"update");
        assert_eq!(updates.count(), 1);
        assert_eq!(sent[0][0], b"update".to_vec());
    }

    /// Submits each transaction's datagrams as received, allowing `max` per transaction; the first waits for a
    /// gate so that later requests queue.
    struct Recording {
        sent: Rc<RefCell<Vec<Vec<Vec<u8>>>>>,
        gate: Option<oneshot::Receiver<()>>,
        max: usize,
    }

    impl Submitter for Recording {
        fn signer(&self) -> &str {
            "relayer"
        }

        async fn submit(
            &mut self,
            msgs: Vec<Datagram>,
        ) -> Result<Vec<TxReport>, (Vec<TxReport>, RelayError)> {
            if let Some(gate) = self.gate.take() {
                let _ = gate.await;
            }
            self.sent
                .borrow_mut()
                .push(msgs.iter().map(|m| m.value.clone()).collect());
            Ok(vec![TxReport {
                tx_hash: "tx".into(),
                height: 1,
                messages: msgs.len(),
                gas_used: 1,
            }])
        }

        fn max_msgs(&self) -> usize {
            self.max
        }
    }

    #[actix_rt::test]
    async fn queued_requests_of_higher_priority_go_into_the_next_transaction_first() {
        let sent = Rc::new(RefCell::new(Vec::new()));
        let (open, gate) = oneshot::channel();
        let addr = TxSubmitter::new(
            ChainId::new("chain-a").expect("chain id"),
            Recording {
                sent: sent.clone(),
                gate: Some(gate),
                max: 2,
            },
            ExitGuard::new(ActorKind::TxSubmitter, 1, Sink.start().recipient()),
        )
        .start();
        let plain = |v: &[u8], priority: u8| SubmitTx {
            update: None,
            priority,
            ..request(v)
        };
        let first = addr.send(plain(b"first", 0));
        tokio::task::yield_now().await;
        let queued: Vec<_> = [(b"low1", 0u8), (b"low2", 0), (b"high", 9), (b"low3", 0)]
            .iter()
            .map(|(v, p)| addr.send(plain(*v, *p)))
            .collect();
        tokio::task::yield_now().await;
        open.send(()).expect("gate");
        first.await.expect("mailbox").expect("first tx");
        for r in queued {
            r.await.expect("mailbox").expect("tx");
        }
        let sent = sent.borrow();
        let txs: Vec<Vec<&[u8]>> = sent
            .iter()
            .map(|tx| tx.iter().map(Vec::as_slice).collect())
            .collect();
        assert_eq!(
            txs,
            vec![
                vec![&b"first"[..]],
                vec![&b"high"[..], &b"low1"[..]],
                vec![&b"low2"[..], &b"low3"[..]]
            ]
        );
    }

    #[actix_rt::test]
    async fn finishing_lets_the_transaction_in_flight_land_and_sends_nothing_new() {
        let sent = Rc::new(RefCell::new(Vec::new()));
        let (open, gate) = oneshot::channel();
        let addr = TxSubmitter::new(
            ChainId::new("chain-a").expect("chain id"),
            Recording {
                sent: sent.clone(),
                gate: Some(gate),
                max: 1,
            },
            ExitGuard::new(ActorKind::TxSubmitter, 1, Sink.start().recipient()),
        )
        .start();
        let plain = |v: &[u8]| SubmitTx {
            update: None,
            ..request(v)
        };
        let in_flight = addr.send(plain(b"in flight"));
        tokio::task::yield_now().await;
        let queued = addr.send(plain(b"queued"));
        tokio::task::yield_now().await;
        let finished = addr.send(super::FinishInFlight);
        tokio::task::yield_now().await;
        open.send(()).expect("gate");
        finished.await.expect("mailbox");
        in_flight
            .await
            .expect("mailbox")
            .expect("the transaction in flight landed");
        let late = addr.send(plain(b"late"));
        tokio::task::yield_now().await;
        let txs: Vec<Vec<Vec<u8>>> = sent.borrow().clone();
        assert_eq!(
            txs,
            vec![vec![b"in flight".to_vec()]],
            "nothing new was sent"
        );
        // A finished submitter answers a second request to finish at once.
        addr.send(super::FinishInFlight).await.expect("mailbox");
        drop((queued, late));
    }

    /// A chain that admits transactions and confirms them when the test says so (or at once when not `hold`):
    /// a transaction holding `bad-admit` is refused on admission, one holding `bad-block` fails in its block.
    struct Pipelined {
        admitted: Rc<RefCell<Vec<Vec<Vec<u8>>>>>,
        gates: Rc<RefCell<Vec<Option<oneshot::Sender<()>>>>>,
        hold: bool,
        max_msgs: usize,
        max_in_flight: usize,
    }

    impl Pipelined {
        fn new(max_msgs: usize, max_in_flight: usize, hold: bool) -> Self {
            Self {
                admitted: Rc::default(),
                gates: Rc::default(),
                hold,
                max_msgs,
                max_in_flight,
            }
        }
    }

    impl Submitter for Pipelined {
        fn signer(&self) -> &str {
            "relayer"
        }

        async fn submit(
            &mut self,
            msgs: Vec<Datagram>,
        ) -> Result<Vec<TxReport>, (Vec<TxReport>, RelayError)> {
            match self.admit(msgs).await {
                Ok(confirmation) => confirmation.await,
                Err(e) => Err((Vec::new(), e)),
            }
        }

        fn max_msgs(&self) -> usize {
            self.max_msgs
        }

        fn max_in_flight(&self) -> usize {
            self.max_in_flight
        }

        async fn admit(&mut self, msgs: Vec<Datagram>) -> Result<Confirmation, RelayError> {
            let values: Vec<Vec<u8>> = msgs.iter().map(|m| m.value.clone()).collect();
            if values.iter().any(|v| v.as_slice() == b"bad-admit") {
                return Err(RelayError::new(ErrorKind::Rejected, "refused by CheckTx"));
            }
            let fails = values.iter().any(|v| v.as_slice() == b"bad-block");
            let mut admitted = self.admitted.borrow_mut();
            admitted.push(values);
            let hash = format!("tx{}", admitted.len());
            let (open, gate) = oneshot::channel();
            self.gates.borrow_mut().push(Some(open));
            let hold = self.hold;
            let messages = msgs.len();
            Ok(Box::pin(async move {
                if hold {
                    let _ = gate.await;
                }
                if fails {
                    return Err((
                        Vec::new(),
                        RelayError::new(ErrorKind::Rejected, "message failed in DeliverTx"),
                    ));
                }
                Ok(vec![TxReport {
                    tx_hash: hash,
                    height: 1,
                    messages,
                    gas_used: 1,
                }])
            }))
        }
    }

    fn start(submitter: Pipelined) -> actix::Addr<TxSubmitter<Pipelined>> {
        TxSubmitter::new(
            ChainId::new("chain-a").expect("chain id"),
            submitter,
            ExitGuard::new(ActorKind::TxSubmitter, 1, Sink.start().recipient()),
        )
        .start()
    }

    /// Lets the actor and its drain run until nothing more happens without the test.
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    fn plain(value: &[u8]) -> SubmitTx {
        SubmitTx {
            update: None,
            ..request(value)
        }
    }

    fn open(gates: &Rc<RefCell<Vec<Option<oneshot::Sender<()>>>>>, tx: usize) {
        let gate = gates.borrow_mut()[tx].take().expect("gate not opened yet");
        gate.send(()).expect("confirmation waits");
    }

    #[actix_rt::test]
    async fn several_transactions_wait_for_their_blocks_at_once_and_each_request_hears_of_its_own()
    {
        let chain = Pipelined::new(1, 3, true);
        let (admitted, gates) = (chain.admitted.clone(), chain.gates.clone());
        let addr = start(chain);
        let mut replies: Vec<_> = (0..5)
            .map(|i| Box::pin(addr.send(plain(format!("p{i}").as_bytes()))))
            .collect();
        settle().await;
        assert_eq!(
            admitted.borrow().len(),
            3,
            "three transactions admitted before any is in a block, and no more"
        );
        // The second transaction lands first: its request hears of it while the others still wait.
        open(&gates, 1);
        settle().await;
        let second = futures::poll!(&mut replies[1]);
        let std::task::Poll::Ready(second) = second else {
            panic!("the request of the confirmed transaction has no answer");
        };
        assert_eq!(second.expect("mailbox").expect("tx").tx_hash, "tx2");
        for i in [0, 2, 3, 4] {
            assert!(
                futures::poll!(&mut replies[i]).is_pending(),
                "request {i} answered before its transaction landed"
            );
        }
        // A slot came free: the fourth request went out.
        assert_eq!(admitted.borrow().len(), 4);
        for tx in [0, 2, 3] {
            open(&gates, tx);
        }
        settle().await;
        assert_eq!(admitted.borrow().len(), 5);
        open(&gates, 4);
        for (i, reply) in replies.into_iter().enumerate() {
            if i == 1 {
                continue;
            }
            let report = reply.await.expect("mailbox").expect("tx");
            assert_eq!(report.tx_hash, format!("tx{}", i + 1), "request {i}");
        }
        let sent: Vec<Vec<Vec<u8>>> = admitted.borrow().clone();
        let expected: Vec<Vec<Vec<u8>>> =
            (0..5).map(|i| vec![format!("p{i}").into_bytes()]).collect();
        assert_eq!(sent, expected, "each request once, in the order they came");
    }

    /// Sends eight requests, the third of which carries `bad`, into a chain that confirms at once, and checks
    /// that only the bad one fails and every good datagram lands once.
    async fn refusal_is_isolated(bad: &[u8]) {
        let chain = Pipelined::new(100, 4, false);
        let admitted = chain.admitted.clone();
        let addr = start(chain);
        let values: Vec<Vec<u8>> = (0..8)
            .map(|i| {
                if i == 2 {
                    bad.to_vec()
                } else {
                    format!("p{i}").into_bytes()
                }
            })
            .collect();
        let replies: Vec<_> = values.iter().map(|v| addr.send(plain(v))).collect();
        let mut results = Vec::new();
        for r in replies {
            results.push(r.await.expect("mailbox"));
        }
        for (i, r) in results.iter().enumerate() {
            if i == 2 {
                let e = r.as_ref().expect_err("the bad datagram is refused");
                assert_eq!(e.kind, ErrorKind::Rejected);
            } else {
                assert!(r.is_ok(), "request {i} lost with its batch: {r:?}");
            }
        }
        // What landed: transactions without the bad datagram (one holding it may be admitted, and fail).
        let landed: Vec<Vec<u8>> = admitted
            .borrow()
            .iter()
            .filter(|tx| !tx.iter().any(|v| v.as_slice() == bad))
            .flatten()
            .cloned()
            .collect();
        let mut good: Vec<Vec<u8>> = values.into_iter().filter(|v| v.as_slice() != bad).collect();
        let mut landed_sorted = landed.clone();
        landed_sorted.sort();
        good.sort();
        assert_eq!(landed_sorted, good, "each good datagram landed once");
    }

    #[actix_rt::test]
    async fn a_batch_refused_on_admission_is_halved_until_the_bad_datagram_fails_alone() {
        refusal_is_isolated(b"bad-admit").await;
    }

    #[actix_rt::test]
    async fn a_batch_failing_in_its_block_is_halved_until_the_bad_datagram_fails_alone() {
        refusal_is_isolated(b"bad-block").await;
    }

    #[actix_rt::test]
    async fn finishing_waits_for_every_transaction_in_flight_and_admits_nothing_new() {
        let chain = Pipelined::new(1, 3, true);
        let (admitted, gates) = (chain.admitted.clone(), chain.gates.clone());
        let addr = start(chain);
        let replies: Vec<_> = (0..4)
            .map(|i| addr.send(plain(format!("p{i}").as_bytes())))
            .collect();
        settle().await;
        assert_eq!(admitted.borrow().len(), 3);
        let mut finished = Box::pin(addr.send(super::FinishInFlight));
        settle().await;
        open(&gates, 2);
        open(&gates, 0);
        settle().await;
        assert!(
            futures::poll!(&mut finished).is_pending(),
            "finished while a transaction is still in flight"
        );
        assert_eq!(admitted.borrow().len(), 3, "nothing new admitted");
        open(&gates, 1);
        finished.await.expect("mailbox");
        let mut replies = replies.into_iter();
        for i in 0..3 {
            let reply = replies.next().expect("reply");
            reply.await.expect("mailbox").expect("landed");
            assert_eq!(admitted.borrow()[i], vec![format!("p{i}").into_bytes()]);
        }
        assert_eq!(
            admitted.borrow().len(),
            3,
            "the queued request stayed queued"
        );
    }

    #[actix_rt::test]
    async fn an_update_in_flight_travels_again_until_it_is_committed() {
        let chain = Pipelined::new(2, 4, true);
        let (admitted, gates) = (chain.admitted.clone(), chain.gates.clone());
        let addr = start(chain);
        let first = addr.send(request(b"a"));
        settle().await;
        let second = addr.send(request(b"b"));
        settle().await;
        {
            let sent = admitted.borrow();
            assert_eq!(sent.len(), 2, "both admitted while the first waits");
            assert_eq!(sent[0], vec![b"update".to_vec(), b"a".to_vec()]);
            assert_eq!(
                sent[1],
                vec![b"update".to_vec(), b"b".to_vec()],
                "an update only in flight is not skipped"
            );
        }
        open(&gates, 0);
        first.await.expect("mailbox").expect("first");
        let third = addr.send(request(b"c"));
        settle().await;
        assert_eq!(
            admitted.borrow()[2],
            vec![b"c".to_vec()],
            "a committed update is skipped"
        );
        open(&gates, 1);
        open(&gates, 2);
        second.await.expect("mailbox").expect("second");
        third.await.expect("mailbox").expect("third");
    }
}
