//! The ClientKeeper's actix shell: reads clients, asks `state` how healthy they are, updates the due ones.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use actix::{
    Actor, ActorFuture, ActorFutureExt, AsyncContext, Context, Handler, MessageResult,
    ResponseActFuture,
};
use relayd_messages::{
    ChainId, CheckClients, ClientHealthChanged, ClientId, ClientReport, ClientSummary,
    CorrelationId, ErrorKind, PrepareClientUpdate, QueryClient, QueryClientHealth, RelayError,
    SubmitTx,
};
use tracing::{error, info, warn};

use crate::chain_link::ChainLink;
use crate::client_keeper::state::{assess, unreadable, ClientHealth, ClientPolicy, ClientView};
use crate::meter::{Meter, MeteredRecipient};
use crate::metrics::Metrics;
use crate::routes::Routes;
use crate::store::{now_ms, now_ns};
use crate::supervisor::guard::{injected_panic, ExitGuard};

/// One client relayd relays through: hosted on `host`, tracking `tracked`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackedClient {
    /// The chain hosting the client.
    pub host: ChainId,
    /// The client.
    pub client_id: ClientId,
    /// The chain it tracks.
    pub tracked: ChainId,
}

impl TrackedClient {
    /// Both clients of every route (the destination's client of the source, and the source's of the
    /// destination), each once.
    pub fn of_routes(routes: &Routes) -> Vec<Self> {
        let mut set = HashSet::new();
        for r in routes.all() {
            set.insert(Self {
                host: r.dst.clone(),
                client_id: r.dst_client.clone(),
                tracked: r.src.clone(),
            });
            set.insert(Self {
                host: r.src.clone(),
                client_id: r.src_client.clone(),
                tracked: r.dst.clone(),
            });
        }
        let mut all: Vec<_> = set.into_iter().collect();
        all.sort();
        all
    }
}

/// One check's outcome.
struct Checked {
    summary: ClientSummary,
    health: ClientHealth,
    refresh: Option<Result<String, RelayError>>,
}

/// The ClientKeeper actor.
pub struct ClientKeeper {
    clients: Vec<TrackedClient>,
    links: HashMap<ChainId, ChainLink>,
    policy: ClientPolicy,
    every: Duration,
    halts: MeteredRecipient<ClientHealthChanged>,
    metrics: Option<Metrics>,
    reports: BTreeMap<TrackedClient, ClientReport>,
    /// Whether each client was last known usable (absent: not judged yet).
    usable: HashMap<TrackedClient, bool>,
    busy: HashSet<TrackedClient>,
    meter: Meter,
    /// Reports this incarnation's exit to the service supervisor.
    guard: Option<ExitGuard>,
}

impl ClientKeeper {
    /// A keeper of `clients`, reaching chains through `links`, checking every `every` under `policy`, and
    /// reporting usability changes to `halts` (the coordinator).
    pub fn new(
        clients: Vec<TrackedClient>,
        links: HashMap<ChainId, ChainLink>,
        policy: ClientPolicy,
        every: Duration,
        halts: MeteredRecipient<ClientHealthChanged>,
        metrics: Option<Metrics>,
    ) -> Self {
        Self {
            clients,
            links,
            policy,
            every,
            halts,
            metrics,
            reports: BTreeMap::new(),
            usable: HashMap::new(),
            busy: HashSet::new(),
            meter: Meter::new(),
            guard: None,
        }
    }

    /// Reports the actor's exit, a panic included, through `guard` (the service supervisor's).
    pub fn with_guard(mut self, guard: ExitGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Counts the keeper's messages (and periodic checks) on `meter`.
    pub fn with_meter(mut self, meter: Meter) -> Self {
        self.meter = meter;
        self
    }

    /// Checks every client not already being checked; resolves once all are judged and recorded (and any
    /// usability change is sent to the coordinator).
    fn check_all(&mut self) -> impl ActorFuture<Self, Output = ()> {
        let mut jobs = Vec::new();
        for client in self.clients.clone() {
            if self.busy.contains(&client) {
                continue;
            }
            let (Some(host), Some(tracked)) = (
                self.links.get(&client.host).cloned(),
                self.links.get(&client.tracked).cloned(),
            ) else {
                continue;
            };
            self.busy.insert(client.clone());
            let id = client.client_id.clone();
            let job = check(host, tracked, id, self.policy);
            jobs.push(async move { (client, job.await) });
        }
        actix::fut::wrap_future::<_, Self>(futures::future::join_all(jobs)).map(
            |outcomes, act, _| {
                for (client, outcome) in outcomes {
                    act.busy.remove(&client);
                    act.record(client, outcome);
                }
            },
        )
    }

    fn record(&mut self, client: TrackedClient, outcome: Result<Checked, RelayError>) {
        let previous = self.reports.get(&client).cloned();
        let mut report = previous.clone().unwrap_or_else(|| ClientReport {
            host: client.host.to_string(),
            client_id: client.client_id.to_string(),
            tracked: client.tracked.to_string(),
            latest_height: None,
            health: "unknown".into(),
            alarm: false,
            expires_in_secs: None,
            last_refresh_tx: None,
            refreshes: 0,
            last_error: None,
            checked_ms: 0,
        });
        report.checked_ms = now_ms();
        let checked = match outcome {
            Ok(c) => c,
            Err(e) => {
                report.last_error = Some(e.message);
                let Some(health) = unreadable(e.kind) else {
                    // An unreadable client says nothing about its health: the paths keep their state.
                    report.health = "unreadable".into();
                    self.reports.insert(client, report);
                    return;
                };
                // The host chain has no such client: its paths stop, as for an expired one, until it exists
                // again (the next check that reads it resumes them).
                if previous.as_ref().is_none_or(|p| p.health != health.name()) {
                    error!(host = %client.host, client = %client.client_id, "client not found on its host chain: the paths through it stop until it exists again");
                }
                report.health = health.name().into();
                report.alarm = true;
                report.expires_in_secs = None;
                self.usability(&client, health);
                self.reports.insert(client, report);
                return;
            }
        };
        let health = checked.health;
        report.latest_height = Some(checked.summary.latest_height);
        report.health = health.name().into();
        report.alarm = matches!(
            health,
            ClientHealth::Alarm { .. }
                | ClientHealth::Expired { .. }
                | ClientHealth::Frozen
                | ClientHealth::Missing
        );
        report.expires_in_secs = health.expires_in_secs();
        report.last_error = None;
        match checked.refresh {
            Some(Ok(tx)) => {
                info!(host = %client.host, client = %client.client_id, tx = %tx, health = health.name(), "client refreshed");
                report.last_refresh_tx = Some(tx);
                report.refreshes += 1;
            }
            Some(Err(e)) => {
                warn!(host = %client.host, client = %client.client_id, error = %e, "client refresh failed");
                report.last_error = Some(e.message);
            }
            None => {}
        }
        if let (Some(m), Some(secs)) = (&self.metrics, report.expires_in_secs) {
            m.families()
                .client_expiry_seconds
                .with_label_values(&[client.host.as_str(), client.client_id.as_str()])
                .set(secs);
        }
        let entered = previous.as_ref().is_none_or(|p| p.health != report.health);
        if entered {
            match health {
                ClientHealth::Alarm { expires_in } => warn!(
                    host = %client.host, client = %client.client_id, expires_in_secs = expires_in.as_secs(),
                    "client close to expiry: refreshing it ahead of other work on its chain"
                ),
                ClientHealth::Expired { .. } | ClientHealth::Frozen => error!(
                    host = %client.host, client = %client.client_id, health = health.name(),
                    "client unusable: the paths through it stop until an operator recovers it"
                ),
                _ => {}
            }
        }
        self.usability(&client, health);
        self.reports.insert(client, report);
    }

    /// Tells the coordinator when whether packets may go through `client` changes with `health`.
    fn usability(&mut self, client: &TrackedClient, health: ClientHealth) {
        let usable = health.usable();
        if self.usable.insert(client.clone(), usable) != Some(usable) {
            let why = health
                .unusable_reason()
                .unwrap_or_else(|| format!("is {}", health.name()));
            let reason = format!("client {} on {} {why}", client.client_id, client.host);
            // Rare, and losing one would leave a path stopped or running wrongly.
            self.halts.do_send(ClientHealthChanged {
                host: client.host.clone(),
                client_id: client.client_id.clone(),
                usable,
                reason,
            });
        }
    }
}

/// Reads one client, judges it, and updates it to the tracked chain's latest block when it is due.
async fn check(
    host: ChainLink,
    tracked: ChainLink,
    client_id: ClientId,
    policy: ClientPolicy,
) -> Result<Checked, RelayError> {
    let correlation = CorrelationId::fresh();
    let summary = host
        .query_client(QueryClient {
            correlation,
            client_id: client_id.clone(),
        })
        .await?;
    let health = assess(&ClientView::of(&summary), now_ns(), &policy);
    let refresh = match tracked.tip() {
        Some(tip) if health.needs_update() && tip > summary.latest_height => {
            Some(refresh(&host, &tracked, &summary, tip, health, correlation).await)
        }
        _ => None,
    };
    Ok(Checked {
        summary,
        health,
        refresh,
    })
}

async fn refresh(
    host: &ChainLink,
    tracked: &ChainLink,
    summary: &ClientSummary,
    target: u64,
    health: ClientHealth,
    correlation: CorrelationId,
) -> Result<String, RelayError> {
    let update = tracked
        .prepare_update(PrepareClientUpdate {
            correlation,
            client_id: summary.client_id.clone(),
            trusted_height: summary.latest_height,
            anchor: summary.anchor.clone(),
            target,
            signer: host.signer.clone(),
        })
        .await?;
    if update.msgs.is_empty() {
        return Err(RelayError::new(
            ErrorKind::AlreadyRelayed,
            format!("{}: already holds height {target}", summary.client_id),
        ));
    }
    // Near expiry the update goes ahead of everything queued on the host; otherwise it waits its turn.
    let priority = if matches!(health, ClientHealth::Alarm { .. }) {
        u8::MAX
    } else {
        0
    };
    let report = host
        .submit(SubmitTx {
            correlation,
            update: Some((summary.client_id.clone(), update.target, update.msgs)),
            datagrams: Vec::new(),
            priority,
            ordered_channel: None,
        })
        .await?;
    Ok(report.tx_hash)
}

impl Actor for ClientKeeper {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(guard) = &mut self.guard {
            guard.stopped_cleanly();
        }
    }

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.every, |act, ctx| {
            // A periodic check is work like a requested one, counted with the messages handled.
            act.meter.handled();
            let checks = act.check_all();
            ctx.spawn(checks);
        });
    }
}

impl Handler<CheckClients> for ClientKeeper {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: CheckClients, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        Box::pin(self.check_all())
    }
}

impl Handler<QueryClientHealth> for ClientKeeper {
    type Result = MessageResult<QueryClientHealth>;

    fn handle(&mut self, _: QueryClientHealth, _: &mut Self::Context) -> Self::Result {
        self.meter.handled();
        MessageResult(self.reports.values().cloned().collect())
    }
}

impl Handler<relayd_messages::InjectPanic> for ClientKeeper {
    type Result = ();

    fn handle(&mut self, _: relayd_messages::InjectPanic, _: &mut Self::Context) {
        self.meter.handled();
        injected_panic(relayd_messages::ActorKind::ClientKeeper);
    }
}
