//! NEAR JSON-RPC calls with every answer read up to a size bound. near-jsonrpc-client reads whatever the node
//! sends into memory before decoding it, so one answer from a broken or hostile node could exhaust relayd; here
//! the request is built and the answer decoded with the client's own method types, but the body is read in
//! chunks and refused once it passes the bound.

use near_jsonrpc_client::errors::{
    JsonRpcError, JsonRpcServerError, JsonRpcServerResponseStatusError,
};
use near_jsonrpc_client::methods::{self, RpcMethod};
use near_jsonrpc_primitives::errors::RpcError;

/// The largest answer read from a NEAR node: far above any block, chunk, light-client block, state proof or
/// transaction outcome relaying needs, and a bound on memory per call.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why a bounded call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The answer was larger than the bound; it was refused before it was read whole.
    #[error("the node's answer is larger than {limit} bytes; refused")]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
    /// The request could not be sent, or the node answered with an error or garbage.
    #[error("{0}")]
    Call(JsonRpcError<E>),
}

/// A JSON-RPC endpoint of a NEAR node whose answers are bounded.
#[derive(Clone)]
pub struct BoundedJsonRpc {
    http: reqwest::Client,
    url: String,
    limit: usize,
}

impl BoundedJsonRpc {
    /// An endpoint at `url` whose answers are bounded by `limit` bytes.
    pub fn new(url: &str, limit: usize) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            limit,
        }
    }

    /// This endpoint with every call bounded by `timeout` (connecting, sending and reading the answer), so that a
    /// node that hangs counts as giving no answer.
    pub fn with_timeout(self, timeout: std::time::Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or(self.http);
        Self { http, ..self }
    }

    /// The endpoint's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound on answers, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Calls `method` and decodes its answer, reading at most the bound.
    pub async fn call<M>(&self, method: M) -> Result<M::Response, CallError<M::Error>>
    where
        M: RpcMethod,
    {
        let transport = |e: std::io::Error| {
            CallError::Call(JsonRpcError::TransportError(
                near_jsonrpc_client::errors::RpcTransportError::SendError(
                    near_jsonrpc_client::errors::JsonRpcTransportSendError::PayloadSerializeError(
                        e,
                    ),
                ),
            ))
        };
        let payload = methods::to_json(&method).map_err(transport)?;
        let body = serde_json::to_vec(&payload).map_err(|e| transport(e.into()))?;
        let mut response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                CallError::Call(JsonRpcError::TransportError(
                    near_jsonrpc_client::errors::RpcTransportError::SendError(
                        near_jsonrpc_client::errors::JsonRpcTransportSendError::PayloadSendError(e),
                    ),
                ))
            })?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(CallError::Call(JsonRpcError::ServerError(status_error(
                status,
            ))));
        }
        // Refused before reading when the node says how long it is; counted while reading when it does not.
        if response
            .content_length()
            .is_some_and(|n| n > self.limit as u64)
        {
            return Err(CallError::TooLarge { limit: self.limit });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            CallError::Call(JsonRpcError::TransportError(
                near_jsonrpc_client::errors::RpcTransportError::RecvError(
                    near_jsonrpc_client::errors::JsonRpcTransportRecvError::PayloadRecvError(e),
                ),
            ))
        })? {
            if bytes.len() + chunk.len() > self.limit {
                return Err(CallError::TooLarge { limit: self.limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        decode::<M>(&bytes)
    }
}

/// What a non-200 HTTP status says, in the client's own error terms (as its own transport reports them).
fn status_error<E>(status: reqwest::StatusCode) -> JsonRpcServerError<E> {
    use reqwest::StatusCode as S;
    use JsonRpcServerResponseStatusError as R;
    match status {
        S::INTERNAL_SERVER_ERROR => JsonRpcServerError::InternalError {
            info: Some(format!("the node answered HTTP {status}")),
        },
        S::UNAUTHORIZED => JsonRpcServerError::ResponseStatusError(R::Unauthorized),
        S::TOO_MANY_REQUESTS => JsonRpcServerError::ResponseStatusError(R::TooManyRequests),
        S::BAD_REQUEST => JsonRpcServerError::ResponseStatusError(R::BadRequest),
        S::SERVICE_UNAVAILABLE => JsonRpcServerError::ResponseStatusError(R::ServiceUnavailable),
        S::REQUEST_TIMEOUT => JsonRpcServerError::ResponseStatusError(R::TimeoutError),
        other => JsonRpcServerError::ResponseStatusError(R::Unexpected { status: other }),
    }
}

/// Decodes a JSON-RPC answer of `M`: its `result` through the method's own parser, its `error` as the node's.
fn decode<M: RpcMethod>(bytes: &[u8]) -> Result<M::Response, CallError<M::Error>> {
    let garbage = |e: serde_json::Error| {
        CallError::Call(JsonRpcError::TransportError(
            near_jsonrpc_client::errors::RpcTransportError::RecvError(
                near_jsonrpc_client::errors::JsonRpcTransportRecvError::ResponseParseError(
                    near_jsonrpc_client::errors::JsonRpcTransportHandlerResponseError::ResultParseError(e),
                ),
            ),
        ))
    };
    let mut answer: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(garbage)?;
    if let Some(error) = answer.remove("error") {
        let error: RpcError = serde_json::from_value(error).map_err(garbage)?;
        return Err(CallError::Call(JsonRpcError::from(error)));
    }
    let result = answer.remove("result").ok_or_else(|| {
        garbage(serde::de::Error::custom(
            "the answer has neither a result nor an error",
        ))
    })?;
    M::parse_handler_response(result)
        .map_err(garbage)?
        .map_err(|e| {
            CallError::Call(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
                e,
            )))
        })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::rpc::NearRpc;
    use crate::chain::endpoint::ChainError;

    /// A node that answers every request with `len` bytes of blanks, saying the length or not.
    async fn node(len: usize, say_length: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = vec![0u8; 8192];
                    let _ = socket.read(&mut request).await;
                    let length = if say_length {
                        format!("content-length: {len}\r\n")
                    } else {
                        String::new()
                    };
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n");
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 64 * 1024];
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if socket.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn an_answer_of_300_mb_is_refused_with_or_without_its_length() {
        for say_length in [true, false] {
            let url = node(300 * 1024 * 1024, say_length).await;
            let rpc = NearRpc::new("near-big", &url);
            match rpc.status().await {
                Err(ChainError::TooLarge { chain, call, limit }) => {
                    assert_eq!((chain.as_str(), call.as_str()), ("near-big", "status"));
                    assert_eq!(limit, super::MAX_RESPONSE_BYTES);
                }
                other => panic!("say_length {say_length}: expected TooLarge, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn below_the_bound_an_answer_is_read_and_judged_on_its_content() {
        let url = node(100, false).await;
        let rpc = NearRpc::with_limit("near-small", &url, 1024);
        assert!(matches!(rpc.status().await, Err(ChainError::Rpc { .. })));
        let url = node(2048, true).await;
        let rpc = NearRpc::with_limit("near-small", &url, 1024);
        assert!(matches!(
            rpc.status().await,
            Err(ChainError::TooLarge { limit: 1024, .. })
        ));
    }
}
