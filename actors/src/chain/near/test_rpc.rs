//! A scripted NEAR JSON-RPC server on a local port for unit tests: it answers each request with whatever the
//! test's handler returns for the method and params, over real HTTP, so near-jsonrpc-client decodes real bytes.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
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
