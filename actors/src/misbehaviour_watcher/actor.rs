//! The MisbehaviourWatcher's actix shell: fetches headers (and, for events without one, the transaction that
//! carried the update), asks `state` for a verdict, submits evidence.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, MessageResult};
use relayd_messages::{
    ChainId, ClientId, ClientUpdateObserved, CorrelationId, Datagram, ErrorKind, HeaderAt, Height,
    IbcEvent, MisbehaviourReport, MisbehaviourStatus, QueryMisbehaviour, QueryProof,
    QueryTxMessages, QueryVerifiedHeader, RelayError, SubmitTx, TxReport,
};
use tracing::{debug, error, info, warn};

use crate::chain::client_state::consensus_view;
use crate::chain::endpoint::path;
use crate::chain_link::ChainLink;
use crate::client_keeper::TrackedClient;
use crate::meter::Meter;
use crate::metrics::Metrics;
use crate::misbehaviour_watcher::from_tx::header_in_tx;
use crate::misbehaviour_watcher::state::{
    judge, submit_misbehaviour_msg, Evidence, MisbehaviourError, Ours, SeenHeader, Verdict,
};
use crate::store::{now_ms, StateStore};
use crate::supervisor::guard::{injected_panic, ExitGuard};

/// How long a header waits before it is judged again (the tracked chain had not reached its height, or a node
/// or actor was unavailable).
const RECHECK_AFTER: Duration = Duration::from_secs(2);
/// Judgements of one header before it is given up (with a warning): ten minutes at [`RECHECK_AFTER`].
const MAX_ATTEMPTS: u32 = 300;
/// Reads of the transaction behind a header-less event before it is given up: a node indexes a block's
/// transactions only after committing it, and may be briefly unavailable; a node that keeps no index never
/// answers, and one minute at [`RECHECK_AFTER`] is enough to tell.
const MAX_FETCH_ATTEMPTS: u32 = 30;
/// Submitted evidence kept for [`QueryMisbehaviour`].
const KEPT_REPORTS: usize = 256;

/// One header to judge.
#[derive(Debug, Clone)]
struct Job {
    client: TrackedClient,
    seen: SeenHeader,
    update_tx: Option<String>,
    attempt: u32,
}

/// One header-less event whose transaction is to be read.
#[derive(Debug, Clone)]
struct Fetch {
    client: TrackedClient,
    tx_hash: String,
    heights: Vec<Height>,
    attempt: u32,
}

/// How one judgement ended.
enum Outcome {
    Consistent,
    Pending {
        latest: u64,
    },
    Found(Box<Evidence>, &'static str),
    /// Why, and whether judging again can help.
    Failed(String, bool),
}

/// The MisbehaviourWatcher actor.
pub struct MisbehaviourWatcher {
    clients: HashMap<(ChainId, ClientId), TrackedClient>,
    links: HashMap<ChainId, ChainLink>,
    metrics: Option<Metrics>,
    status: MisbehaviourStatus,
    /// Clients evidence was submitted against (or is being submitted): one freeze is enough.
    reported: HashSet<TrackedClient>,
    /// Headers judged or being judged, by (host, client, height, header hash): each event is judged once.
    seen: HashSet<(TrackedClient, u64, String)>,
    meter: Meter,
    /// Reports this incarnation's exit to the service supervisor.
    guard: Option<ExitGuard>,
    /// Where the reports are kept across restarts.
    store: Option<StateStore>,
}

impl MisbehaviourWatcher {
    /// A watcher of `clients`, reaching their hosts and tracked chains through `links`.
    pub fn new(
        clients: Vec<TrackedClient>,
        links: HashMap<ChainId, ChainLink>,
        metrics: Option<Metrics>,
    ) -> Self {
        Self {
            clients: clients
                .into_iter()
                .map(|c| ((c.host.clone(), c.client_id.clone()), c))
                .collect(),
            links,
            metrics,
            status: MisbehaviourStatus::default(),
            reported: HashSet::new(),
            seen: HashSet::new(),
            meter: Meter::new(),
            guard: None,
            store: None,
        }
    }

    /// Keeps the reports in `store`: the ones found before a restart are shown again, and a client whose
    /// evidence was submitted is not reported twice.
    pub fn with_store(mut self, store: StateStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Loads the reports kept by earlier incarnations.
    fn load_reports(&mut self) {
        let Some(store) = &self.store else { return };
        match store.evidence::<MisbehaviourReport>() {
            Ok(reports) => {
                for r in &reports {
                    let submitted = self.clients.values().find(|c| {
                        r.submitted_tx.is_some()
                            && c.host.as_str() == r.host
                            && c.client_id.as_str() == r.client_id
                    });
                    if let Some(c) = submitted {
                        self.reported.insert(c.clone());
                    }
                }
                self.status.reports = reports;
            }
            Err(e) => warn!(error = %e, "cannot read the misbehaviour evidence kept"),
        }
    }

    /// Reports the actor's exit, a panic included, through `guard` (the service supervisor's).
    pub fn with_guard(mut self, guard: ExitGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Counts the watcher's mailbox on `meter` (shared with the coordinator, which sends it the updates).
    pub fn with_meter(mut self, meter: Meter) -> Self {
        self.meter = meter;
        self
    }

    fn run(&mut self, job: Job, ctx: &mut Context<Self>) {
        let (Some(host), Some(tracked)) = (
            self.links.get(&job.client.host).cloned(),
            self.links.get(&job.client.tracked).cloned(),
        ) else {
            return;
        };
        let fut = judge_header(host, tracked, job.clone());
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(fut)
                .map(move |outcome, act, ctx| act.judged(job, outcome, ctx)),
        );
    }

    fn judged(&mut self, job: Job, outcome: Outcome, ctx: &mut Context<Self>) {
        let client = &job.client;
        let height = job.seen.height();
        match outcome {
            Outcome::Consistent => self.status.consistent += 1,
            Outcome::Pending { latest } => {
                debug!(host = %client.host, client = %client.client_id, height, latest, "header above the tracked chain's height: judged again later");
                self.again(job, ctx);
            }
            Outcome::Failed(e, true) => {
                debug!(host = %client.host, client = %client.client_id, height, error = %e, "header not judged yet");
                self.again(job, ctx);
            }
            Outcome::Failed(e, false) => {
                warn!(host = %client.host, client = %client.client_id, height, error = %e, "header not judged");
                self.status.unjudged += 1;
            }
            Outcome::Found(evidence, kind) => {
                // One freeze is enough: a second conflict found meanwhile adds nothing.
                if !self.reported.insert(client.clone()) {
                    return;
                }
                error!(
                    host = %client.host, client = %client.client_id, tracked = %client.tracked, height, kind,
                    update_tx = job.update_tx.as_deref().unwrap_or("-"), reason = %evidence.reason,
                    "misbehaviour: the tracked chain's validators signed a conflicting header; submitting the evidence"
                );
                let Some(host) = self.links.get(&client.host).cloned() else {
                    return;
                };
                let fut = submit(host, *evidence.clone());
                let job = job.clone();
                ctx.spawn(actix::fut::wrap_future::<_, Self>(fut).map(
                    move |submitted, act, ctx| act.submitted(job, &evidence, kind, submitted, ctx),
                ));
            }
        }
    }

    fn submitted(
        &mut self,
        job: Job,
        evidence: &Evidence,
        kind: &str,
        submitted: Result<TxReport, RelayError>,
        ctx: &mut Context<Self>,
    ) {
        let client = &job.client;
        if let Err(e) = &submitted {
            if e.is_retryable() && job.attempt + 1 < MAX_ATTEMPTS {
                // The host's node or submitter was unavailable: judge and submit again shortly.
                warn!(host = %client.host, client = %client.client_id, error = %e, "misbehaviour evidence not submitted yet");
                self.reported.remove(client);
                self.again(job, ctx);
                return;
            }
        }
        let (submitted_tx, error) = match submitted {
            Ok(report) => {
                info!(host = %client.host, client = %client.client_id, tx = %report.tx_hash, "misbehaviour evidence submitted");
                if let Some(m) = &self.metrics {
                    m.families()
                        .misbehaviour_submitted_total
                        .with_label_values(&[client.host.as_str(), client.client_id.as_str()])
                        .inc();
                }
                (Some(report.tx_hash), None)
            }
            Err(e) => {
                error!(host = %client.host, client = %client.client_id, error = %e, "misbehaviour evidence could not be submitted");
                // Refused: the next conflicting update may bring it again.
                self.reported.remove(client);
                (None, Some(e.to_string()))
            }
        };
        let report = MisbehaviourReport {
            host: client.host.to_string(),
            client_id: client.client_id.to_string(),
            tracked: client.tracked.to_string(),
            update_tx: job.update_tx.clone(),
            evidence: evidence.summary(kind),
            submitted_tx,
            error,
            detected_ms: now_ms(),
        };
        if let Some(store) = &self.store {
            if let Err(e) = store.put_evidence(&report, KEPT_REPORTS) {
                error!(host = %client.host, client = %client.client_id, error = %e, "misbehaviour evidence not kept in the state database");
            }
        }
        self.status.reports.push(report);
        if self.status.reports.len() > KEPT_REPORTS {
            self.status.reports.remove(0);
        }
    }

    /// Reads the transaction behind a header-less event from the client's host.
    fn fetch(&mut self, fetch: Fetch, ctx: &mut Context<Self>) {
        let Some(host) = self.links.get(&fetch.client.host).cloned() else {
            return;
        };
        let query = QueryTxMessages {
            correlation: CorrelationId::fresh(),
            tx_hash: fetch.tx_hash.clone(),
        };
        let fut = async move { host.query_tx_messages(query).await };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(fut)
                .map(move |read, act, ctx| act.fetched(fetch, read, ctx)),
        );
    }

    fn fetched(
        &mut self,
        mut fetch: Fetch,
        read: Result<Vec<Datagram>, RelayError>,
        ctx: &mut Context<Self>,
    ) {
        let client = &fetch.client;
        if self.reported.contains(client) {
            return;
        }
        match read {
            Ok(messages) => {
                match header_in_tx(&messages, client.client_id.as_str(), &fetch.heights) {
                    Ok(header) => {
                        let client = fetch.client.clone();
                        self.consider(client, &header, Some(fetch.tx_hash), ctx);
                    }
                    Err(e) => {
                        self.status.unjudged += 1;
                        warn!(host = %client.host, client = %client.client_id, tx = %fetch.tx_hash, error = %e, "update_client header not found in its transaction");
                    }
                }
            }
            Err(e) if e.is_retryable() && fetch.attempt + 1 < MAX_FETCH_ATTEMPTS => {
                debug!(host = %client.host, client = %client.client_id, tx = %fetch.tx_hash, error = %e, "transaction of an update not read yet");
                fetch.attempt += 1;
                self.status.pending += 1;
                ctx.run_later(RECHECK_AFTER, move |act, ctx| {
                    act.status.pending = act.status.pending.saturating_sub(1);
                    act.fetch(fetch, ctx);
                });
            }
            Err(e) => {
                self.status.unjudged += 1;
                warn!(host = %client.host, client = %client.client_id, tx = %fetch.tx_hash, error = %e, "transaction of an update could not be read: its header is not judged");
            }
        }
    }

    /// Judges `header` (protobuf `Any` bytes) installed in `client`, unless that header was judged already.
    fn consider(
        &mut self,
        client: TrackedClient,
        header: &[u8],
        update_tx: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let seen = match SeenHeader::decode(header) {
            Ok(s) => s,
            Err(e @ MisbehaviourError::NotTendermint(_)) => {
                self.status.unjudged += 1;
                debug!(host = %client.host, client = %client.client_id, error = %e, "not judged");
                return;
            }
            Err(e) => {
                self.status.unjudged += 1;
                warn!(host = %client.host, client = %client.client_id, error = %e, "update_client header not judged");
                return;
            }
        };
        if self.reported.contains(&client) {
            return;
        }
        let key = (
            client.clone(),
            seen.height(),
            seen.signed_header.header.hash().to_string(),
        );
        if !self.seen.insert(key) {
            return;
        }
        // The set only guards against the same event seen twice (a monitor replaying a block); old entries
        // are of no use.
        if self.seen.len() > 65_536 {
            self.seen.clear();
        }
        self.run(
            Job {
                client,
                seen,
                update_tx,
                attempt: 0,
            },
            ctx,
        );
    }

    fn again(&mut self, mut job: Job, ctx: &mut Context<Self>) {
        job.attempt += 1;
        if job.attempt >= MAX_ATTEMPTS {
            warn!(host = %job.client.host, client = %job.client.client_id, height = job.seen.height(), "header given up: it could not be judged");
            self.status.unjudged += 1;
            return;
        }
        self.status.pending += 1;
        ctx.run_later(RECHECK_AFTER, move |act, ctx| {
            act.status.pending = act.status.pending.saturating_sub(1);
            if !act.reported.contains(&job.client) {
                act.run(job, ctx);
            }
        });
    }
}

/// Judges one header against relayd's verified header of the tracked chain.
async fn judge_header(host: ChainLink, tracked: ChainLink, job: Job) -> Outcome {
    let correlation = CorrelationId::fresh();
    let client = &job.client;
    let ours = match ours_at(&host, &tracked, client, &job.seen, correlation).await {
        Ok(o) => o,
        Err(e) => return Outcome::Failed(e.to_string(), e.is_retryable()),
    };
    let verdict = Ours::decode(&ours).and_then(|ours| {
        judge(
            client.client_id.as_str(),
            client.tracked.as_str(),
            &job.seen,
            &ours,
        )
    });
    match verdict {
        Ok(Verdict::Consistent) => Outcome::Consistent,
        Ok(Verdict::Pending { latest }) => Outcome::Pending { latest },
        Ok(Verdict::Conflict(e)) => Outcome::Found(Box::new(e), "conflict"),
        Ok(Verdict::BftTimeViolation(e)) => Outcome::Found(Box::new(e), "bft_time_violation"),
        Err(e) => Outcome::Failed(e.to_string(), false),
    }
}

/// Submits `evidence` to the client's host, ahead of everything queued there.
async fn submit(host: ChainLink, evidence: Evidence) -> Result<TxReport, RelayError> {
    let msg = submit_misbehaviour_msg(&evidence, &host.signer);
    host.submit(SubmitTx {
        correlation: CorrelationId::fresh(),
        update: None,
        datagrams: vec![Datagram {
            type_url: msg.type_url,
            value: msg.value,
        }],
        priority: u8::MAX,
        ordered_channel: None,
    })
    .await
}

/// relayd's header of the tracked chain at the seen header's height. When relayd holds no trusted state for
/// that chain at or below the height yet, trust is anchored on the client's consensus state at the seen header's
/// trusted height: the state the host accepted the header from.
async fn ours_at(
    host: &ChainLink,
    tracked: &ChainLink,
    client: &TrackedClient,
    seen: &SeenHeader,
    correlation: CorrelationId,
) -> Result<HeaderAt, RelayError> {
    let height = seen.height();
    let ask = |anchor| QueryVerifiedHeader {
        correlation,
        height,
        anchor,
    };
    match tracked.verified_header(ask(None)).await {
        Err(e) if e.kind == ErrorKind::ClientUnusable => {
            let trusted = seen.trusted_height;
            let revision = client.tracked.revision_number();
            let stored = host
                .query_proof(QueryProof {
                    correlation,
                    path: path::consensus_state(client.client_id.as_str(), revision, trusted),
                    height: None,
                })
                .await?;
            let view = consensus_view(&stored.value).map_err(|e| {
                RelayError::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{}: {} consensus state at {trusted}: {e}",
                        client.host, client.client_id
                    ),
                )
            })?;
            tracked
                .verified_header(ask(Some((trusted, view.anchor))))
                .await
        }
        other => other,
    }
}

impl Actor for MisbehaviourWatcher {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(guard) = &mut self.guard {
            guard.stopped_cleanly();
        }
    }

    fn started(&mut self, ctx: &mut Self::Context) {
        // Blocks bring update events in bursts; none may be dropped.
        ctx.set_mailbox_capacity(4096);
        self.load_reports();
    }
}

impl Handler<ClientUpdateObserved> for MisbehaviourWatcher {
    type Result = ();

    fn handle(&mut self, msg: ClientUpdateObserved, ctx: &mut Self::Context) {
        self.meter.took();
        let IbcEvent::UpdateClient {
            client_id,
            client_type,
            header,
            consensus_heights,
        } = &msg.event.event
        else {
            return;
        };
        // The judgement compares Tendermint headers; a client of another kind (a 12-near client of NEAR) is not
        // judged here rather than warned about on every update. An event without the attribute is judged as before.
        if !client_type.is_empty() && client_type != "07-tendermint" {
            self.status.unjudged += 1;
            debug!(host = %msg.host, client = %client_id, client_type, "update of a client that is not a Tendermint client: not judged");
            return;
        }
        let Some(client) = self
            .clients
            .get(&(msg.host.clone(), client_id.clone()))
            .cloned()
        else {
            return;
        };
        if self.reported.contains(&client) {
            return;
        }
        let update_tx = msg.event.tx_hash.clone();
        match (header, update_tx) {
            (Some(header), update_tx) => self.consider(client, header, update_tx, ctx),
            // ibc-go v9+ leaves the header out of the event: it is in the transaction's MsgUpdateClient.
            (None, Some(tx_hash)) => self.fetch(
                Fetch {
                    client,
                    tx_hash,
                    heights: consensus_heights.clone(),
                    attempt: 0,
                },
                ctx,
            ),
            (None, None) => {
                self.status.unjudged += 1;
                debug!(host = %msg.host, client = %client_id, "update_client event with neither a header nor a transaction: not judged");
            }
        }
    }
}

impl Handler<QueryMisbehaviour> for MisbehaviourWatcher {
    type Result = MessageResult<QueryMisbehaviour>;

    fn handle(&mut self, _: QueryMisbehaviour, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        MessageResult(self.status.clone())
    }
}

impl Handler<relayd_messages::InjectPanic> for MisbehaviourWatcher {
    type Result = ();

    fn handle(&mut self, _: relayd_messages::InjectPanic, _: &mut Self::Context) {
        self.meter.handled();
        injected_panic(relayd_messages::ActorKind::MisbehaviourWatcher);
    }
}
