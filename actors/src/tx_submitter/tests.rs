//! The TxSubmitter driven through its mailbox against in-process backends: batching, priorities, refused
//! batches halved, pipelined transactions and shutdown.

use std::cell::RefCell;
use std::rc::Rc;

use actix::Actor;
use relayd_messages::{
    ActorKind, ChainId, ClientId, CorrelationId, Datagram, ErrorKind, RelayError, SubmitTx,
    TxReport,
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
        ordered_channel: None,
    }
}

#[actix_rt::test]
async fn one_refused_datagram_fails_alone_and_the_rest_of_its_batch_lands() {
    let sent = Rc::new(RefCell::new(Vec::new()));
    let (open, gate) = oneshot::channel();
    let submitter = Refusing {
        sent: sent.clone(),
        gate: Some(gate),
    };
    let addr = TxSubmitter::new(
        ChainId::new("chain-a").expect("chain id"),
        submitter,
        ExitGuard::unwatched(ActorKind::TxSubmitter),
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
        ExitGuard::unwatched(ActorKind::TxSubmitter),
    )
    .start();
    let plain = |v: &[u8], priority: u8| SubmitTx {
        update: None,
        priority,
        ordered_channel: None,
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
        ExitGuard::unwatched(ActorKind::TxSubmitter),
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
    let finished = addr.send(relayd_messages::FinishInFlight);
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
    addr.send(relayd_messages::FinishInFlight)
        .await
        .expect("mailbox");
    // What was queued, or came after, will not be sent: its callers hear so now, not when the actor stops.
    for (name, reply) in [("queued", queued), ("late", late)] {
        let refused = reply.await.expect("mailbox").expect_err(name);
        assert_eq!(refused.kind, relayd_messages::ErrorKind::Stopped, "{name}");
    }
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
        ExitGuard::unwatched(ActorKind::TxSubmitter),
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
async fn several_transactions_wait_for_their_blocks_at_once_and_each_request_hears_of_its_own() {
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
    let expected: Vec<Vec<Vec<u8>>> = (0..5).map(|i| vec![format!("p{i}").into_bytes()]).collect();
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
    let mut finished = Box::pin(addr.send(relayd_messages::FinishInFlight));
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
        "the queued request was not sent"
    );
    let unsent = replies.next().expect("reply").await.expect("mailbox");
    assert_eq!(
        unsent.expect_err("not sent").kind,
        relayd_messages::ErrorKind::Stopped
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
