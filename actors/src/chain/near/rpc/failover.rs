//! How one NEAR call chooses among the chain's endpoints: the pool's order, the next endpoint when one gives no
//! answer, and every outcome reported to the pool. Whether a failure was "no answer" is decided here once, from
//! the client's error variants: a node that answered with a JSON-RPC handler error did answer (the error is the
//! chain's verdict, the same on every node), anything else (refused, reset, timed out, an HTTP error status, an
//! internal error, garbage, an answer over the bound) did not.

use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_client::methods::RpcMethod;

use super::NearRpc;
use crate::chain::near::bounded::CallError;

/// Whether the node answered `e` itself, as opposed to giving no usable answer.
pub(super) fn answered<E>(e: &CallError<E>) -> bool {
    matches!(
        e,
        CallError::Call(JsonRpcError::ServerError(
            JsonRpcServerError::HandlerError(_) | JsonRpcServerError::RequestValidationError(_)
        ))
    )
}

/// A short account of a failure for the pool's record of the endpoint.
fn describe<E: std::fmt::Debug>(e: &CallError<E>) -> String {
    match e {
        CallError::TooLarge { limit } => format!("answer larger than {limit} bytes"),
        CallError::Call(JsonRpcError::TransportError(t)) => t.to_string(),
        CallError::Call(JsonRpcError::ServerError(s)) => format!("{s:?}"),
    }
}

impl NearRpc {
    /// The endpoints to try, in order: the pinned one only, or the pool's order; never empty.
    fn order(&self) -> Vec<usize> {
        match self.pinned {
            Some(i) => vec![i],
            None => {
                let order: Vec<usize> = self
                    .pool
                    .order()
                    .into_iter()
                    .filter(|&i| i < self.nodes.len())
                    .collect();
                if order.is_empty() {
                    vec![0]
                } else {
                    order
                }
            }
        }
    }

    /// Sends the request `make` builds to the endpoints in order until one answers; returns that answer (a result
    /// or the node's own error), or the last endpoint's failure when none answered.
    pub(super) async fn call<M>(
        &self,
        make: impl Fn() -> M,
    ) -> Result<M::Response, CallError<M::Error>>
    where
        M: RpcMethod,
        M::Error: std::fmt::Debug,
    {
        let order = self.order();
        // `order` is never empty and holds valid indexes only, so the loop returns from its body; the call after
        // it only keeps the function total.
        for (n, &i) in order.iter().enumerate() {
            let node = &self.nodes[i];
            match node.call(make()).await {
                Ok(answer) => {
                    self.pool.succeeded(i);
                    return Ok(answer);
                }
                Err(e) if answered(&e) => {
                    self.pool.succeeded(i);
                    return Err(e);
                }
                Err(e) => {
                    let why = describe(&e);
                    self.pool.failed(i, &why);
                    if n + 1 == order.len() {
                        return Err(e);
                    }
                    tracing::debug!(chain = %self.chain, endpoint = %node.url(), error = %why, "NEAR endpoint gave no answer; trying the next");
                }
            }
        }
        self.nodes[0].call(make()).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::super::NearRpc;
    use crate::chain::endpoint::ChainError;
    use crate::chain::near::bounded::MAX_RESPONSE_BYTES;
    use crate::chain::near::light_client::sha256;
    use crate::chain::near::test_rpc::{block, serve, Handler, Reply};
    use crate::rpc_pool::Health;

    /// A node that serves block 7 and answers every other method with a handler error.
    fn node() -> Handler {
        Arc::new(|method: &str, _: &Value| match method {
            "block" => Reply::Result(block(7, 6, sha256(b"7"), sha256(b"root"))),
            _ => Reply::Error(json!({
                "name": "HANDLER_ERROR",
                "cause": {"name": "UNKNOWN_BLOCK", "info": {"error_message": "DB Not Found Error"}},
                "code": -32000, "message": "Server error", "data": "DB Not Found Error"
            })),
        })
    }

    /// An address where nothing listens.
    async fn dead() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        url
    }

    #[tokio::test]
    async fn a_call_the_first_endpoint_does_not_answer_goes_to_the_next_which_becomes_current() {
        let live = serve(node()).await;
        let urls = [dead().await, live.url.clone()];
        let rpc = NearRpc::pooled("near-0", &urls, MAX_RESPONSE_BYTES);
        let got = rpc.block(None).await.expect("answered by the second");
        assert_eq!(got.header.height, 7);
        let view = rpc.pool().view();
        assert_eq!(view[0].state, Health::Failing, "{view:?}");
        assert!(view[0].errors >= 1);
        assert!(view[1].current, "{view:?}");
        // The next call goes to the second endpoint straight away.
        rpc.block(None).await.expect("answered");
        assert_eq!(live.requests.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn a_node_error_is_the_chain_s_answer_and_is_not_asked_again_elsewhere() {
        let (first, second) = (serve(node()).await, serve(node()).await);
        let rpc = NearRpc::pooled(
            "near-0",
            &[first.url.clone(), second.url.clone()],
            MAX_RESPONSE_BYTES,
        );
        let err = rpc
            .next_light_client_block(sha256(b"unknown"))
            .await
            .expect_err("the node's error");
        assert!(matches!(err, ChainError::Node { .. }), "{err:?}");
        assert_eq!(first.requests.lock().expect("lock").len(), 1);
        assert!(second.requests.lock().expect("lock").is_empty());
        assert_eq!(rpc.pool().view()[0].state, Health::Healthy);
    }

    #[tokio::test]
    async fn a_pinned_client_asks_its_endpoint_only_and_blame_quarantines_it() {
        let live = serve(node()).await;
        let urls = [dead().await, live.url.clone()];
        let rpc = NearRpc::pooled("near-0", &urls, MAX_RESPONSE_BYTES);
        let pinned = rpc.pinned_to(0);
        assert!(matches!(
            pinned.block(None).await,
            Err(ChainError::Rpc { .. })
        ));
        assert!(live.requests.lock().expect("lock").is_empty());
        let on_live = rpc.pinned_to(1);
        on_live.block(None).await.expect("answered");
        on_live.blame("served a block that did not verify");
        let view = rpc.pool().view();
        assert_eq!(view[1].state, Health::Quarantined, "{view:?}");
        // An unpinned client blames nobody.
        rpc.blame("nothing to blame");
        assert_eq!(rpc.pool().view()[0].state, Health::Failing);
    }
}
