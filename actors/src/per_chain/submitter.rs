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
    /// Shutting down: no new transaction starts; requests stay queued until the actor stops.
    closing: bool,
    /// Told when the transaction in flight has its outcome, once closing.
    idle: Vec<oneshot::Sender<()>>,
}

/// Sends no new transaction from now on; answers once the one in flight, if any, has its outcome (shutdown).
#[derive(Debug, Clone, Copy, actix::Message)]
#[rtype(result = "()")]
pub struct FinishInFlight;

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

/// Takes requests off the queue for one transaction, up to `max_msgs` datagrams: higher priority first, and
/// first come, first served within a priority (the sort is stable).
fn take_batch(queue: &mut Queue, max_msgs: usize) -> Vec<Pending> {
    queue
        .pending
        .make_contiguous()
        .sort_by_key(|p| std::cmp::Reverse(p.request.priority));
    let mut taken = Vec::new();
    let mut count = 0;
    while let Some(p) = queue.pending.front() {
        let n = p.request.datagrams.len();
        if count > 0 && count + n > max_msgs {
            break;
        }
        let Some(p) = queue.pending.pop_front() else {
            break;
        };
        count += n;
        taken.push(p);
    }
    taken
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

/// The messages of one transaction for `group`: its update messages (each (client, height) once, skipping ones
/// already committed) followed by its datagrams.
fn messages_of(queue: &Queue, group: &[Pending]) -> (Vec<Datagram>, Vec<(String, u64)>) {
    let mut msgs = Vec::new();
    let mut datagrams = Vec::new();
    let mut updates: Vec<(String, u64)> = Vec::new();
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

async fn drain<S: Submitter>(
    chain: ChainId,
    submitter: Rc<tokio::sync::Mutex<S>>,
    queue: Rc<RefCell<Queue>>,
    max_msgs: usize,
) {
    loop {
        let taken = {
            let mut q = queue.borrow_mut();
            if q.pending.is_empty() || q.closing {
                q.busy = false;
                for waiter in q.idle.drain(..) {
                    let _ = waiter.send(());
                }
                return;
            }
            take_batch(&mut q, max_msgs)
        };
        // A chain refuses a whole transaction for one bad message. Halving a refused group until the refusal is
        // down to one request keeps every other request of the batch alive (a few more transactions for one
        // bad datagram, instead of losing the batch).
        let mut groups = vec![taken];
        while let Some(group) = groups.pop() {
            let (msgs, updates) = messages_of(&queue.borrow(), &group);
            if msgs.is_empty() {
                // Update-only requests (client refreshes) whose update went out in an earlier transaction.
                for p in group {
                    let _ = p.reply.send(Err(RelayError::new(
                        ErrorKind::AlreadyRelayed,
                        "nothing left to send: the client update is already on chain",
                    )));
                }
                continue;
            }
            let ids: Vec<String> = group
                .iter()
                .map(|p| p.request.correlation.to_string())
                .collect();
            let span =
                tracing::debug_span!("tx_submitter", chain = %chain, correlations = %ids.join(","));
            let result = async {
                debug!(messages = msgs.len(), requests = group.len(), "submitting");
                submitter.lock().await.submit(msgs).await
            }
            .instrument(span)
            .await;
            match result {
                Ok(reports) => {
                    remember(&mut queue.borrow_mut(), updates);
                    let last = reports.last().cloned();
                    for p in group {
                        let reply = last.clone().ok_or_else(|| {
                            RelayError::new(ErrorKind::Unavailable, "no transaction was sent")
                        });
                        let _ = p.reply.send(reply);
                    }
                }
                Err((_, e)) if e.kind == ErrorKind::Rejected && group.len() > 1 => {
                    debug!(requests = group.len(), error = %e, "transaction refused; splitting the batch");
                    let mut first = group;
                    let second = first.split_off(first.len() / 2);
                    // Popped last-in first-out: the first half goes first, keeping the batch's order.
                    groups.push(second);
                    groups.push(first);
                }
                Err((_, e)) => {
                    for p in group {
                        let _ = p.reply.send(Err(e.clone()));
                    }
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
            !q.closing && !std::mem::replace(&mut q.busy, true)
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
    use crate::chain::backend::Submitter;
    use crate::supervision::guard::ExitGuard;

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
}
