//! The endpoints that change what the relayer does: one-time authorisations, dead-letter retries and clearing
//! operations, which run in the background and are followed through the store until their packets finish.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use relayd_actors::routes::Routes;
use relayd_actors::store::{now_ms, PacketRecord};
use relayd_messages::{
    ChainId, ChannelId, ClearPackets, ClearReport, CorrelationId, PacketKey, PortId, RetryError,
    RetryPacket, Sequence,
};
use serde_json::json;

use super::api::{admit, header, lock, packet_key, source, ApiError, ApiResult};
use super::events::AdminEvent;
use super::ops::{self, ClearRequest, OpStatus, Operation};
use super::{auth, Admin, AUTHORISATION_HEADER, OPERATION_DEADLINE, OPERATION_POLL};

pub(super) async fn retry_dead_letter(
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

pub(super) async fn authorise(admin: web::Data<Admin>, req: HttpRequest) -> ApiResult {
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
pub(super) fn parse_clear(body: &[u8]) -> Result<(ClearRequest, ChainId), ApiError> {
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

pub(super) async fn clear(
    admin: web::Data<Admin>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult {
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
        for seq in report
            .unreceived
            .iter()
            .chain(report.unacknowledged.iter())
            .chain(report.skipped.iter())
        {
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

pub(super) async fn operations(admin: web::Data<Admin>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "operations": lock(&admin.ops).all() }))
}

pub(super) async fn operation(admin: web::Data<Admin>, id: web::Path<String>) -> ApiResult {
    let op = lock(&admin.ops)
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no operation {:?}", id.as_str())))?;
    Ok(HttpResponse::Ok().json(op))
}

/// `POST /config/reload`: the service re-reads its configuration file and applies it (as on `SIGHUP`). 200 with
/// what changed; 422 naming every problem by file, line and key when the file is invalid or changes what needs a
/// restart; 503 when a path could not be resolved or the service does not take reloads. A refusal changes
/// nothing.
pub(super) async fn reload_config(admin: web::Data<Admin>, req: HttpRequest) -> ApiResult {
    admit(&admin, &req)?;
    let requests = lock(&admin.reloads).clone();
    let Some(requests) = requests else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "this process does not reload its configuration",
        ));
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let stopping = || {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "the service is stopping",
        )
    };
    requests.send(reply).await.map_err(|_| stopping())?;
    match answer.await.map_err(|_| stopping())? {
        Ok(report) => {
            Ok(HttpResponse::Ok().json(json!({ "status": "reloaded", "changes": report })))
        }
        Err(refused) if refused.is_invalid() => {
            Ok(HttpResponse::UnprocessableEntity().json(refused.to_json()))
        }
        Err(refused) => Ok(HttpResponse::ServiceUnavailable().json(refused.to_json())),
    }
}
