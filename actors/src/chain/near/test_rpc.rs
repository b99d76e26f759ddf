//! A scripted NEAR JSON-RPC server on a local port for unit tests: it answers each request with whatever the
//! test's handler returns for the method and params, over real HTTP, so near-jsonrpc-client decodes real bytes.

use std::sync::{Arc, Mutex};

use near_primitives::hash::CryptoHash;
use near_primitives::types::{Balance, Gas, ShardId};
use near_primitives::views::{BlockHeaderView, BlockView, ChunkHeaderView};
use serde_json::{json, Value};

use super::light_client::sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the handler answers: a JSON-RPC `result` or a JSON-RPC `error` object.
pub enum Reply {
    /// `{"result": ...}`.
    Result(Value),
    /// `{"error": ...}`.
    Error(Value),
}

/// The handler: (method, params) → reply.
pub type Handler = Arc<dyn Fn(&str, &Value) -> Reply + Send + Sync>;

/// A running scripted server.
pub struct TestRpc {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Every (method, params) received, in order.
    pub requests: Arc<Mutex<Vec<(String, Value)>>>,
}

/// Starts a server on a free local port.
pub async fn serve(handler: Handler) -> TestRpc {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break buf[end + 4..end + 4 + length].to_vec();
                    }
                };
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let method = request["method"].as_str().unwrap_or_default().to_owned();
                let params = request["params"].clone();
                seen.lock()
                    .expect("lock")
                    .push((method.clone(), params.clone()));
                let id = request["id"].clone();
                let answer = match handler(&method, &params) {
                    Reply::Result(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Reply::Error(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
                };
                let body = answer.to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    TestRpc { url, requests }
}

/// A `block` result: a block at `height` after `prev_height`, whose one chunk carries `state_root`.
pub fn block(height: u64, prev_height: u64, hash: CryptoHash, state_root: CryptoHash) -> Value {
    let chunk = ChunkHeaderView {
        chunk_hash: sha256(b"chunk"),
        prev_block_hash: sha256(b"prev"),
        outcome_root: CryptoHash::default(),
        prev_state_root: state_root,
        encoded_merkle_root: CryptoHash::default(),
        encoded_length: 0,
        height_created: height,
        height_included: height,
        shard_id: ShardId::new(0),
        gas_used: Gas::from_gas(0),
        gas_limit: Gas::from_gas(1),
        rent_paid: Balance::from_yoctonear(0),
        validator_reward: Balance::from_yoctonear(0),
        balance_burnt: Balance::from_yoctonear(0),
        outgoing_receipts_root: CryptoHash::default(),
        tx_root: CryptoHash::default(),
        validator_proposals: vec![],
        congestion_info: None,
        bandwidth_requests: None,
        signature: near_crypto::Signature::default(),
    };
    let view = BlockView {
        author: "bp0.test.near".parse().expect("id"),
        header: BlockHeaderView {
            height,
            prev_height: Some(prev_height),
            hash,
            prev_state_root: sha256(&state_root.0),
            ..Default::default()
        },
        chunks: vec![chunk],
    };
    serde_json::to_value(view).expect("json")
}
