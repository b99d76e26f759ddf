//! Prometheus scrapes, with the gauges read from the store and the actors at scrape time, and the watch that
//! turns supervised restarts into events and counter increments.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use prometheus::{Encoder, TextEncoder};
use relayd_actors::metrics::Metrics;
use relayd_messages::{ActorKind, QueryCoordinator, QueryServiceStatus};

use super::api::{ApiError, ApiResult};
use super::events::AdminEvent;
use super::status::chain_statuses;
use super::views;
use super::{Admin, RESTART_POLL};

/// Sets the scrape-time views of stored state and actors, then encodes every family.
pub(super) async fn metrics(admin: web::Data<Admin>) -> ApiResult {
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
    // Packets observed but not yet given records wait in the coordinator's intake log: a backlog all the same.
    let coordinator = admin.coordinator.send(QueryCoordinator).await.ok();
    for lane in coordinator.iter().flat_map(|c| &c.intake) {
        let entry = backlog
            .entry((lane.chain.clone(), lane.channel.clone()))
            .or_insert((0, 0));
        entry.0 += gauge(u64::try_from(lane.packets).unwrap_or(u64::MAX));
        if entry.1 == 0 || lane.lowest_sequence < entry.1 {
            entry.1 = lane.lowest_sequence;
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
    // Each signer lane's balance and funds alarm, as its TxSubmitter last read and published them (the admin
    // prober reads no further keys' balances itself).
    for (chain, link) in admin.links.iter() {
        for lane in link.lanes() {
            let balance = lane.balance.as_deref().and_then(|b| b.parse::<u128>().ok());
            if let (Some(b), false) = (balance, lane.denom.is_empty()) {
                f.wallet_balance
                    .with_label_values(&[chain.as_str(), lane.denom.as_str(), lane.key.as_str()])
                    .set(i64::try_from(b).unwrap_or(i64::MAX));
            }
            if lane.min_balance.is_some() {
                f.wallet_low
                    .with_label_values(&[chain.as_str(), lane.key.as_str()])
                    .set(i64::from(lane.low));
            }
        }
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
    if let Some(c) = coordinator {
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
        f.packet_builders_waiting
            .set(i64::try_from(c.waiting_builders).unwrap_or(i64::MAX));
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
pub(super) fn spawn_restart_watch(admin: Arc<Admin>) {
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
