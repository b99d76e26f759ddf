//! What every admin handler shares: the API error (a status and a reason, sent as JSON), request parsing, lock
//! helpers that survive a poisoned lock, and the gate in front of the mutating endpoints.

use std::sync::Mutex;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use relayd_messages::{ChainId, ChannelId, PacketKey, PortId, Sequence};
use serde_json::json;

use super::auth::{self, Denied};
use super::{Admin, AUTHORISATION_HEADER};

/// An API error: a status and a reason, sent as `{"error": reason}`.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ApiError {
    pub(super) status: StatusCode,
    reason: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            retry_after: None,
        }
    }
    pub(super) fn bad(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
    pub(super) fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }
    pub(super) fn internal(reason: impl Into<String>) -> Self {
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

pub(super) type ApiResult = Result<HttpResponse, ApiError>;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

pub(super) fn lock_read<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
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

pub(super) fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The address a request came from, as the socket says (never a forwarding header, which the client writes).
pub(super) fn source(req: &HttpRequest) -> std::net::IpAddr {
    req.peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

pub(super) fn admit(admin: &Admin, req: &HttpRequest) -> Result<(), ApiError> {
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
