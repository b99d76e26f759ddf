//! CometBFT JSON-RPC over HTTP with every answer read up to a size bound: tendermint-rpc's own client reads
//! whatever the node sends into memory, so a broken or hostile node could exhaust it with one answer.

use std::sync::Arc;

use async_trait::async_trait;
use tendermint::Hash;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::dialect::{self, Dialect};
use tendermint_rpc::endpoint;
use tendermint_rpc::query::Query;
use tendermint_rpc::{Client, Error, HttpClient, Order, Response, SimpleRequest};

use crate::rpc_pool::RpcPool;

/// The largest answer read from a node: far above any block, block result or proof relaying needs (CometBFT
/// blocks are at most 100 MiB by consensus rule but a few MiB in practice), and a bound on memory per call.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A CometBFT RPC client whose answers are bounded; it speaks the dialect of `compat`. It holds every RPC
/// endpoint of its chain: each request goes to the best one its [`RpcPool`] names and, when that one gives no
/// answer (refused, reset, timed out, an HTTP error, an answer over the bound), to the next, each outcome
/// recorded in the pool. A client pinned to one endpoint ([`BoundedHttp::pinned_to`]) asks that one only, so
/// that what it serves can be blamed on it.
#[derive(Clone)]
pub struct BoundedHttp {
    nodes: Arc<[Node]>,
    pool: RpcPool,
    pinned: Option<usize>,
    compat: CompatMode,
}

/// One endpoint.
#[derive(Clone)]
struct Node {
    http: reqwest::Client,
    url: String,
    limit: usize,
    /// For the two calls whose 0.34 form is not one request (headers are read from blocks there).
    fallback: HttpClient,
}

/// Chooses the dialect from `compat`, as every call whose encoding differs between versions must.
macro_rules! by_dialect {
    ($self:expr, $request:expr) => {{
        let request = $request;
        match $self.compat {
            CompatMode::V0_38 => $self.call(request, dialect::v0_38::Dialect).await,
            CompatMode::V0_37 => $self.call(request, dialect::v0_37::Dialect).await,
            CompatMode::V0_34 => $self.call(request, dialect::v0_34::Dialect).await,
        }
    }};
}

impl BoundedHttp {
    /// A client of the endpoints `nodes` (each a URL and tendermint-rpc's client of it), in the order of `pool`'s
    /// entries, with answers bounded by `limit` bytes and calls by `timeout`.
    pub fn new(
        nodes: Vec<(String, HttpClient)>,
        pool: RpcPool,
        compat: CompatMode,
        timeout: std::time::Duration,
        limit: usize,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        if nodes.is_empty() {
            return Err("no RPC endpoint".into());
        }
        let nodes: Vec<Node> = nodes
            .into_iter()
            .map(|(url, fallback)| Node {
                http: http.clone(),
                url,
                limit,
                fallback,
            })
            .collect();
        Ok(Self {
            nodes: nodes.into(),
            pool,
            pinned: None,
            compat,
        })
    }

    /// The pool this client reports to and chooses by.
    pub fn pool(&self) -> &RpcPool {
        &self.pool
    }

    /// How many endpoints it holds.
    pub fn endpoints(&self) -> usize {
        self.nodes.len()
    }

    /// The endpoint a pinned client asks, if it is pinned.
    pub fn pinned(&self) -> Option<usize> {
        self.pinned
    }

    /// This client asking endpoint `i` only (an index past the end asks the last).
    pub fn pinned_to(&self, i: usize) -> Self {
        Self {
            pinned: Some(i.min(self.nodes.len().saturating_sub(1))),
            ..self.clone()
        }
    }

    /// The endpoints to try, in order.
    fn order(&self) -> Vec<usize> {
        match self.pinned {
            Some(i) => vec![i],
            None => self
                .pool
                .order()
                .into_iter()
                .filter(|&i| i < self.nodes.len())
                .collect(),
        }
    }

    /// The endpoint a request goes to first.
    fn first(&self) -> Option<&Node> {
        self.order()
            .first()
            .and_then(|&i| self.nodes.get(i))
            .or_else(|| self.nodes.first())
    }

    async fn call<R, S>(&self, request: R, _dialect: S) -> Result<R::Output, Error>
    where
        R: SimpleRequest<S>,
        S: Dialect,
    {
        let body = request.into_json();
        // Made only when a request fails: tendermint-rpc's errors capture a backtrace when `RUST_BACKTRACE` is
        // set, which cost about 4 % of relayd's CPU when one was made ahead of every call.
        let mut last = None;
        for i in self.order() {
            let Some(node) = self.nodes.get(i) else {
                continue;
            };
            match node.post(&body).await {
                Ok(bytes) => {
                    self.pool.succeeded(i);
                    return decode_answer(|| R::Response::from_string(&bytes))
                        .map_err(Error::client_internal)?
                        .map(Into::into);
                }
                Err(e) => {
                    self.pool.failed(i, &e.to_string());
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::client_internal("no RPC endpoint".to_owned())))
    }

    fn fallback(&self) -> Result<&HttpClient, Error> {
        self.first()
            .map(|n| &n.fallback)
            .ok_or_else(|| Error::client_internal("no RPC endpoint".to_owned()))
    }
}

impl Node {
    /// Posts `body` and reads the answer, up to the bound.
    async fn post(&self, body: &str) -> Result<Vec<u8>, Error> {
        let mut response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| Error::client_internal(format!("request failed: {e}")))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Error::client_internal(format!(
                "the node answered HTTP {}",
                response.status()
            )));
        }
        // Refused before reading when the node says how long it is; counted while reading when it does not.
        if response
            .content_length()
            .is_some_and(|n| n > self.limit as u64)
        {
            return Err(self.too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::client_internal(format!("reading the answer: {e}")))?
        {
            if bytes.len() + chunk.len() > self.limit {
                return Err(self.too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn too_large(&self) -> Error {
        Error::client_internal(format!(
            "the node's answer is larger than {} bytes; refused",
            self.limit
        ))
    }
}

/// Runs `decode` over a node's answer, turning a panic inside it into an error. tendermint's base64 fields are
/// decoded by subtle-encoding 0.5, which panics on some malformed input (a last block that starts with `=`, such
/// as `"AAAA=A"`: it subtracts 1 from 0), and nothing a node sends may stop relayd.
pub fn decode_answer<T>(decode: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("the answer does not decode: the decoder failed ({what})")
    })
}

#[async_trait]
impl Client for BoundedHttp {
    async fn perform<R>(&self, request: R) -> Result<R::Output, Error>
    where
        R: SimpleRequest,
    {
        self.call(request, dialect::LatestDialect).await
    }

    async fn block<H>(&self, height: H) -> Result<endpoint::block::Response, Error>
    where
        H: Into<tendermint::block::Height> + Send,
    {
        by_dialect!(self, endpoint::block::Request::new(height.into()))
    }

    async fn block_by_hash(&self, hash: Hash) -> Result<endpoint::block_by_hash::Response, Error> {
        by_dialect!(self, endpoint::block_by_hash::Request::new(hash))
    }

    async fn latest_block(&self) -> Result<endpoint::block::Response, Error> {
        by_dialect!(self, endpoint::block::Request::default())
    }

    async fn block_results<H>(&self, height: H) -> Result<endpoint::block_results::Response, Error>
    where
        H: Into<tendermint::block::Height> + Send,
    {
        by_dialect!(self, endpoint::block_results::Request::new(height.into()))
    }

    async fn latest_block_results(&self) -> Result<endpoint::block_results::Response, Error> {
        by_dialect!(self, endpoint::block_results::Request::default())
    }

    async fn block_search(
        &self,
        query: Query,
        page: u32,
        per_page: u8,
        order: Order,
    ) -> Result<endpoint::block_search::Response, Error> {
        by_dialect!(
            self,
            endpoint::block_search::Request::new(query, page, per_page, order)
        )
    }

    async fn header<H>(&self, height: H) -> Result<endpoint::header::Response, Error>
    where
        H: Into<tendermint::block::Height> + Send,
    {
        match self.compat {
            CompatMode::V0_34 => self.fallback()?.header(height).await,
            CompatMode::V0_37 => {
                let request = endpoint::header::Request::new(height.into());
                self.call(request, dialect::v0_37::Dialect).await
            }
            CompatMode::V0_38 => {
                let request = endpoint::header::Request::new(height.into());
                self.call(request, dialect::v0_38::Dialect).await
            }
        }
    }

    async fn header_by_hash(
        &self,
        hash: Hash,
    ) -> Result<endpoint::header_by_hash::Response, Error> {
        match self.compat {
            CompatMode::V0_34 => self.fallback()?.header_by_hash(hash).await,
            CompatMode::V0_37 => {
                let request = endpoint::header_by_hash::Request::new(hash);
                self.call(request, dialect::v0_37::Dialect).await
            }
            CompatMode::V0_38 => {
                let request = endpoint::header_by_hash::Request::new(hash);
                self.call(request, dialect::v0_38::Dialect).await
            }
        }
    }

    async fn broadcast_evidence(
        &self,
        evidence: tendermint::evidence::Evidence,
    ) -> Result<endpoint::evidence::Response, Error> {
        self.fallback()?.broadcast_evidence(evidence).await
    }

    async fn tx(&self, hash: Hash, prove: bool) -> Result<endpoint::tx::Response, Error> {
        by_dialect!(self, endpoint::tx::Request::new(hash, prove))
    }

    async fn tx_search(
        &self,
        query: Query,
        prove: bool,
        page: u32,
        per_page: u8,
        order: Order,
    ) -> Result<endpoint::tx_search::Response, Error> {
        by_dialect!(
            self,
            endpoint::tx_search::Request::new(query, prove, page, per_page, order)
        )
    }

    async fn broadcast_tx_commit<T>(
        &self,
        tx: T,
    ) -> Result<endpoint::broadcast::tx_commit::Response, Error>
    where
        T: Into<Vec<u8>> + Send,
    {
        by_dialect!(self, endpoint::broadcast::tx_commit::Request::new(tx))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::CosmosRpc;
    use super::CompatMode;

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
    async fn an_answer_above_the_bound_is_refused_with_or_without_its_length() {
        let limit = 1024 * 1024;
        for say_length in [true, false] {
            let url = node(8 * limit, say_length).await;
            let rpc = CosmosRpc::with_limit(
                "big-0",
                &url,
                CompatMode::V0_38,
                std::time::Duration::from_secs(30),
                limit,
            )
            .unwrap();
            let err = rpc.status().await.unwrap_err().to_string();
            assert!(
                err.contains("the node's answer is larger than 1048576 bytes; refused"),
                "{err}"
            );
        }
        // Below the bound the answer is read and judged on its content.
        let url = node(100, false).await;
        let rpc = CosmosRpc::with_limit(
            "small-0",
            &url,
            CompatMode::V0_38,
            std::time::Duration::from_secs(30),
            limit,
        )
        .unwrap();
        let err = rpc.status().await.unwrap_err().to_string();
        assert!(!err.contains("larger than"), "{err}");
    }
}
