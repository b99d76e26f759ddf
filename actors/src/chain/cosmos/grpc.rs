//! A Cosmos node's gRPC endpoint (`grpc_addr`). When one is configured, the query services relayd lists IBC
//! state with (clients, connections, channels, packet sequences) are called on it directly instead of through
//! CometBFT's `abci_query`, which nodes often limit more tightly than their gRPC server.

use std::time::Duration;

use prost::Message;
use tonic::codec::ProstCodec;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Endpoint;

use super::rpc::MAX_RESPONSE_BYTES;
use crate::chain::endpoint::ChainError;

/// The gRPC endpoint of one chain's node.
#[derive(Debug, Clone)]
pub struct GrpcEndpoint {
    chain: String,
    endpoint: Endpoint,
}

impl GrpcEndpoint {
    /// The endpoint at `url` for `chain`, each call (connecting included) bounded by `timeout`. Nothing is
    /// contacted until the first call.
    pub fn new(chain: &str, url: &str, timeout: Duration) -> Result<Self, ChainError> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| ChainError::rpc(chain, "grpc connect", format!("{url}: {e}")))?
            .timeout(timeout)
            .connect_timeout(timeout);
        Ok(Self {
            chain: chain.to_owned(),
            endpoint,
        })
    }

    /// Calls the unary method `path` (`/package.Service/Method`). A node that cannot be reached is a
    /// [`ChainError::Rpc`]; an answer refusing the request is a [`ChainError::Node`] with the node's message.
    /// A connection is made per call: listings are rare (start, clearing), and a connection kept open would
    /// belong to the runtime of whichever actor made it.
    pub async fn call<Req, Resp>(&self, path: &str, request: Req) -> Result<Resp, ChainError>
    where
        Req: Message + Send + Sync + 'static,
        Resp: Message + Default + Send + Sync + 'static,
    {
        let call = format!("grpc {path}");
        let unreachable = |e: String| ChainError::rpc(&self.chain, &call, e);
        let method = PathAndQuery::try_from(path).map_err(|e| unreachable(e.to_string()))?;
        let channel = self
            .endpoint
            .connect()
            .await
            .map_err(|e| unreachable(format!("{}: {e}", self.endpoint.uri())))?;
        let mut client =
            tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        client
            .ready()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let codec: ProstCodec<Req, Resp> = ProstCodec::default();
        match client
            .unary(tonic::Request::new(request), method, codec)
            .await
        {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => {
                use tonic::Code;
                let reason = format!("{:?}: {}", status.code(), status.message());
                Err(match status.code() {
                    Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Internal => {
                        unreachable(reason)
                    }
                    _ => ChainError::Node {
                        chain: self.chain.clone(),
                        call,
                        reason,
                    },
                })
            }
        }
    }
}
