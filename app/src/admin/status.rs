//! The read-only endpoints: health, version, the actor tree, chains, misbehaviour, packet timelines, dead
//! letters and the live event stream. Each asks the actors by message or reads the store.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use relayd_actors::chain_link::ChainLink;
use relayd_actors::store::now_ms;
use relayd_messages::{
    ChainStatus, ClientReport, QueryBuilders, QueryChainStatus, QueryClientHealth,
    QueryCoordinator, QueryMisbehaviour, QueryServiceStatus,
};
use serde_json::json;

use super::api::{lock_read, packet_key, ApiError, ApiResult};
use super::chains::ChainProbe;
use super::views::{self, ActorNode, BuilderView, ChainView};
use super::Admin;

pub(super) async fn chain_statuses(admin: &Admin) -> Vec<ChainStatus> {
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

pub(super) async fn health(admin: web::Data<Admin>) -> ApiResult {
    let coordinator = admin
        .coordinator
        .send(QueryCoordinator)
        .await
        .map_err(|e| ApiError::internal(format!("coordinator: {e}")))?;
    let (running, waiting, max) = (
        coordinator.builders,
        coordinator.waiting_builders,
        coordinator.max_builders,
    );
    let halted_clients: Vec<serde_json::Value> = coordinator
        .halted_clients
        .iter()
        .map(|(host, client, reason)| json!({ "host": host, "client": client, "reason": reason }))
        .collect();
    let heights: HashMap<String, u64> = coordinator.heights.into_iter().collect();
    let inconsistent: HashMap<String, String> = coordinator.inconsistent.into_iter().collect();
    let mut chains = Vec::new();
    for status in chain_statuses(&admin).await {
        let running = status.children.iter().all(|c| c.running) && !status.children.is_empty();
        let link = admin
            .links
            .iter()
            .find(|(id, _)| id.as_str() == status.chain)
            .map(|(_, l)| l);
        let linked = link.is_some_and(ChainLink::is_complete);
        // relayd refused what the node served (a light-client block or a proof that does not verify).
        let verifies = link.is_none_or(|l| !l.verification().alarm);
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
        let reason = if let Some(why) = inconsistent.get(&status.chain) {
            Some(why.as_str())
        } else if !verifies {
            Some("verification alarm: the node served what does not verify")
        } else if !node_answers {
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
        // Signers below min_balance: relaying goes on (on the other lanes, or on them when all are low), so they
        // warn without making the chain not ready.
        let warnings: Vec<String> = link
            .map(ChainLink::lanes)
            .unwrap_or_default()
            .iter()
            .filter(|l| l.low)
            .map(|l| {
                let what = if l.drained {
                    "its lane is drained"
                } else {
                    "every signer is low, so it is still used"
                };
                format!(
                    "signer {} ({}) holds {}{} < min_balance {}{}: {what}",
                    l.key,
                    l.address,
                    l.balance.as_deref().unwrap_or("?"),
                    l.denom,
                    l.min_balance.as_deref().unwrap_or("?"),
                    l.denom
                )
            })
            .collect();
        chains.push(json!({
            "chain": status.chain,
            "warnings": warnings,
            "ready": reason.is_none(),
            "reason": reason,
            "degraded": status.degraded,
            "actors_running": running,
            "node_answers": node_answers,
            "consistent": !inconsistent.contains_key(&status.chain),
            "verifies": verifies,
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
        "halted_clients": halted_clients,
        "builders": {
            "running": running,
            "waiting": waiting,
            "max": max,
        },
    })))
}

pub(super) async fn version(admin: web::Data<Admin>) -> HttpResponse {
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

pub(super) async fn misbehaviour(admin: web::Data<Admin>) -> ApiResult {
    let status = admin
        .misbehaviour
        .send(QueryMisbehaviour)
        .await
        .map_err(|e| ApiError::internal(format!("misbehaviour watcher: {e}")))?;
    Ok(HttpResponse::Ok().json(status))
}

pub(super) async fn actors(admin: web::Data<Admin>) -> ApiResult {
    let nodes = actor_nodes(&admin).await?;
    Ok(HttpResponse::Ok().json(json!({ "actors": nodes })))
}

pub(super) async fn actor(admin: web::Data<Admin>, id: web::Path<String>) -> ApiResult {
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
    let link = admin
        .links
        .iter()
        .find(|(id, _)| id.as_str() == chain)
        .map(|(_, l)| l);
    let breaker = link.map(ChainLink::breaker);
    // Each RPC endpoint's standing, for either chain kind.
    let endpoints = admin
        .rpc_pools
        .iter()
        .find(|(id, _)| id.as_str() == chain)
        .map(|(_, pool)| pool.view());
    let verification = link.map(ChainLink::verification);
    // Every signing key's lane: its balance, whether it is drained for low funds and the work it holds.
    let signers: Vec<serde_json::Value> = link
        .map(ChainLink::lanes)
        .unwrap_or_default()
        .into_iter()
        .map(|lane| {
            let state = lane.state();
            let mut v = serde_json::to_value(lane).unwrap_or_default();
            v["state"] = json!(state);
            v
        })
        .collect();
    Ok(json!({
        "id": chain,
        "type": format!("{:?}", config.chain_type).to_lowercase(),
        "rpc_addr": config.primary_rpc().ok().map(ToString::to_string),
        "rpc_endpoints": endpoints,
        "height": height,
        "circuit_breaker": breaker,
        "verification": verification,
        "degraded": degraded,
        "rpc": probe.as_ref().map(|p| &p.rpc),
        "clients": probe.as_ref().map(|p| &p.clients),
        "client_health": health,
        "wallet": probe.as_ref().map(|p| &p.wallet),
        "signers": signers,
        "probed_ms": probe.as_ref().map(|p| p.probed_ms),
    }))
}

pub(super) async fn chains_all(admin: web::Data<Admin>) -> ApiResult {
    let mut out = Vec::new();
    for c in &admin.config.chains {
        out.push(chain_view(&admin, c.id.as_str()).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "chains": out })))
}

pub(super) async fn chain_one(admin: web::Data<Admin>, id: web::Path<String>) -> ApiResult {
    Ok(HttpResponse::Ok().json(chain_view(&admin, &id).await?))
}

pub(super) async fn packet(
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

pub(super) async fn dead_letters(admin: web::Data<Admin>) -> ApiResult {
    let records = admin
        .store
        .dead_letters()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let out: Vec<_> = records.iter().map(views::summary).collect();
    Ok(HttpResponse::Ok().json(json!({ "dead_letters": out })))
}

pub(super) async fn events(admin: web::Data<Admin>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(admin.hub.sse())
}
