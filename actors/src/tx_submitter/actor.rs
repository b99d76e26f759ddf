//! The TxSubmitter's actix shell: one lane per signing account, each with its queue and its drain that admits
//! transactions on the account's sequence and waits for their blocks; answers each request. Reads each lane's
//! balance every [`FUNDS_EVERY`] and publishes the lanes on its [`LaneBoard`]. Which lane takes a request is
//! decided in [`super::funds`], what goes into each transaction in [`super::state`].

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, ResponseFuture, WrapFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use relayd_messages::{
    ActorKind, ChainId, ErrorKind, FinishInFlight, InjectPanic, RelayError, SubmitTx, TxReport,
};
use tokio::sync::{oneshot, Notify};
use tracing::{debug, error, info, warn, Instrument};

use super::backend::{Confirmation, Submitter, TxOutcomes, Wallet};
use super::board::{LaneBoard, LaneView};
use super::funds::Router;
use super::state::{self, Limits, UpdateKey};
use crate::supervisor::guard::{injected_panic, ExitGuard};

type Reply = oneshot::Sender<Result<TxReport, RelayError>>;
type Pending = state::Pending<Reply>;

/// The queue, and who waits for the drain to end once closing.
#[derive(Default)]
struct Shared {
    queue: state::Queue<Reply>,
    /// Told when no transaction is being admitted or waits for its block any more, once closing.
    idle: Vec<oneshot::Sender<()>>,
}

/// One signing account's lane: its own queue, sequence and drain.
struct Lane<S> {
    submitter: Rc<tokio::sync::Mutex<S>>,
    shared: Rc<RefCell<Shared>>,
    /// Wakes the drain when requests arrive or shutdown begins.
    wake: Rc<Notify>,
    limits: Limits,
    address: String,
    /// The key as shown on the board: the wallet's key name, or the backend's key id.
    key: String,
    wallet: Option<Wallet>,
    /// The last balance read, or why the last reading failed.
    balance: Option<Result<u128, String>>,
}

impl<S: Submitter> Lane<S> {
    fn new(submitter: S) -> Self {
        let limits = Limits::new(submitter.max_msgs(), submitter.max_in_flight());
        Self {
            address: submitter.signer().to_owned(),
            key: submitter
                .wallet()
                .map(|w| w.key)
                .or_else(|| submitter.key_id())
                .unwrap_or_default(),
            wallet: submitter.wallet(),
            submitter: Rc::new(tokio::sync::Mutex::new(submitter)),
            shared: Rc::new(RefCell::new(Shared::default())),
            wake: Rc::new(Notify::new()),
            limits,
            balance: None,
        }
    }
}

/// How often each lane's balance is read.
pub const FUNDS_EVERY: Duration = Duration::from_secs(5);
/// How often the lanes' work is published on the board between readings.
const BOARD_EVERY: Duration = Duration::from_secs(1);

/// The TxSubmitter actor.
pub struct TxSubmitter<S: Submitter + 'static> {
    chain: ChainId,
    /// At least one; the first is the chain's primary signer.
    lanes: Vec<Lane<S>>,
    router: Router,
    board: LaneBoard,
    guard: ExitGuard,
}

impl<S: Submitter + 'static> TxSubmitter<S> {
    /// A submitter actor over `submitter`, a lane of one account.
    pub fn new(chain: ChainId, submitter: S, guard: ExitGuard) -> Self {
        Self {
            chain,
            lanes: vec![Lane::new(submitter)],
            router: Router::new(1),
            board: LaneBoard::default(),
            guard,
        }
    }

    /// Adds a lane of another account: requests then go out on several sequences in parallel.
    pub fn with_lane(mut self, submitter: S) -> Self {
        self.lanes.push(Lane::new(submitter));
        self.router = Router::new(self.lanes.len());
        self
    }

    /// Publishes the lanes on `board` (the chain's, which the admin API and metrics read).
    pub fn with_board(mut self, board: LaneBoard) -> Self {
        self.board = board;
        self
    }

    fn publish(&self) {
        let views = self
            .lanes
            .iter()
            .enumerate()
            .map(|(i, lane)| {
                let q = &lane.shared.borrow().queue;
                let wallet = lane.wallet.as_ref();
                LaneView {
                    key: lane.key.clone(),
                    address: lane.address.clone(),
                    denom: wallet.map(|w| w.denom.clone()).unwrap_or_default(),
                    balance: match &lane.balance {
                        Some(Ok(b)) => Some(b.to_string()),
                        _ => None,
                    },
                    balance_error: match &lane.balance {
                        Some(Err(e)) => Some(e.clone()),
                        _ => None,
                    },
                    min_balance: wallet.and_then(|w| w.minimum).map(|m| m.to_string()),
                    low: self.router.is_low(i),
                    drained: self.router.is_drained(i),
                    queued: q.load().saturating_sub(q.in_flight()),
                    in_flight: q.in_flight(),
                }
            })
            .collect();
        self.board.publish(views);
    }

    /// Reads every lane's balance; each reading is taken in as it arrives.
    fn read_funds(&self, ctx: &mut Context<Self>) {
        for (i, lane) in self.lanes.iter().enumerate() {
            let Some(wallet) = &lane.wallet else {
                continue;
            };
            let read = (wallet.read)();
            ctx.spawn(
                read.into_actor(self)
                    .map(move |result, act: &mut Self, _| act.funds_read(i, result)),
            );
        }
    }

    /// A lane's balance was read: drains or reopens the lane and raises or clears the alarm, once per change.
    fn funds_read(&mut self, lane: usize, result: Result<u128, RelayError>) {
        let Some(l) = self.lanes.get_mut(lane) else {
            return;
        };
        let Some(wallet) = l.wallet.clone() else {
            return;
        };
        let balance = match result {
            Ok(b) => b,
            Err(e) => {
                debug!(chain = %self.chain, key = %wallet.key, error = %e, "could not read the signer's balance");
                l.balance = Some(Err(e.to_string()));
                return;
            }
        };
        l.balance = Some(Ok(balance));
        let change = self.router.observed(lane, balance, wallet.minimum);
        let minimum = wallet.minimum.unwrap_or(0);
        match change.lane_low {
            Some(true) => error!(
                chain = %self.chain,
                key = %wallet.key,
                balance = %format!("{balance}{}", wallet.denom),
                min_balance = %format!("{minimum}{}", wallet.denom),
                "signer's balance is below min_balance: its lane takes no new transactions while another signer has funds; top the account up"
            ),
            Some(false) => info!(
                chain = %self.chain,
                key = %wallet.key,
                balance = %format!("{balance}{}", wallet.denom),
                "signer's balance is back above min_balance: its lane takes transactions again"
            ),
            None => {}
        }
        match change.all_low {
            Some(true) => error!(
                chain = %self.chain,
                min_balance = %format!("{minimum}{}", wallet.denom),
                "every signer of the chain is below min_balance: relaying goes on with them until they run dry; top the accounts up"
            ),
            Some(false) => warn!(
                chain = %self.chain,
                "a signer of the chain is back above min_balance: low signers are drained again"
            ),
            None => {}
        }
        self.publish();
    }
}

fn answer(group: Vec<Pending>, reply: impl Fn() -> Result<TxReport, RelayError>) {
    for p in group {
        let _ = p.reply.send(reply());
    }
}

/// Tells the callers of requests that will not be sent, because relayd is stopping, so that they settle now.
fn answer_unsent(chain: &ChainId, queue: &mut state::Queue<Reply>) {
    answer(queue.unsent(), || {
        Err(RelayError::new(
            ErrorKind::Stopped,
            format!("{chain}: relayd is stopping; not sent"),
        ))
    });
}

/// Answers a failed transaction's requests, unless the chain refused it and it was halved to go out again.
fn failed(
    shared: &RefCell<Shared>,
    chain: &ChainId,
    group: Vec<Pending>,
    e: RelayError,
    what: &str,
) {
    let refused = shared.borrow_mut().queue.refused(e.kind, group);
    match refused {
        Some(group) => answer(group, || Err(e.clone())),
        None => debug!(chain = %chain, error = %e, "{what}; splitting the batch"),
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
    shared: Rc<RefCell<Shared>>,
    wake: Rc<Notify>,
    limits: Limits,
) {
    let mut admitting: Option<Admitting> = None;
    let mut confirming: FuturesUnordered<Confirming> = FuturesUnordered::new();
    loop {
        if admitting.is_none() {
            let group = shared
                .borrow_mut()
                .queue
                .next_to_admit(confirming.len(), limits);
            if let Some(group) = group {
                let (msgs, updates) = shared.borrow().queue.messages_of(&group);
                if msgs.is_empty() {
                    // Update-only requests (client refreshes) whose update an earlier transaction committed.
                    shared.borrow_mut().queue.settled(group.len());
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
                        let mut submitter = submitter.lock().await;
                        // The datagrams were built with the chain's primary signer; this lane's account signs.
                        let result = match submitter.own(msgs) {
                            Ok(msgs) => submitter.admit(msgs).await,
                            Err(e) => Err(e),
                        };
                        (group, updates, result)
                    }
                    .instrument(span),
                ));
            }
        }
        if admitting.is_none() && confirming.is_empty() {
            let mut s = shared.borrow_mut();
            if s.queue.finish_if_idle() {
                // Halves of a batch refused while closing were queued again and will not go out.
                answer_unsent(&chain, &mut s.queue);
                for waiter in s.idle.drain(..) {
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
            Step::Admitted(group, updates, result) => {
                admitting = None;
                match result {
                    Ok(confirmation) => confirming.push(Box::pin(async move {
                        let outcome = confirmation.await;
                        (group, updates, outcome)
                    })),
                    Err(e) => failed(
                        &shared,
                        &chain,
                        group,
                        e,
                        "transaction refused on admission",
                    ),
                }
            }
            Step::Confirmed(group, updates, outcome) => match outcome {
                Ok(reports) => {
                    {
                        let mut s = shared.borrow_mut();
                        s.queue.remember(updates);
                        s.queue.settled(group.len());
                    }
                    let last = reports.last().cloned();
                    answer(group, || {
                        last.clone().ok_or_else(|| {
                            RelayError::new(ErrorKind::Unavailable, "no transaction was sent")
                        })
                    });
                }
                Err((_, e)) => failed(&shared, &chain, group, e, "transaction failed in its block"),
            },
        }
    }
}

impl<S: Submitter + 'static> Actor for TxSubmitter<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        self.publish();
        self.read_funds(ctx);
        ctx.run_interval(FUNDS_EVERY, |act, ctx| act.read_funds(ctx));
        ctx.run_interval(BOARD_EVERY, |act, _| act.publish());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.guard.stopped_cleanly();
    }
}

impl<S: Submitter + 'static> Handler<SubmitTx> for TxSubmitter<S> {
    type Result = ResponseFuture<Result<TxReport, RelayError>>;

    fn handle(&mut self, msg: SubmitTx, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let loads: Vec<usize> = self
            .lanes
            .iter()
            .map(|l| l.shared.borrow().queue.load())
            .collect();
        let index = self.router.choose(msg.ordered_channel.as_deref(), &loads);
        let lane = &self.lanes[index.min(self.lanes.len() - 1)];
        let start = {
            let queue = &mut lane.shared.borrow_mut().queue;
            let start = queue.enqueue(Pending {
                request: msg,
                reply: tx,
            });
            // Stopping: refused at once rather than queued until the actor stops.
            answer_unsent(&self.chain, queue);
            start
        };
        if !start {
            lane.wake.notify_one();
        } else {
            // Owned by the actor's context: if the actor dies, the drain dies with it and waiting callers see
            // their reply channel close.
            ctx.spawn(actix::fut::wrap_future(drain(
                self.chain.clone(),
                lane.submitter.clone(),
                lane.shared.clone(),
                lane.wake.clone(),
                lane.limits,
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
        let mut waits = Vec::new();
        for lane in &self.lanes {
            let mut s = lane.shared.borrow_mut();
            let running = s.queue.close();
            answer_unsent(&self.chain, &mut s.queue);
            if running {
                let (tx, rx) = oneshot::channel();
                s.idle.push(tx);
                lane.wake.notify_one();
                waits.push(rx);
            }
        }
        Box::pin(async move {
            futures::future::join_all(waits).await;
        })
    }
}

impl<S: Submitter + 'static> Handler<InjectPanic> for TxSubmitter<S> {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        injected_panic(ActorKind::TxSubmitter);
    }
}
