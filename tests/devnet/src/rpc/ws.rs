//! JSON-RPC over WebSocket (`/websocket`): ordinary method calls plus `subscribe` / `unsubscribe` /
//! `unsubscribe_all`, pushing `NewBlock` and `Tx` events in CometBFT v0.38's frame shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::{Message, WebSocket};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{json, Map, Value};
use tendermint_rpc::endpoint::block::v0_38::DialectBlock;
use tendermint_rpc::query::Query;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::dialect::Dialect;
use super::error::{failure, success, RpcError};
use super::methods::{parse_query, Ctx};
use super::node::NodeEvent;
use super::params::{self, Params};
use super::query::{self, EventMap};

/// Frames waiting to be written to one connection; a full queue makes subscription forwarders wait, and a
/// forwarder that waits too long lags on the node's channel and is cancelled as a slow client.
const OUTBOX: usize = 256;

type Subscriptions = Arc<Mutex<HashMap<String, AbortHandle>>>;

/// The write side of a connection, shared by the reader, request tasks and subscription forwarders.
#[derive(Clone)]
struct Outbox(mpsc::Sender<Message>);

impl Outbox {
    /// Queues a JSON-RPC message; false once the connection is gone.
    async fn push(&self, v: Value) -> bool {
        self.0.send(Message::Text(v.to_string())).await.is_ok()
    }
}

/// Serves one upgraded WebSocket connection until the client leaves or the server shuts down.
pub(crate) async fn run(socket: WebSocket, ctx: Ctx, mut shutdown: watch::Receiver<bool>) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUTBOX);
    let out = Outbox(out_tx);
    let subs: Subscriptions = Arc::default();

    // Writing runs on its own task so a full outbox can never stall reading (and reading never stalls writing).
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });

    loop {
        tokio::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                handle_text(&text, &ctx, &subs, &out).await;
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    let _ = out.0.send(Message::Close(None)).await;
                    break;
                }
            }
        }
    }
    cancel_all(&subs);
    drop(out);
    // The writer ends once every queued frame is out (in-flight calls still hold the outbox until they answer).
    let _ = writer.await;
}

/// Stops every subscription of the connection.
fn cancel_all(subs: &Subscriptions) {
    let handles: Vec<AbortHandle> = subs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain()
        .map(|(_, h)| h)
        .collect();
    for h in handles {
        h.abort();
    }
}

async fn handle_text(text: &str, ctx: &Ctx, subs: &Subscriptions, out: &Outbox) {
    let parsed: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let err = RpcError::Parse(format!("error unmarshaling request: {e}"));
            out.push(failure(&Value::Null, &err)).await;
            return;
        }
    };
    let requests = match parsed {
        Value::Array(items) => items,
        other => vec![other],
    };
    for req in requests {
        handle_request(req, ctx, subs, out).await;
    }
}

async fn handle_request(req: Value, ctx: &Ctx, subs: &Subscriptions, out: &Outbox) {
    let call = match super::Call::from_value(req) {
        Ok(Some(call)) => call,
        // A notification gets no answer.
        Ok(None) => return,
        Err(resp) => {
            out.push(resp).await;
            return;
        }
    };
    let Some(spec) = params::spec(&call.method) else {
        out.push(failure(&call.id, &RpcError::MethodNotFound)).await;
        return;
    };
    let p = match Params::from_json(spec, call.params.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            out.push(failure(&call.id, &e)).await;
            return;
        }
    };
    let reply = match spec.name {
        "subscribe" => {
            // On success `subscribe` has queued its own reply, ahead of any event.
            if let Err(e) = subscribe(&call.id, &p, ctx, subs, out).await {
                out.push(failure(&call.id, &e)).await;
            }
            return;
        }
        "unsubscribe" => unsubscribe(&p, subs),
        "unsubscribe_all" => {
            cancel_all(subs);
            Ok(json!({}))
        }
        _ => {
            // Other calls run on their own task so a slow one (broadcast_tx_commit) never stalls the connection.
            let (ctx, out, id) = (ctx.clone(), out.clone(), call.id);
            tokio::spawn(async move {
                let resp = match ctx.call(spec.name, &p).await {
                    Ok(v) => success(&id, v),
                    Err(e) => failure(&id, &e),
                };
                out.push(resp).await;
            });
            return;
        }
    };
    let resp = match reply {
        Ok(v) => success(&call.id, v),
        Err(e) => failure(&call.id, &e),
    };
    out.push(resp).await;
}

/// Registers a subscription. On success the reply is queued before the forwarder can queue anything, so the
/// client always sees the subscribe result before the first event.
async fn subscribe(
    id: &Value,
    p: &Params,
    ctx: &Ctx,
    subs: &Subscriptions,
    out: &Outbox,
) -> Result<(), RpcError> {
    let raw = p.string("query").unwrap_or_default();
    let query = parse_query(&raw)?;
    let key = query.to_string();
    // Reserve the reply's slot first: the lock below must not be held across an await.
    let permit = out
        .0
        .reserve()
        .await
        .map_err(|_| RpcError::internal("connection closed"))?;
    let mut map = subs.lock().unwrap_or_else(PoisonError::into_inner);
    if map.contains_key(&key) {
        return Err(RpcError::internal("already subscribed"));
    }
    if map.len() >= ctx.config.max_subscriptions_per_client {
        return Err(RpcError::internal(format!(
            "max_subscriptions_per_client {} reached",
            ctx.config.max_subscriptions_per_client
        )));
    }
    let events = ctx.node.subscribe();
    permit.send(Message::Text(success(id, json!({})).to_string()));
    let task = tokio::spawn(forward(
        ctx.config.dialect,
        events,
        query,
        raw,
        key.clone(),
        id.clone(),
        out.clone(),
        subs.clone(),
    ));
    map.insert(key, task.abort_handle());
    Ok(())
}

fn unsubscribe(p: &Params, subs: &Subscriptions) -> Result<Value, RpcError> {
    let raw = p.string("query").unwrap_or_default();
    let query = parse_query(&raw)?;
    let removed = subs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&query.to_string());
    match removed {
        Some(h) => {
            h.abort();
            Ok(json!({}))
        }
        None => Err(RpcError::internal("subscription not found")),
    }
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    dialect: Dialect,
    mut events: tokio::sync::broadcast::Receiver<NodeEvent>,
    query: Query,
    raw: String,
    key: String,
    id: Value,
    out: Outbox,
    subs: Subscriptions,
) {
    let reason = loop {
        match events.recv().await {
            Ok(ev) => {
                let Some(mut frame) = render(&ev, &query, &raw) else {
                    continue;
                };
                dialect.adapt_event(&mut frame);
                if !out.push(success(&id, frame)).await {
                    return;
                }
            }
            Err(RecvError::Lagged(_)) => break "slow client",
            Err(RecvError::Closed) => break "CometBFT exited",
        }
    };
    subs.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&key);
    let err = RpcError::Server(format!("subscription was canceled (reason: {reason})"));
    out.push(failure(&id, &err)).await;
}

/// The `result` of an event frame, or `None` when the event does not match the subscription's query.
pub(crate) fn render(ev: &NodeEvent, query: &Query, raw_query: &str) -> Option<Value> {
    let (events, data) = match ev {
        NodeEvent::NewBlock {
            block_id,
            block,
            results,
        } => {
            let events = query::new_block_events(&results.finalize_block_events);
            if !query::matches(query, &events) {
                return None;
            }
            let finalize = tendermint::abci::response::FinalizeBlock {
                events: results.finalize_block_events.clone(),
                tx_results: results.tx_results.clone(),
                validator_updates: results.validator_updates.clone(),
                consensus_param_updates: results.consensus_param_updates.clone(),
                app_hash: results.app_hash.clone(),
            };
            let mut finalize = serde_json::to_value(finalize).ok()?;
            if let Some(obj) = finalize.as_object_mut() {
                if let Some(txs) = obj.get_mut("tx_results").and_then(Value::as_array_mut) {
                    for tx in txs.iter_mut().filter_map(Value::as_object_mut) {
                        omit_empty(tx, EXEC_TX_RESULT_FIELDS);
                    }
                }
                omit_empty(obj, &["events", "tx_results", "consensus_param_updates"]);
            }
            let value = json!({
                "block": serde_json::to_value(DialectBlock::from(block.as_ref().clone())).ok()?,
                "block_id": serde_json::to_value(block_id).ok()?,
                "result_finalize_block": finalize,
            });
            (
                events,
                json!({ "type": "tendermint/event/NewBlock", "value": value }),
            )
        }
        NodeEvent::Tx(rec) => {
            let events = query::tx_events(rec);
            if !query::matches(query, &events) {
                return None;
            }
            let mut tx_result = Map::new();
            tx_result.insert("height".into(), Value::String(rec.height.to_string()));
            // Go's protobuf JSON leaves a zero index out.
            if rec.index != 0 {
                tx_result.insert("index".into(), json!(rec.index));
            }
            tx_result.insert("tx".into(), Value::String(STANDARD.encode(&rec.tx)));
            let mut result = serde_json::to_value(&rec.result).ok()?;
            if let Some(obj) = result.as_object_mut() {
                omit_empty(obj, EXEC_TX_RESULT_FIELDS);
            }
            tx_result.insert("result".into(), result);
            (
                events,
                json!({ "type": "tendermint/event/Tx", "value": { "TxResult": tx_result } }),
            )
        }
    };
    Some(json!({ "query": raw_query, "data": data, "events": events_json(&events) }))
}

/// Fields of an `ExecTxResult` that CometBFT leaves out of event payloads when they hold their zero value.
const EXEC_TX_RESULT_FIELDS: &[&str] = &[
    "code",
    "data",
    "log",
    "info",
    "gas_wanted",
    "gas_used",
    "events",
    "codespace",
];

/// Event payloads are encoded with Go's `omitempty`: zero numbers, empty strings and empty lists are absent
/// there, so they are absent here.
fn omit_empty(obj: &mut Map<String, Value>, keys: &[&str]) {
    for key in keys {
        let empty = match obj.get(*key) {
            Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty() || s == "0",
            Some(Value::Number(n)) => n.as_u64() == Some(0),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if empty {
            obj.remove(*key);
        }
    }
}

fn events_json(events: &EventMap) -> Value {
    serde_json::to_value(events).unwrap_or(Value::Null)
}
