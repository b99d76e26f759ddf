//! The admin HTTP server: operators inspect the running actors, chains and packets, start clearing operations,
//! retry dead letters, follow live events and scrape metrics. It runs on actix-web inside the service's own
//! actix System and only talks to the actors by messages, so it can neither block nor break relaying.

pub mod auth;
pub mod chains;
pub mod dashboard;
pub mod events;
pub mod filter;
pub mod ops;
pub mod views;

#[cfg(test)]
mod request_fuzz;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Recipient};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use prometheus::{Encoder, Registry, TextEncoder};
use relayd_actors::chain_link::ChainLink;
use relayd_actors::coordinator::RelayCoordinator;
use relayd_actors::metrics::Metrics;
use relayd_actors::routes::Routes;
use relayd_actors::store::{now_ms, PacketRecord, StateStore};
use relayd_actors::supervisor::any::AnyChainSupervisor;
use relayd_actors::supervisor::service::ServiceSupervisor;
use relayd_actors::system::{RelayHandle, ServiceMeters};
use relayd_config::Config;
use serde_json::json;
use tracing::{info, warn};

use auth::{Denied, Gate};
use chains::{ChainProbe, Probes};
use events::{AdminEvent, Hub, LifecycleTap};
use ops::{ClearRequest, OpStatus, Operation, Operations};
use relayd_messages::{
    ActorKind, ChainId, ChainStatus, ChannelId, ClearPackets, ClearReport, ClientReport,
    CorrelationId, PacketKey, PortId, QueryBuilders, QueryChainStatus, QueryClientHealth,
    QueryCoordinator, QueryMisbehaviour, QueryServiceStatus, RetryError, RetryPacket, Sequence,
    SubscribeLifecycle,
};
use views::{ActorNode, BuilderView, ChainView};

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
    started_ms: u64,
    data_dir: String,
}

/// A running admin server.
pub struct AdminServer {
    handle: actix_web::dev::ServerHandle,
    /// The address it listens on (the configured one, with the port resolved when it was 0).
    pub addr: std::net::SocketAddr,
}

impl AdminServer {
    /// Stops accepting requests and closes open streams.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// An API error: a status and a reason, sent as `{"error": reason}`.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ApiError {
    status: StatusCode,
    reason: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            retry_after: None,
        }
    }
    fn bad(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
    fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }
    fn internal(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, reason)
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        let status = match d {
            Denied::Disabled => StatusCode::FORBIDDEN,
            Denied::Token | Denied::Authorisation => StatusCode::UNAUTHORIZED,
            Denied::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        };
        let retry_after = match d {
            Denied::RateLimited { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        Self {
            status,
            reason: d.to_string(),
            retry_after,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(s) = self.retry_after {
            r.insert_header(("Retry-After", s.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header(("WWW-Authenticate", "Bearer"));
        }
        r.json(json!({ "error": self.reason }))
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The shortest admin token accepted: 32 bytes, as long as a random 256-bit secret written in base64 or hex
/// halves, so that guessing it through the (throttled) API is hopeless.
pub const MIN_TOKEN_BYTES: usize = 32;
/// The largest token file read.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// Reads the admin token from `path`: a private file (no access for group or others) holding one token of at
/// least [`MIN_TOKEN_BYTES`] without whitespace. Errors say why, never the token.
pub(crate) fn read_token(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mode = file
        .metadata()
        .map_err(|e| e.to_string())?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {mode:04o} lets other users read the token; run `chmod 600` on it"
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "the file is larger than {MAX_TOKEN_FILE_BYTES} bytes; it should hold one token"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "the token is not UTF-8 text".to_owned())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("the file is empty".into());
    }
    if token.chars().any(char::is_whitespace) {
        return Err("the token contains whitespace".into());
    }
    if token.len() < MIN_TOKEN_BYTES {
        return Err(format!(
            "the token is {} bytes; at least {MIN_TOKEN_BYTES} are needed (e.g. `openssl rand -hex 32`)",
            token.len()
        ));
    }
    Ok(token.to_owned())
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
        .map(|(id, l)| (id.to_string(), l.signer.clone()))
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
        started_ms: now_ms(),
        data_dir: std::fs::canonicalize(data_dir)
            .unwrap_or_else(|_| data_dir.to_owned())
            .display()
            .to_string(),
    });
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
    Ok(AdminServer { handle, addr })
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
        .route("/operations", web::get().to(operations))
        .route("/operations/{id}", web::get().to(operation))
        .route("/events", web::get().to(events))
        .route("/metrics", web::get().to(metrics));
}

async fn chain_statuses(admin: &Admin) -> Vec<ChainStatus> {
    let mut out = Vec::new();
    for (chain, sup) in &admin.supervisors {
        match sup.send(QueryChainStatus).await {
            Ok(s) => out.push(s),
            // A stopped supervisor: the chain shows with no running children.
            Err(_) => out.push(ChainStatus {
                chain: chain.to_string(),
                degraded: true,
                children: Vec::new(),
                load: Default::default(),
            }),
        }
    }
    out
}

async fn health(admin: web::Data<Admin>) -> ApiResult {
    let coordinator = admin
        .coordinator
        .send(QueryCoordinator)
        .await
        .map_err(|e| ApiError::internal(format!("coordinator: {e}")))?;
    let heights: HashMap<String, u64> = coordinator.heights.into_iter().collect();
    let mut chains = Vec::new();
    for status in chain_statuses(&admin).await {
        let running = status.children.iter().all(|c| c.running) && !status.children.is_empty();
        let link = admin
            .links
            .iter()
            .find(|(id, _)| id.as_str() == status.chain)
            .map(|(_, l)| l);
        let linked = link.is_some_and(ChainLink::is_complete);
        let breaker_closed = link.is_none_or(|l| {
            l.breaker().state == relayd_actors::chain_link::breaker::BreakerState::Closed
        });
        // The background probe of the node (Cosmos chains): a node that stopped answering makes its chain
        // not followed even while the last height seen is still known.
        let node_answers = lock_read(&admin.probes)
            .get(&status.chain)
            .is_none_or(|p| p.rpc.healthy);
        let height = heights.get(&status.chain).copied();
        // The first reason the chain is not followed, in the order an operator would look.
        let reason = if !node_answers {
            Some("the node does not answer")
        } else if status.degraded {
            Some("restart intensity exceeded; retried after a cool-down")
        } else if !breaker_closed {
            Some("circuit breaker open after node errors")
        } else if !running || !linked {
            Some("actors not running")
        } else if height.is_none() {
            Some("no block observed yet")
        } else {
            None
        };
        chains.push(json!({
            "chain": status.chain,
            "ready": reason.is_none(),
            "reason": reason,
            "degraded": status.degraded,
            "actors_running": running,
            "node_answers": node_answers,
            "height": height,
        }));
    }
    let pending_paths = admin.pending_paths.list();
    let ready = chains.iter().all(|c| c["ready"] == true) && pending_paths.is_empty();
    Ok(HttpResponse::Ok().json(json!({
        "status": "ok",
        "ready": ready,
        "uptime_secs": now_ms().saturating_sub(admin.started_ms) / 1000,
        "chains": chains,
        "pending_paths": pending_paths,
    })))
}

async fn version(admin: web::Data<Admin>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "data_dir": admin.data_dir,
    }))
}

async fn actor_nodes(admin: &Admin) -> Result<Vec<ActorNode>, ApiError> {
    let coordinator = admin
        .coordinator
        .send(QueryCoordinator)
        .await
        .map_err(|e| ApiError::internal(format!("coordinator: {e}")))?;
    let builders = admin
        .coordinator
        .send(QueryBuilders)
        .await
        .map_err(|e| ApiError::internal(format!("coordinator: {e}")))?;
    let builders: Vec<BuilderView> = builders
        .into_iter()
        .map(|status| {
            let record = match &status.object {
                relayd_messages::RelayObject::Packet(key) => admin.store.packet(key).ok().flatten(),
                _ => None,
            };
            BuilderView { status, record }
        })
        .collect();
    let chains: Vec<ChainView> = chain_statuses(admin)
        .await
        .into_iter()
        .map(|status| {
            let link = admin
                .links
                .iter()
                .find(|(id, _)| id.as_str() == status.chain)
                .map(|(_, l)| l);
            let loads = status
                .children
                .iter()
                .filter_map(|c| Some((c.kind, link?.load(c.kind)?)))
                .collect();
            ChainView { status, loads }
        })
        .collect();
    let mut nodes = views::actor_tree(&coordinator, admin.started_ms, &chains, &builders);
    // The keeper and the watcher, under their supervisor, right after the coordinator.
    let services = admin.services.send(QueryServiceStatus).await.ok();
    let service_nodes = views::service_tree(
        services.as_ref(),
        &admin.meters.client_keeper.load(),
        &admin.meters.misbehaviour_watcher.load(),
        admin.started_ms,
    );
    nodes.splice(1..1, service_nodes);
    Ok(nodes)
}

async fn misbehaviour(admin: web::Data<Admin>) -> ApiResult {
    let status = admin
        .misbehaviour
        .send(QueryMisbehaviour)
        .await
        .map_err(|e| ApiError::internal(format!("misbehaviour watcher: {e}")))?;
    Ok(HttpResponse::Ok().json(status))
}

async fn actors(admin: web::Data<Admin>) -> ApiResult {
    let nodes = actor_nodes(&admin).await?;
    Ok(HttpResponse::Ok().json(json!({ "actors": nodes })))
}

async fn actor(admin: web::Data<Admin>, id: web::Path<String>) -> ApiResult {
    let id = id.into_inner();
    let nodes = actor_nodes(&admin).await?;
    let node = nodes
        .iter()
        .find(|n| n.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no actor {id:?}")))?;
    let children: Vec<&str> = nodes
        .iter()
        .filter(|n| n.parent.as_deref() == Some(id.as_str()))
        .map(|n| n.id.as_str())
        .collect();
    let mut value = serde_json::to_value(node).map_err(|e| ApiError::internal(e.to_string()))?;
    value["children"] = json!(children);
    Ok(HttpResponse::Ok().json(value))
}

async fn chain_view(admin: &Admin, chain: &str) -> Result<serde_json::Value, ApiError> {
    let config = admin
        .config
        .chains
        .iter()
        .find(|c| c.id.as_str() == chain)
        .ok_or_else(|| ApiError::not_found(format!("no chain {chain:?} is configured")))?;
    let status = match admin
        .supervisors
        .iter()
        .find(|(id, _)| id.as_str() == chain)
    {
        Some((_, sup)) => sup.send(QueryChainStatus).await.ok(),
        None => None,
    };
    let coordinator = admin
        .coordinator
        .send(QueryCoordinator)
        .await
        .map_err(|e| ApiError::internal(format!("coordinator: {e}")))?;
    let height = coordinator
        .heights
        .iter()
        .find(|(c, _)| c == chain)
        .map(|(_, h)| *h);
    let probe: Option<ChainProbe> = lock_read(&admin.probes).get(chain).cloned();
    let degraded = status.as_ref().is_none_or(|s| s.degraded);
    // The ClientKeeper's verdicts on the clients this chain hosts (alarm, refreshes, stopped paths).
    let health: Vec<ClientReport> = admin
        .clients
        .send(QueryClientHealth)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.host == chain)
        .collect();
    let breaker = admin
        .links
        .iter()
        .find(|(id, _)| id.as_str() == chain)
        .map(|(_, l)| l.breaker());
    Ok(json!({
        "id": chain,
        "type": format!("{:?}", config.chain_type).to_lowercase(),
        "rpc_addr": config.rpc_addr.to_string(),
        "height": height,
        "circuit_breaker": breaker,
        "degraded": degraded,
        "rpc": probe.as_ref().map(|p| &p.rpc),
        "clients": probe.as_ref().map(|p| &p.clients),
        "client_health": health,
        "wallet": probe.as_ref().map(|p| &p.wallet),
        "probed_ms": probe.as_ref().map(|p| p.probed_ms),
    }))
}

fn lock_read<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

async fn chains_all(admin: web::Data<Admin>) -> ApiResult {
    let mut out = Vec::new();
    for c in &admin.config.chains {
        out.push(chain_view(&admin, c.id.as_str()).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "chains": out })))
}

async fn chain_one(admin: web::Data<Admin>, id: web::Path<String>) -> ApiResult {
    Ok(HttpResponse::Ok().json(chain_view(&admin, &id).await?))
}

pub(crate) fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad(format!("query string: {e}")))
}

/// Parses `{chain}/{port}/{channel}/{sequence}` path parts into a packet key (400 with the reason otherwise).
pub(crate) fn packet_key(parts: (String, String, String, String)) -> Result<PacketKey, ApiError> {
    let (chain, port, channel, sequence) = parts;
    Ok(PacketKey {
        src_chain: ChainId::new(chain).map_err(|e| ApiError::bad(format!("chain: {e}")))?,
        src_port: PortId::new(port).map_err(|e| ApiError::bad(format!("port: {e}")))?,
        src_channel: ChannelId::new(channel).map_err(|e| ApiError::bad(format!("channel: {e}")))?,
        sequence: Sequence(
            sequence
                .parse()
                .map_err(|_| ApiError::bad(format!("sequence: {sequence:?} is not a number")))?,
        ),
    })
}

async fn packet(
    admin: web::Data<Admin>,
    parts: web::Path<(String, String, String, String)>,
) -> ApiResult {
    let key = packet_key(parts.into_inner())?;
    let record = admin
        .store
        .packet(&key)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no record of packet {key}")))?;
    Ok(HttpResponse::Ok().json(views::timeline(&record)))
}

async fn dead_letters(admin: web::Data<Admin>) -> ApiResult {
    let records = admin
        .store
        .dead_letters()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let out: Vec<_> = records.iter().map(views::summary).collect();
    Ok(HttpResponse::Ok().json(json!({ "dead_letters": out })))
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The address a request came from, as the socket says (never a forwarding header, which the client writes).
fn source(req: &HttpRequest) -> std::net::IpAddr {
    req.peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

fn admit(admin: &Admin, req: &HttpRequest) -> Result<(), ApiError> {
    let token = auth::bearer(header(req, "authorization"));
    lock(&admin.gate)
        .admit(
            source(req),
            token,
            header(req, AUTHORISATION_HEADER),
            Instant::now(),
        )
        .map_err(ApiError::from)
}

async fn retry_dead_letter(
    admin: web::Data<Admin>,
    req: HttpRequest,
    parts: web::Path<(String, String, String, String)>,
) -> ApiResult {
    let key = packet_key(parts.into_inner())?;
    admit(&admin, &req)?;
    match admin.coordinator.send(RetryPacket(key.clone())).await {
        Ok(Ok(())) => Ok(HttpResponse::Accepted().json(json!({ "retrying": key.to_string() }))),
        Ok(Err(e @ (RetryError::NotDead(_) | RetryError::NoRoute(_)))) => {
            Err(ApiError::not_found(e.to_string()))
        }
        Ok(Err(e)) => Err(ApiError::internal(e.to_string())),
        Err(e) => Err(ApiError::internal(format!("coordinator: {e}"))),
    }
}

fn random16() -> Result<[u8; 16], ApiError> {
    use std::io::Read;
    let mut out = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(out)
}

async fn authorise(admin: web::Data<Admin>, req: HttpRequest) -> ApiResult {
    let token = auth::bearer(header(&req, "authorization"));
    let random = random16()?;
    let nonce = lock(&admin.gate).issue(source(&req), token, random, Instant::now())?;
    Ok(HttpResponse::Created().json(json!({
        "authorisation": nonce,
        "header": AUTHORISATION_HEADER,
        "expires_in_secs": auth::AUTHORISATION_TTL.as_secs(),
    })))
}

/// Reads `POST /clear`'s body: a clearing request whose sequence list, if given, holds 1 to
/// [`ops::MAX_CLEAR_SEQUENCES`] sequences, and whose chain is a chain id.
fn parse_clear(body: &[u8]) -> Result<(ClearRequest, ChainId), ApiError> {
    let request: ClearRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("body: {e}")))?;
    if let Some(s) = &request.sequences {
        if s.is_empty() {
            return Err(ApiError::bad(
                "sequences: an empty list clears nothing; omit it to clear every pending packet",
            ));
        }
        if s.len() > ops::MAX_CLEAR_SEQUENCES {
            return Err(ApiError::bad(format!(
                "sequences: more than {} in one request; clear in several requests",
                ops::MAX_CLEAR_SEQUENCES
            )));
        }
    }
    let chain =
        ChainId::new(request.chain.clone()).map_err(|e| ApiError::bad(format!("chain: {e}")))?;
    Ok((request, chain))
}

async fn clear(admin: web::Data<Admin>, req: HttpRequest, body: web::Bytes) -> ApiResult {
    let (request, chain) = parse_clear(&body)?;
    if !admin.config.chains.iter().any(|c| c.id == chain) {
        return Err(ApiError::not_found(format!(
            "no chain {:?} is configured",
            request.chain
        )));
    }
    let relayed = |routes: &Routes| {
        routes
            .from_source(&chain, &request.port, &request.channel)
            .is_some()
    };
    // Paths that joined after the start (their node did not answer then) are relayed too.
    if !relayed(&admin.routes) && !relayed(&admin.pending_paths.joined()) {
        return Err(ApiError::not_found(format!(
            "{}/{}/{} is not a relayed channel",
            request.chain, request.port, request.channel
        )));
    }
    admit(&admin, &req)?;
    let (op, new) = lock(&admin.ops).begin(request, now_ms());
    if new {
        admin
            .hub
            .publish(AdminEvent::Operation(Box::new(op.clone())));
        actix_web::rt::spawn(run_clear(admin.clone().into_inner(), op.clone()));
    }
    Ok(HttpResponse::Accepted().json(json!({
        "operation_id": op.id,
        "status": op.status,
        "created": new,
    })))
}

fn finish(admin: &Admin, op: Operation) {
    let result = match op.status {
        OpStatus::Succeeded => "succeeded",
        OpStatus::PartiallyFailed => "partially_failed",
        OpStatus::Failed => "failed",
        OpStatus::Running => "running",
    };
    admin
        .metrics
        .families()
        .clear_operations_total
        .with_label_values(&[result])
        .inc();
    if lock(&admin.ops).set(op.clone()) {
        admin.hub.publish(AdminEvent::Operation(Box::new(op)));
    }
}

async fn run_clear(admin: Arc<Admin>, mut op: Operation) {
    let request = op.request.clone();
    let Ok(chain) = ChainId::new(request.chain.clone()) else {
        return;
    };
    let sent = admin
        .coordinator
        .send(ClearPackets {
            correlation: CorrelationId::fresh(),
            chain: chain.clone(),
            port: request.port.clone(),
            channel: request.channel.clone(),
            sequences: request.sequences.clone(),
        })
        .await;
    let report: ClearReport = match sent {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            op.status = OpStatus::Failed;
            op.error = Some(e.to_string());
            op.updated_ms = now_ms();
            return finish(&admin, op);
        }
        Err(e) => {
            op.status = OpStatus::Failed;
            op.error = Some(format!("coordinator: {e}"));
            op.updated_ms = now_ms();
            return finish(&admin, op);
        }
    };
    admin
        .metrics
        .families()
        .packets_cleared_total
        .with_label_values(&[&request.chain, &request.channel])
        .inc_by(report.started as u64);
    let (Ok(port), Ok(channel)) = (
        PortId::new(request.port.clone()),
        ChannelId::new(request.channel.clone()),
    ) else {
        return;
    };
    let started = Instant::now();
    loop {
        let give_up = started.elapsed() >= OPERATION_DEADLINE;
        let mut records: BTreeMap<u64, Option<PacketRecord>> = BTreeMap::new();
        for seq in report.unreceived.iter().chain(report.unacknowledged.iter()) {
            let key = PacketKey {
                src_chain: chain.clone(),
                src_port: port.clone(),
                src_channel: channel.clone(),
                sequence: Sequence(*seq),
            };
            records.insert(*seq, admin.store.packet(&key).ok().flatten());
        }
        let next = ops::progress(op.clone(), &report, &records, give_up, now_ms());
        if next.status != OpStatus::Running {
            return finish(&admin, next);
        }
        if next != op && lock(&admin.ops).set(next.clone()) {
            admin
                .hub
                .publish(AdminEvent::Operation(Box::new(next.clone())));
        }
        op = next;
        tokio::time::sleep(OPERATION_POLL).await;
    }
}

async fn operations(admin: web::Data<Admin>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "operations": lock(&admin.ops).all() }))
}

async fn operation(admin: web::Data<Admin>, id: web::Path<String>) -> ApiResult {
    let op = lock(&admin.ops)
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no operation {:?}", id.as_str())))?;
    Ok(HttpResponse::Ok().json(op))
}

async fn events(admin: web::Data<Admin>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(admin.hub.sse())
}

/// Sets the scrape-time views of stored state and actors, then encodes every family.
async fn metrics(admin: web::Data<Admin>) -> ApiResult {
    if !admin.telemetry {
        return Err(ApiError::not_found(
            "metrics are disabled ([telemetry] enabled = false)",
        ));
    }
    let f = admin.metrics.families();
    // From the per-channel counts the store keeps on every write: no record is read.
    let mut by_state: HashMap<(String, String, String), i64> = HashMap::new();
    let mut backlog: HashMap<(String, String), (i64, u64)> = HashMap::new();
    let joined = admin.pending_paths.joined();
    for route in admin.routes.all().chain(joined.all()) {
        backlog.insert((route.src.to_string(), route.src_channel.clone()), (0, 0));
    }
    let summaries = admin
        .store
        .summaries()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    for (channel, summary) in &summaries {
        for (state, n) in &summary.states {
            *by_state
                .entry((
                    channel.chain.clone(),
                    channel.channel.clone(),
                    state.to_string(),
                ))
                .or_default() += gauge(*n);
        }
        let pending = summary.pending();
        if pending == 0 {
            continue;
        }
        let oldest = admin
            .store
            .oldest_pending(channel)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .unwrap_or(0);
        let entry = backlog
            .entry((channel.chain.clone(), channel.channel.clone()))
            .or_insert((0, 0));
        entry.0 += gauge(pending);
        if entry.1 == 0 || oldest < entry.1 {
            entry.1 = oldest;
        }
    }
    f.packets.reset();
    for ((chain, channel, state), n) in by_state {
        f.packets
            .with_label_values(&[&chain, &channel, &state])
            .set(n);
    }
    for ((chain, channel), (n, oldest)) in backlog {
        f.backlog_packets
            .with_label_values(&[&chain, &channel])
            .set(n);
        f.backlog_oldest_sequence
            .with_label_values(&[&chain, &channel])
            .set(i64::try_from(oldest).unwrap_or(i64::MAX));
    }
    for status in chain_statuses(&admin).await {
        let link = admin
            .links
            .iter()
            .find(|(id, _)| id.as_str() == status.chain)
            .map(|(_, l)| l);
        for child in &status.children {
            let kind = views::kind_name(child.kind);
            Metrics::raise_to(
                &f.actor_restarts_total
                    .with_label_values(&[&status.chain, &kind]),
                child.restarts,
            );
            if let Some(load) = link.and_then(|l| l.load(child.kind)) {
                f.actor_mailbox_depth
                    .with_label_values(&[&status.chain, &kind])
                    .set(gauge(load.mailbox_depth));
            }
        }
        f.actor_mailbox_depth
            .with_label_values(&[&status.chain, "chain_supervisor"])
            .set(gauge(status.load.mailbox_depth));
    }
    // The actors of no chain carry an empty chain label.
    for (kind, meter) in [
        (
            views::kind_name(ActorKind::RelayCoordinator),
            &admin.meters.coordinator,
        ),
        ("client_keeper".to_owned(), &admin.meters.client_keeper),
        (
            "misbehaviour_watcher".to_owned(),
            &admin.meters.misbehaviour_watcher,
        ),
    ] {
        f.actor_mailbox_depth
            .with_label_values(&["", &kind])
            .set(gauge(meter.load().mailbox_depth));
    }
    if let Ok(c) = admin.coordinator.send(QueryCoordinator).await {
        for chain in admin.links.keys() {
            let depth = c
                .builder_mailboxes
                .iter()
                .find(|(id, _)| id == chain.as_str())
                .map_or(0, |(_, n)| *n);
            f.actor_mailbox_depth
                .with_label_values(&[chain.as_str(), "packet_builder"])
                .set(gauge(depth));
        }
        for (chain, h) in c.heights {
            f.chain_height
                .with_label_values(&[&chain])
                .set(i64::try_from(h).unwrap_or(i64::MAX));
        }
        f.packet_builders
            .set(i64::try_from(c.builders).unwrap_or(i64::MAX));
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&admin.registry.gather(), &mut out)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out))
}

/// A count as a Prometheus gauge value.
fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Publishes an event for every supervised restart and keeps the restart counter current.
fn spawn_restart_watch(admin: Arc<Admin>) {
    actix::spawn(async move {
        let mut seen: HashMap<String, u64> = HashMap::new();
        loop {
            // (id, chain, kind, restarts, last error) of every supervised actor; the service actors have no chain.
            let mut children: Vec<(String, String, String, u64, Option<String>)> = Vec::new();
            for status in chain_statuses(&admin).await {
                for child in &status.children {
                    let kind = views::kind_name(child.kind);
                    children.push((
                        format!("{}/{kind}", status.chain),
                        status.chain.clone(),
                        kind,
                        child.restarts,
                        child.last_error.clone(),
                    ));
                }
            }
            if let Ok(services) = admin.services.send(QueryServiceStatus).await {
                for (child, _) in [services.client_keeper, services.misbehaviour_watcher] {
                    let kind = views::kind_name(child.kind);
                    children.push((
                        kind.clone(),
                        String::new(),
                        kind,
                        child.restarts,
                        child.last_error,
                    ));
                }
            }
            for (id, chain, kind, restarts, last_error) in children {
                let before = seen.get(&id).copied().unwrap_or(0);
                if restarts > before {
                    Metrics::raise_to(
                        &admin
                            .metrics
                            .families()
                            .actor_restarts_total
                            .with_label_values(&[&chain, &kind]),
                        restarts,
                    );
                    admin.hub.publish(AdminEvent::ActorRestarted {
                        actor: id.clone(),
                        chain,
                        restarts,
                        last_error,
                    });
                }
                seen.insert(id, restarts);
            }
            tokio::time::sleep(RESTART_POLL).await;
        }
    });
}
