//! The admin HTTP server: operators inspect the running actors, chains and packets, start clearing operations,
//! retry dead letters, follow live events and scrape metrics. It runs on actix-web inside the service's own
//! actix System and only talks to the actors by messages, so it can neither block nor break relaying.

mod api;
pub mod auth;
pub mod chains;
mod control;
pub mod dashboard;
pub mod events;
pub mod filter;
pub mod ops;
mod status;
mod telemetry;
mod token;
pub mod views;

#[cfg(test)]
mod request_fuzz;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr, Recipient};
use actix_web::{web, App, HttpServer, ResponseError};
use prometheus::Registry;
use relayd_actors::chain_link::ChainLink;
use relayd_actors::coordinator::RelayCoordinator;
use relayd_actors::metrics::Metrics;
use relayd_actors::routes::Routes;
use relayd_actors::store::{now_ms, StateStore};
use relayd_actors::supervisor::any::AnyChainSupervisor;
use relayd_actors::supervisor::service::ServiceSupervisor;
use relayd_actors::system::{RelayHandle, ServiceMeters};
use relayd_config::Config;
use relayd_messages::ChainId;
use relayd_messages::{QueryClientHealth, QueryMisbehaviour, SubscribeLifecycle};
use tracing::{info, warn};

pub(crate) use api::{packet_key, query_pairs};
use api::{ApiError, ApiResult};
use auth::Gate;
use chains::Probes;
use control::{authorise, clear, operation, operations, reload_config, retry_dead_letter};
use events::{Hub, LifecycleTap};
use ops::Operations;
use status::{
    actor, actors, chain_one, chains_all, dead_letters, events, health, misbehaviour, packet,
    version,
};
use telemetry::{metrics, spawn_restart_watch};
pub(crate) use token::read_token;
pub use token::MIN_TOKEN_BYTES;

/// How long a clearing operation follows its packets before reporting the unfinished ones as failed.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(300);

/// How often a running operation re-reads its packets' records.
const OPERATION_POLL: Duration = Duration::from_millis(250);

/// How often supervisors are asked for restarts (for `/events` and the restart counter).
const RESTART_POLL: Duration = Duration::from_secs(1);

/// Header carrying a one-time authorisation.
pub const AUTHORISATION_HEADER: &str = "x-relayd-authorisation";

/// Why the admin server could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The token file could not be read or is empty.
    #[error("[admin] token_file {path}: {reason}")]
    TokenFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("admin server: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
}

/// Everything the handlers share.
pub struct Admin {
    coordinator: Addr<RelayCoordinator>,
    supervisors: Vec<(ChainId, AnyChainSupervisor)>,
    links: HashMap<ChainId, ChainLink>,
    routes: Routes,
    pending_paths: relayd_actors::system::PendingPaths,
    clients: Recipient<QueryClientHealth>,
    misbehaviour: Recipient<QueryMisbehaviour>,
    meters: ServiceMeters,
    services: Addr<ServiceSupervisor>,
    store: StateStore,
    config: Config,
    registry: Registry,
    metrics: Metrics,
    telemetry: bool,
    hub: Hub,
    gate: Mutex<Gate>,
    ops: Mutex<Operations>,
    probes: Probes,
    rpc_pools: HashMap<ChainId, relayd_actors::rpc_pool::RpcPool>,
    started_ms: u64,
    data_dir: String,
    /// Where `POST /config/reload` asks the service loop to reload (none until the service accepts reloads).
    reloads: Arc<Mutex<Option<crate::reload::ReloadRequests>>>,
}

/// A running admin server.
pub struct AdminServer {
    handle: actix_web::dev::ServerHandle,
    reloads: Arc<Mutex<Option<crate::reload::ReloadRequests>>>,
    /// The address it listens on (the configured one, with the port resolved when it was 0).
    pub addr: std::net::SocketAddr,
}

impl AdminServer {
    /// `POST /config/reload` sends its requests to `requests` from now on (without, it answers 503).
    pub fn accept_reloads(&self, requests: crate::reload::ReloadRequests) {
        *api::lock(&self.reloads) = Some(requests);
    }

    /// Stops accepting requests and closes open streams.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Starts the admin server for `relay` in the current actix System, as `[admin]` and `[telemetry]` say; a
/// relative `token_file` is read from `config_dir`, and `data_dir` is the service's data directory (reported so
/// that commands can tell their own service from another on the same host). `metrics` must be registered in `registry`; the relay's
/// actors should count into the same `metrics`.
pub async fn start(
    config: &Config,
    config_dir: &std::path::Path,
    data_dir: &std::path::Path,
    relay: &RelayHandle,
    store: StateStore,
    registry: Registry,
    metrics: Metrics,
) -> Result<AdminServer, AdminError> {
    let token = config
        .admin
        .token_file
        .as_deref()
        .map(|p| {
            let path = config_dir.join(p);
            read_token(&path).map_err(|reason| AdminError::TokenFile {
                path: path.display().to_string(),
                reason,
            })
        })
        .transpose()?;
    let listen = config.admin.listen_addr;
    if !listen.ip().is_loopback() {
        warn!(addr = %listen, "the admin server listens on a non-loopback address; anyone who can reach it can read the relayer's state");
    }
    if token.is_none() {
        info!("no [admin] token_file: the admin server's mutating endpoints are disabled");
    }
    // Per-chain counters exist from the start, so a scrape shows 0 rather than nothing before the first event.
    let families = metrics.families();
    for chain in &config.chains {
        let id = [chain.id.as_str()];
        for counter in [
            &families.websocket_reconnects_total,
            &families.rpc_errors_total,
            &families.txs_failed_total,
            &families.txs_submitted_total,
            &families.txs_confirmed_total,
        ] {
            counter.with_label_values(&id);
        }
    }
    let hub = Hub::default();
    let tap = LifecycleTap {
        hub: hub.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
    }
    .start();
    relay
        .coordinator
        .do_send(SubscribeLifecycle(tap.recipient()));
    let probes = Probes::default();
    let addresses = relay
        .links
        .iter()
        .map(|(id, l)| {
            let keys = if l.signers.is_empty() {
                vec![(String::new(), l.signer.clone())]
            } else {
                l.signers.clone()
            };
            (id.to_string(), keys)
        })
        .collect();
    chains::spawn_prober(config, addresses, probes.clone(), metrics.clone());
    let admin = Arc::new(Admin {
        coordinator: relay.coordinator.clone(),
        supervisors: relay.supervisors.clone(),
        links: relay.links.clone(),
        routes: relay.routes.clone(),
        pending_paths: relay.pending_paths(),
        clients: relay.clients.clone(),
        misbehaviour: relay.misbehaviour.clone(),
        meters: relay.meters.clone(),
        services: relay.services.clone(),
        store,
        config: config.clone(),
        registry,
        metrics,
        telemetry: config.telemetry.enabled,
        hub,
        gate: Mutex::new(Gate::new(token)),
        ops: Mutex::new(Operations::default()),
        probes,
        rpc_pools: relay.rpc_pools.clone(),
        started_ms: now_ms(),
        data_dir: std::fs::canonicalize(data_dir)
            .unwrap_or_else(|_| data_dir.to_owned())
            .display()
            .to_string(),
        reloads: Arc::new(Mutex::new(None)),
    });
    let reloads = admin.reloads.clone();
    spawn_restart_watch(admin.clone());
    let data = web::Data::from(admin);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(routes)
            .default_service(web::to(|| async {
                ApiError::not_found("no such endpoint; see docs/admin-api.md").error_response()
            }))
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(2)
    .bind(listen)
    .map_err(|source| AdminError::Bind {
        addr: listen,
        source,
    })?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    let server = server.run();
    let handle = server.handle();
    actix::spawn(async move {
        if let Err(e) = server.await {
            warn!(error = %e, "the admin server stopped");
        }
    });
    info!(addr = %addr, "admin server listening");
    Ok(AdminServer {
        handle,
        reloads,
        addr,
    })
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard::index))
        .route("/assets/{name}", web::get().to(dashboard::asset))
        .route("/health", web::get().to(health))
        .route("/version", web::get().to(version))
        .route("/actors", web::get().to(actors))
        .route("/actors/{id:.*}", web::get().to(actor))
        .route("/chains", web::get().to(chains_all))
        .route("/chains/{id}", web::get().to(chain_one))
        .route("/misbehaviour", web::get().to(misbehaviour))
        .route("/packets", web::get().to(filter::packets))
        .route(
            "/packets/{chain}/{port}/{channel}/{sequence}",
            web::get().to(packet),
        )
        .route("/dead-letters", web::get().to(dead_letters))
        .route(
            "/dead-letters/{chain}/{port}/{channel}/{sequence}/retry",
            web::post().to(retry_dead_letter),
        )
        .route("/authorisations", web::post().to(authorise))
        .route("/clear", web::post().to(clear))
        .route("/config/reload", web::post().to(reload_config))
        .route("/operations", web::get().to(operations))
        .route("/operations/{id}", web::get().to(operation))
        .route("/events", web::get().to(events))
        .route("/metrics", web::get().to(metrics));
}
