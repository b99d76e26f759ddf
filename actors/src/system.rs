//! Starting relayd's actors inside a running actix System: one Arbiter and one supervisor per chain, the
//! RelayCoordinator, and the routes between them, from a validated configuration. Used by `relayd start` and
//! by host applications that embed relayd.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, Recipient};
use futures::StreamExt;
use relayd_config::{ChainType, Config, ConfigError};
use relayd_messages::{
    ActorKind, ChainId, CheckClients, ChildExited, CorrelationId, ForwardClientUpdates,
    QueryClientHealth, QueryMisbehaviour, Quiesce, RelayHandshake, StopServices, StopSupervisor,
    SuperviseWith,
};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::chain::any::AnyEndpoint;
use crate::chain::cosmos::rpc::CosmosRpc;
use crate::chain::endpoint::{ChainEndpoint, ChainError};
use crate::chain::near::factory::NearFactory;
use crate::chain_link::ChainLink;
use crate::client_keeper::state::ClientPolicy;
use crate::client_keeper::{ClientKeeper, TrackedClient};
use crate::coordinator::{RelayCoordinator, Scope};
use crate::meter::{Meter, MeteredRecipient};
use crate::metrics::Metrics;
use crate::misbehaviour_watcher::MisbehaviourWatcher;
use crate::routes::Routes;
use crate::store::StateStore;
use crate::supervisor::any::{AnyChainSupervisor, AnyFactory, CoordinatorInbox};
use crate::supervisor::guard::ExitGuard;
use crate::supervisor::service::{Make, ServiceSupervisor};

mod cosmos;
mod deferred;
mod paths;
mod reload;

use cosmos::{chain_err, confirm_timeout, cosmos_factory};
use deferred::join_deferred;
pub use deferred::PendingPaths;
pub use paths::ConfigSource;
use paths::PathError;
pub use reload::{ReloadError, ReloadReport};

/// Routes cleared, and handshakes found by the scan handed to the coordinator, at once on start.
const START_CONCURRENCY: usize = 16;

/// Why relayd could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A chain is configured in a way the service cannot use.
    #[error("chain {chain}: {reason}")]
    Chain {
        /// The chain.
        chain: String,
        /// What is wrong.
        reason: String,
    },
    /// The chains contradict the configuration (a path's ids name other channels, connections or clients than
    /// the chains have), named by file, line and key.
    #[error("{0}")]
    Config(ConfigError),
    /// A configured path could not be resolved on chain.
    #[error("path {path}: {reason}")]
    Path {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The mailbox meters of the service's actors that no chain supervisor reports on (each chain's supervisor and
/// links report their own).
#[derive(Debug, Clone, Default)]
pub struct ServiceMeters {
    /// The RelayCoordinator's.
    pub coordinator: Meter,
    /// The ClientKeeper's.
    pub client_keeper: Meter,
    /// The MisbehaviourWatcher's.
    pub misbehaviour_watcher: Meter,
}

/// A running relayd inside an actix System. The coordinator and its builders run on an Arbiter of their own and
/// each chain's actors on another, so a host's actors on the System's own Arbiter neither wait on relaying nor
/// stop with it.
pub struct RelayHandle {
    /// The coordinator.
    pub coordinator: Addr<RelayCoordinator>,
    /// Each chain's supervisor.
    pub supervisors: Vec<(ChainId, AnyChainSupervisor)>,
    /// Each chain's link (its actors' recipients).
    pub links: HashMap<ChainId, ChainLink>,
    /// The relayed directions.
    pub routes: Routes,
    /// The health of every client relayd relays through (the ClientKeeper).
    pub clients: Recipient<QueryClientHealth>,
    /// Makes the ClientKeeper check every client now.
    pub check_clients: Recipient<CheckClients>,
    /// The misbehaviour evidence relayd found and submitted (the MisbehaviourWatcher).
    pub misbehaviour: Recipient<QueryMisbehaviour>,
    /// The mailbox meters of the actors outside the chains' supervisors.
    pub meters: ServiceMeters,
    /// The supervisor of the client keeper and the misbehaviour watcher (their requests go through it).
    pub services: Addr<ServiceSupervisor>,
    /// Each Cosmos chain's RPC endpoints, their scores and which one is used.
    pub rpc_pools: HashMap<ChainId, crate::rpc_pool::RpcPool>,
    failure: Option<oneshot::Receiver<String>>,
    /// Each chain's endpoint: a reload resolves the paths of the re-read file through them.
    endpoints: HashMap<ChainId, AnyEndpoint>,
    /// The routes relayed now, as reloads change them (`routes` stays what the start resolved).
    relayed: Routes,
    pending_paths: PendingPaths,
    store: StateStore,
    arbiters: Vec<Arbiter>,
    drain_bound: Duration,
}

impl RelayHandle {
    /// The coordinator's failure, which relaying cannot survive: resolves with why if it fails (a panic), and
    /// never while it runs. `None` after the first call. The host should shut the relay down and start it
    /// again; everything unfinished resumes from the state database.
    pub fn take_failure(&mut self) -> Option<impl std::future::Future<Output = String>> {
        let failure = self.failure.take()?;
        Some(async move {
            match failure.await {
                Ok(reason) => reason,
                // The supervisor is gone (shutdown): no failure to report, ever.
                Err(_) => std::future::pending().await,
            }
        })
    }

    /// The configured paths not relayed yet because a node they go through has not answered since the start
    /// (each is retried with backoff and relayed once resolved); empty when every path relays.
    pub fn pending_paths(&self) -> PendingPaths {
        self.pending_paths.clone()
    }

    /// The state database: packet lifecycle records, checkpoints, dead letters.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// How long [`RelayHandle::shutdown`] waits for transactions in flight: the time a transaction is given to
    /// confirm, `max([global] timeout, 30s)`.
    pub fn drain_bound(&self) -> Duration {
        self.drain_bound
    }

    /// Stops gracefully within [`RelayHandle::drain_bound`]; see [`RelayHandle::shutdown_within`].
    pub async fn shutdown(self) {
        let bound = self.drain_bound;
        self.shutdown_within(bound).await;
    }

    /// Stops relaying: no new work is taken (each chain's monitor stops, so no new packet or clearing starts, and
    /// no new transaction is sent), transactions in flight are given up to `bound` to confirm or time out, then
    /// every actor stops (the coordinator and builders too) and the state database is flushed. Packets left
    /// unfinished are resumed from the database by the next start.
    pub async fn shutdown_within(self, bound: Duration) {
        // The service supervisor first: the actors stopping from here on are not failures to escalate.
        let _ = self.services.send(StopServices).await;
        let started = tokio::time::Instant::now();
        let quiesced =
            futures::future::join_all(self.supervisors.iter().map(|(_, sup)| sup.send(Quiesce)));
        if tokio::time::timeout(bound, quiesced).await.is_err() {
            warn!(
                ?bound,
                "transactions still in flight; stopping without their outcome"
            );
        }
        // The submitters have answered; the builders take their answers in on the coordinator's Arbiter, and
        // a transaction's outcome dropped there would leave its record a state behind the chain.
        let outcomes: Vec<_> = self.links.values().map(|l| l.outcomes.clone()).collect();
        let left = crate::chain_link::outcomes::settled(
            &outcomes,
            bound.saturating_sub(started.elapsed()),
        )
        .await;
        if left > 0 {
            warn!(
                outcomes = left,
                "transaction outcomes not taken in yet; their packets resume from the chain on the next start"
            );
        }
        for (_, sup) in &self.supervisors {
            let _ = sup.send(StopSupervisor).await;
        }
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        // Joined so that every chain actor (and its handle on the state database) is gone when this returns: a
        // caller may reopen the database or exit right after.
        let arbiters = self.arbiters;
        let joined = tokio::task::spawn_blocking(move || {
            for arbiter in arbiters {
                let _ = arbiter.join();
            }
        })
        .await;
        if joined.is_err() {
            warn!("a chain's arbiter thread panicked while stopping");
        }
        if let Err(e) = self.store.flush() {
            warn!(error = %e, "cannot flush the state database");
        }
    }
}

/// Choices of how [`start_with`] runs.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Clear every route's pending packets and finish the handshakes of the configured clients once the chains'
    /// actors are up (the service does; one-off commands do not).
    pub clear_on_start: bool,
    /// Relay only these packets (one-off commands); `None` relays every configured path.
    pub scope: Option<Scope>,
    /// Where the actors count transactions, reconnects and node errors (the admin server's `/metrics`).
    pub metrics: Option<Metrics>,
    /// The configuration's file and text, so that a path the chains contradict is reported at its file and
    /// line; without it only the key is named.
    pub source: Option<ConfigSource>,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            clear_on_start: true,
            scope: None,
            metrics: None,
            source: None,
        }
    }
}

/// Starts relayd for `config` in the current actix System. Keys are read from `keys_dir`.
pub async fn start(
    config: &Config,
    store: StateStore,
    keys_dir: PathBuf,
) -> Result<RelayHandle, StartError> {
    start_with(config, store, keys_dir, StartOptions::default()).await
}

/// [`start`] with explicit [`StartOptions`].
pub async fn start_with(
    config: &Config,
    store: StateStore,
    keys_dir: PathBuf,
    options: StartOptions,
) -> Result<RelayHandle, StartError> {
    let mut factories = HashMap::new();
    let mut links = HashMap::new();
    let mut rpc_pools = HashMap::new();
    for chain in &config.chains {
        let (factory, link) = match chain.chain_type {
            ChainType::Cosmos => {
                let (f, link) =
                    cosmos_factory(chain, config, &store, &keys_dir, options.metrics.as_ref())
                        .await?;
                rpc_pools.insert(chain.id.clone(), f.rpc.pool().clone());
                (AnyFactory::Cosmos(Box::new(f)), link)
            }
            ChainType::Near => {
                let (f, link) =
                    NearFactory::from_config(chain, &store, config.supervision.backoff_cap.get())
                        .map_err(|e| chain_err(chain, e))?;
                rpc_pools.insert(chain.id.clone(), f.rpc.pool().clone());
                crate::chain::near::rpc::prober::spawn(f.rpc.clone(), options.metrics.clone());
                (AnyFactory::Near(Box::new(f)), link)
            }
        };
        links.insert(chain.id.clone(), link);
        factories.insert(chain.id.clone(), factory);
    }

    let endpoints: HashMap<ChainId, AnyEndpoint> = factories
        .iter()
        .map(|(id, f)| (id.clone(), f.endpoint()))
        .collect();
    let mut routes = Routes::default();
    let mut deferred = Vec::new();
    let plans = paths::plans(config, |id| factories.get(id).map(AnyFactory::endpoint));
    for plan in plans {
        // Within [global] timeout: a hung node must not hold the start of every other path.
        let within = config.global.timeout.get();
        let resolved = tokio::time::timeout(within, plan.resolve())
            .await
            .unwrap_or_else(|_| {
                Err(PathError::Chain(ChainError::Rpc {
                    chain: plan.src.chain_id().to_owned(),
                    call: format!("resolve {}", plan.name),
                    reason: format!("no answer within {within:?}"),
                }))
            });
        match resolved {
            Ok(resolved) => {
                for route in resolved {
                    routes.insert(route);
                }
            }
            // A node that does not answer: the path is resolved once it does, and every other path relays
            // meanwhile. Any other answer (no such channel, a mismatched counterparty) is a wrong path.
            Err(PathError::Chain(e @ ChainError::Rpc { .. })) => {
                warn!(path = %plan.name, error = %e, "path not resolved at start (a node does not answer); retried with backoff");
                deferred.push(plan);
            }
            Err(PathError::Chain(e)) => {
                return Err(StartError::Path {
                    path: plan.name,
                    reason: e.to_string(),
                })
            }
            Err(PathError::Config { key, message }) => {
                return Err(StartError::Config(paths::config_error(
                    options.source.as_ref(),
                    &key,
                    message,
                )))
            }
        }
    }
    let pending_paths = PendingPaths::default();
    pending_paths.set(deferred.iter().map(|p| p.name.clone()).collect());

    let filters: HashMap<ChainId, relayd_config::PacketFilter> = config
        .chains
        .iter()
        .map(|c| (c.id.clone(), c.packet_filter.clone()))
        .collect();
    let intervals = config
        .chains
        .iter()
        .map(|c| (c.id.clone(), c.clear_interval))
        .collect();
    // Its own Arbiter: the builders it spawns run there too, and all of them (with the watcher and the client
    // keeper) stop with it at shutdown.
    let coordinator_arbiter = Arbiter::new();
    let meters = ServiceMeters::default();
    let coordinator = {
        let (links, routes, store) = (links.clone(), routes.clone(), store.clone());
        let scope = options.scope.clone();
        let meter = meters.coordinator.clone();
        let retention = config.global.record_retention.get();
        let caps = crate::coordinator::caps::Ics20Caps::of(config);
        let max_builders = config.global.max_builders.get();
        RelayCoordinator::start_in_arbiter(&coordinator_arbiter.handle(), move |_| {
            let filter = crate::coordinator::policy::channel_filter(filters);
            RelayCoordinator::new(links, routes, store, filter, 5)
                .with_caps(caps)
                .with_retention(retention)
                .with_max_builders(max_builders)
                .with_clear_intervals(intervals)
                .with_scope(scope)
                .with_meter(meter)
        })
    };
    // The client keeper and the misbehaviour watcher, under their supervisor on the coordinator's Arbiter.
    let (escalate, failure) = oneshot::channel();
    let services = {
        let (keeper_clients, watcher_clients) = (
            TrackedClient::of_routes(&routes),
            TrackedClient::of_routes(&routes),
        );
        let (keeper_links, watcher_links) = (links.clone(), links.clone());
        let watcher_store = store.clone();
        let (keeper_metrics, watcher_metrics) = (options.metrics.clone(), options.metrics.clone());
        let halts =
            MeteredRecipient::new(coordinator.clone().recipient(), meters.coordinator.clone());
        let (keeper_meter, watcher_meter) = (
            meters.client_keeper.clone(),
            meters.misbehaviour_watcher.clone(),
        );
        let policy = ClientPolicy {
            refresh_fraction: config.clients.refresh_fraction,
            alarm_below: config.clients.expiry_alarm.get(),
        };
        let every = config.clients.check_interval.get();
        let supervision = config.supervision.clone();
        ServiceSupervisor::start_in_arbiter(&coordinator_arbiter.handle(), move |_| {
            let make_keeper: Make<ClientKeeper> = Box::new(move |guard| {
                ClientKeeper::new(
                    keeper_clients.clone(),
                    keeper_links.clone(),
                    policy,
                    every,
                    halts.clone(),
                    keeper_metrics.clone(),
                )
                .with_meter(keeper_meter.clone())
                .with_guard(guard)
            });
            let meter = watcher_meter.clone();
            let make_watcher: Make<MisbehaviourWatcher> = Box::new(move |guard| {
                MisbehaviourWatcher::new(
                    watcher_clients.clone(),
                    watcher_links.clone(),
                    watcher_metrics.clone(),
                )
                .with_meter(meter.clone())
                .with_store(watcher_store.clone())
                .with_guard(guard)
            });
            ServiceSupervisor::new(make_keeper, make_watcher, watcher_meter, supervision)
                .with_escalation(escalate)
        })
    };
    coordinator.do_send(SuperviseWith(ExitGuard::new(
        ActorKind::RelayCoordinator,
        1,
        MeteredRecipient::from(services.clone().recipient::<ChildExited>()),
    )));
    // Before any chain's monitor starts, so that the coordinator forwards every update from the first block on.
    coordinator.do_send(ForwardClientUpdates(MeteredRecipient::new(
        services.clone().recipient(),
        meters.misbehaviour_watcher.clone(),
    )));

    // The config executor's handshake scan reads the listings of Cosmos chains (NEAR's contract lists ids only;
    // its handshakes are found through events).
    let scans: Vec<(ChainId, CosmosRpc, Vec<relayd_messages::ClientId>)> = if options.clear_on_start
    {
        config
            .chains
            .iter()
            .filter_map(|c| match factories.get(&c.id).map(AnyFactory::endpoint) {
                Some(AnyEndpoint::Cosmos(e)) => {
                    Some((c.id.clone(), e.rpc().clone(), c.client_ids.clone()))
                }
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };

    let mut supervisors = Vec::new();
    let mut arbiters = Vec::new();
    for chain in &config.chains {
        let Some(factory) = factories.remove(&chain.id) else {
            continue;
        };
        let arbiter = Arbiter::new();
        let link = links[&chain.id].clone();
        let sink =
            MeteredRecipient::new(coordinator.clone().recipient(), meters.coordinator.clone());
        let policy = config.supervision.clone();
        let refresh = chain.trusting_period.get().mul_f64(1.0 / 3.0);
        let store = store.clone();
        let to = CoordinatorInbox {
            blocks: sink,
            consistency: coordinator.clone().recipient(),
        };
        let sup = factory.start_supervisor(&arbiter.handle(), link, store, to, policy, refresh);
        supervisors.push((chain.id.clone(), sup));
        arbiters.push(arbiter);
    }

    // Clearing on start: once every chain's actors are up, look for packets pending on each route.
    let clear_links = links.clone();
    let clear_routes: Vec<_> = if options.clear_on_start {
        routes.all().cloned().collect()
    } else {
        Vec::new()
    };
    let clear_to = coordinator.clone();
    let first_check = services.clone();
    actix::spawn(async move {
        for _ in 0..100 {
            if clear_links.values().all(ChainLink::is_complete) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Clients are judged first: no work starts on a path whose client is already expired or frozen, and
        // clients near expiry are refreshed before the backlog competes with them.
        let _ = first_check.send(CheckClients).await;
        // Several routes at once: each clearing waits on its chains' answers, and one after another a
        // thousand channels would keep the last one's packets waiting for the whole pass (the chains' queriers
        // bound the queries in flight).
        futures::stream::iter(clear_routes)
            .for_each_concurrent(START_CONCURRENCY, |route| {
                let clear_to = clear_to.clone();
                async move {
                    match clear_to.send(route.clear_all()).await {
                        Ok(Ok(report)) => {
                            info!(chain = %route.src, channel = %route.src_channel, unreceived = report.unreceived.len(), unacknowledged = report.unacknowledged.len(), "cleared on start")
                        }
                        Ok(Err(e)) => {
                            warn!(chain = %route.src, error = %e, "clearing on start failed")
                        }
                        Err(e) => warn!(error = %e, "clearing on start failed"),
                    }
                }
            })
            .await;
        // Every chain's listing first: an open end whose counterparty is open on another scanned chain is
        // finished, and a builder for each of a thousand such channels would only read both ends and stop.
        let mut listed = Vec::new();
        for (chain, rpc, clients) in scans {
            match (rpc.connections().await, rpc.channels().await) {
                (Ok(c), Ok(h)) => listed.push((chain, clients, c, h)),
                (Err(e), _) | (_, Err(e)) => {
                    warn!(chain = %chain, error = %e, "handshake scan on start failed");
                }
            }
        }
        let listings: Vec<crate::scan::Listing<'_>> = listed
            .iter()
            .map(|(_, _, c, h)| crate::scan::Listing {
                connections: c,
                channels: h,
            })
            .collect();
        for (i, (chain, clients, _, _)) in listed.iter().enumerate() {
            let others: Vec<crate::scan::Listing<'_>> = listings
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| *l)
                .collect();
            let found = crate::scan::handshakes(chain, clients, listings[i], &others);
            futures::stream::iter(found)
                .for_each_concurrent(START_CONCURRENCY, |(object, state)| {
                    let clear_to = clear_to.clone();
                    async move {
                        let request = RelayHandshake {
                            correlation: CorrelationId::fresh(),
                            object: object.clone(),
                            state,
                        };
                        if let Ok(Err(e)) = clear_to.send(request).await {
                            debug!(%object, error = %e, "handshake found on start not relayed");
                        }
                    }
                })
                .await;
        }
    });

    if !deferred.is_empty() {
        let backoff = (
            config.supervision.backoff_base.get(),
            config.supervision.backoff_cap.get(),
        );
        actix::spawn(join_deferred(
            deferred,
            options.source.clone(),
            pending_paths.clone(),
            coordinator.clone(),
            options.clear_on_start,
            backoff,
        ));
    }

    // Stopped and joined with the chains' Arbiters, once they have quiesced.
    arbiters.push(coordinator_arbiter);
    Ok(RelayHandle {
        coordinator,
        supervisors,
        links,
        relayed: routes.clone(),
        routes,
        endpoints,
        clients: services.clone().recipient(),
        check_clients: services.clone().recipient(),
        misbehaviour: services.clone().recipient(),
        services,
        rpc_pools,
        failure: Some(failure),
        pending_paths,
        meters,
        store,
        arbiters,
        drain_bound: confirm_timeout(config),
    })
}
