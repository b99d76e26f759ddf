//! A CometBFT v0.38-compatible RPC server (JSON-RPC over HTTP, URI GET, JSON-RPC over WebSocket with event
//! subscriptions) in front of a devnet node, so relayd talks to devnet exactly as it talks to a real chain.
//!
//! The chain is reached only through [`NodeView`]; [`serve`] (or [`spawn`]) runs the server on a listener.

pub mod dialect;
mod error;
mod methods;
pub mod node;
mod params;
mod query;
mod ws;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, Query as UriQuery, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use dialect::Dialect;
pub use error::RpcError;
pub use methods::RpcConfig;
pub use node::{BlockResults, NodeEvent, NodeView, TxRecord};
pub use query::EventMap;

use error::{failure, success};
use methods::Ctx;
use params::Params;

/// The id CometBFT puts in answers to URI requests, which carry none.
const URI_REQUEST_ID: i64 = -1;

#[derive(Clone)]
struct AppState {
    ctx: Ctx,
    shutdown: watch::Receiver<bool>,
}

/// Serves RPC on `listener` with the default configuration until the process ends.
pub async fn serve(listener: TcpListener, node: Arc<dyn NodeView>) -> io::Result<()> {
    serve_with(listener, node, RpcConfig::default(), std::future::pending()).await
}

/// Serves RPC on `listener` until `shutdown` completes; open WebSocket connections are closed then too.
pub async fn serve_with(
    listener: TcpListener,
    node: Arc<dyn NodeView>,
    config: RpcConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let body_limit = config.max_body_bytes;
    let state = AppState {
        ctx: Ctx { node, config },
        shutdown: stop_rx,
    };
    let app = Router::new()
        .route("/", any(json_rpc))
        .route("/v1", any(json_rpc))
        .route("/websocket", get(websocket))
        .route("/v1/websocket", get(websocket))
        .route("/:method", any(uri_call))
        .route("/v1/:method", any(uri_call))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // WebSocket connections are upgraded out of the HTTP server's reach; tell them directly.
            let _ = stop_tx.send(true);
        })
        .await
}

/// A server started by [`spawn`].
#[derive(Debug)]
pub struct RpcServerHandle {
    /// Where the server listens (useful with port 0).
    pub local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl RpcServerHandle {
    /// The `http://` URL of the JSON-RPC endpoint.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The `ws://` URL of the WebSocket endpoint.
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/websocket", self.local_addr)
    }

    /// Stops accepting requests, closes WebSockets and waits for the server to finish.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .map_err(|e| io::Error::other(format!("rpc server task failed: {e}")))?
    }
}

/// Starts serving on `listener` in a background task.
pub fn spawn(
    listener: TcpListener,
    node: Arc<dyn NodeView>,
    config: RpcConfig,
) -> io::Result<RpcServerHandle> {
    let local_addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(listener, node, config, async move {
        // A dropped handle stops the server as well.
        let _ = stopped.await;
    }));
    Ok(RpcServerHandle {
        local_addr,
        stop: Some(stop),
        task,
    })
}

/// One decoded JSON-RPC request.
pub(crate) struct Call {
    pub id: Value,
    pub method: String,
    pub params: Option<Value>,
}

impl Call {
    /// Reads a request object: `Ok(None)` for a notification (no id), `Err` with the ready error response when the
    /// object is not a request.
    pub(crate) fn from_value(v: Value) -> Result<Option<Self>, Value> {
        let Value::Object(mut obj) = v else {
            let err = RpcError::InvalidRequest(format!("request is not an object: {v}"));
            return Err(failure(&Value::Null, &err));
        };
        let id = match obj.remove("id") {
            None | Some(Value::Null) => return Ok(None),
            Some(id @ Value::String(_)) => id,
            Some(Value::Number(n)) if n.is_i64() => Value::Number(n),
            Some(other) => {
                let err = RpcError::InvalidRequest(format!(
                    "json-rpc ID ({other}) must be a string or a whole number"
                ));
                return Err(failure(&Value::Null, &err));
            }
        };
        let method = match obj.remove("method") {
            Some(Value::String(m)) => m,
            _ => {
                let err = RpcError::InvalidRequest("request has no method".into());
                return Err(failure(&id, &err));
            }
        };
        Ok(Some(Self {
            id,
            method,
            params: obj.remove("params"),
        }))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Runs one request over HTTP; `None` for a notification.
async fn http_call(ctx: &Ctx, v: Value) -> Option<Value> {
    let call = match Call::from_value(v) {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(resp) => return Some(resp),
    };
    let Some(spec) = params::spec(&call.method).filter(|s| !s.ws_only) else {
        return Some(failure(&call.id, &RpcError::MethodNotFound));
    };
    let result = match Params::from_json(spec, call.params.as_ref()) {
        Ok(p) => ctx.call(spec.name, &p).await,
        Err(e) => Err(e),
    };
    Some(match result {
        Ok(v) => success(&call.id, v),
        Err(e) => failure(&call.id, &e),
    })
}

async fn json_rpc(State(state): State<AppState>, body: Bytes) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        return endpoint_list();
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
        Ok(other) => {
            let err = RpcError::Parse(format!(
                "error unmarshaling request: not a request: {other}"
            ));
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &failure(&Value::Null, &err),
            );
        }
        Err(e) => {
            let err = RpcError::Parse(format!("error unmarshaling request: {e}"));
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &failure(&Value::Null, &err),
            );
        }
    };
    match parsed {
        Value::Array(items) => {
            if items.is_empty() {
                let err = RpcError::InvalidRequest("empty batch".into());
                return json_response(StatusCode::OK, &failure(&Value::Null, &err));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(resp) = http_call(&state.ctx, item).await {
                    out.push(resp);
                }
            }
            if out.is_empty() {
                return StatusCode::OK.into_response();
            }
            json_response(StatusCode::OK, &Value::Array(out))
        }
        single => match http_call(&state.ctx, single).await {
            Some(resp) => json_response(StatusCode::OK, &resp),
            None => StatusCode::OK.into_response(),
        },
    }
}

async fn uri_call(State(state): State<AppState>, Path(method): Path<String>, uri: Uri) -> Response {
    let id = Value::from(URI_REQUEST_ID);
    let Some(spec) = params::spec(&method).filter(|s| !s.ws_only) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &failure(&id, &RpcError::MethodNotFound),
        );
    };
    let pairs = match UriQuery::<Vec<(String, String)>>::try_from_uri(&uri) {
        Ok(UriQuery(pairs)) => pairs,
        Err(e) => {
            let err =
                RpcError::InvalidParams(format!("error converting http params to arguments: {e}"));
            return json_response(StatusCode::INTERNAL_SERVER_ERROR, &failure(&id, &err));
        }
    };
    let result = match Params::from_uri(spec, &pairs) {
        Ok(p) => state.ctx.call(spec.name, &p).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => json_response(StatusCode::OK, &success(&id, v)),
        Err(e) => json_response(StatusCode::INTERNAL_SERVER_ERROR, &failure(&id, &e)),
    }
}

async fn websocket(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let limit = state.ctx.config.max_body_bytes;
    upgrade
        .max_message_size(limit)
        .on_upgrade(move |socket| ws::run(socket, state.ctx, state.shutdown))
}

/// What an empty request to `/` returns: the served methods and their arguments, like CometBFT's index page.
fn endpoint_list() -> Response {
    let mut html = String::from("<html><body><br>Available endpoints:<br>");
    for spec in params::METHODS.iter().filter(|s| !s.ws_only) {
        let args: Vec<String> = spec.args.iter().map(|(n, _)| format!("{n}=_")).collect();
        if args.is_empty() {
            html.push_str(&format!("<a href=\"/{0}\">/{0}</a><br>", spec.name));
        } else {
            html.push_str(&format!("/{}?{}<br>", spec.name, args.join("&")));
        }
    }
    html.push_str("</body></html>");
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], html).into_response()
}
