//! The chain's gRPC endpoint. Every Cosmos SDK query service is answered by the application's
//! gRPC-over-ABCI handler (the same code `abci_query` runs), so the two transports can never disagree; the
//! node-level services (GetTx, GetNodeInfo, GetLatestBlock, GetBlockByHeight) read the node's block record.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut};
use cosmrs::proto::cosmos::base::abci::v1beta1::TxResponse;
use cosmrs::proto::cosmos::base::tendermint::v1beta1 as tmsvc;
use cosmrs::proto::cosmos::tx::v1beta1::{GetTxRequest, GetTxResponse, Tx};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, BoxFuture, Service, StdError};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::node::{Application, Node};

/// Metadata key carrying the query height, as the Cosmos SDK's gRPC gateway reads it.
const HEIGHT_HEADER: &str = "x-cosmos-block-height";

/// Passes message bytes through untouched: requests are forwarded to ABCI queries, which decode them.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawCoder;

impl Encoder for RawCoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCoder;
    type Decoder = RawCoder;
    fn encoder(&mut self) -> RawCoder {
        RawCoder
    }
    fn decoder(&mut self) -> RawCoder {
        RawCoder
    }
}

/// A gRPC service name; one marker type per service because tonic routes by a constant name.
pub trait ServiceName: Send + Sync + 'static {
    /// The fully qualified service name.
    const NAME: &'static str;
}

macro_rules! services {
    ($($ty:ident => $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("Marker for `", $name, "`.")]
            pub struct $ty;
            impl ServiceName for $ty {
                const NAME: &'static str = $name;
            }
        )*
    };
}

services! {
    BankQuery => "cosmos.bank.v1beta1.Query",
    AuthQuery => "cosmos.auth.v1beta1.Query",
    StakingQuery => "cosmos.staking.v1beta1.Query",
    TxService => "cosmos.tx.v1beta1.Service",
    TendermintService => "cosmos.base.tendermint.v1beta1.Service",
    ClientQuery => "ibc.core.client.v1.Query",
    ConnectionQuery => "ibc.core.connection.v1.Query",
    ChannelQuery => "ibc.core.channel.v1.Query",
}

/// One named gRPC service answered by the node.
pub struct Gateway<A: Application, S> {
    node: Arc<Node<A>>,
    _name: PhantomData<fn() -> S>,
}

impl<A: Application, S> Clone for Gateway<A, S> {
    fn clone(&self) -> Self {
        Self {
            node: Arc::clone(&self.node),
            _name: PhantomData,
        }
    }
}

impl<A: Application, S: ServiceName> NamedService for Gateway<A, S> {
    const NAME: &'static str = S::NAME;
}

struct Method<A: Application> {
    node: Arc<Node<A>>,
    path: String,
}

impl<A: Application> UnaryService<Vec<u8>> for Method<A> {
    type Response = Vec<u8>;
    type Future = BoxFuture<Response<Vec<u8>>, Status>;

    fn call(&mut self, request: Request<Vec<u8>>) -> Self::Future {
        let node = Arc::clone(&self.node);
        let path = self.path.clone();
        Box::pin(async move {
            let height = match request.metadata().get(HEIGHT_HEADER) {
                None => 0,
                Some(v) => v
                    .to_str()
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| Status::invalid_argument(format!("invalid {HEIGHT_HEADER}")))?,
            };
            let body = request.into_inner();
            tokio::task::spawn_blocking(move || answer(&node, &path, &body, height))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map(Response::new)
                .map_err(|e| *e)
        })
    }
}

impl<A: Application, S: ServiceName, B> Service<http::Request<B>> for Gateway<A, S>
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = Method {
            node: Arc::clone(&self.node),
            path: req.uri().path().to_owned(),
        };
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            Ok(grpc.unary(method, req).await)
        })
    }
}

/// Answers one call: node-level methods from the node's record, everything else through the app's query
/// handler.
fn answer<A: Application>(
    node: &Node<A>,
    path: &str,
    body: &[u8],
    height: u64,
) -> Result<Vec<u8>, Box<Status>> {
    match node_service(node, path, body) {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(ServiceError::NotFound(m))) => Err(Box::new(Status::not_found(m))),
        Some(Err(ServiceError::Invalid(m))) => Err(Box::new(Status::invalid_argument(m))),
        Some(Err(ServiceError::Unavailable(m))) => Err(Box::new(Status::unavailable(m))),
        None => {
            let response = node
                .app()
                .map_err(|e| Box::new(Status::internal(e.to_string())))?
                .query(path, body, height, false);
            if response.code.is_ok() {
                Ok(response.value.to_vec())
            } else if response.code.value() == 6 {
                Err(Box::new(Status::unimplemented(format!(
                    "unknown method {path}"
                ))))
            } else {
                Err(Box::new(Status::invalid_argument(response.log)))
            }
        }
    }
}

/// Why a node-level service call failed.
#[derive(Debug)]
pub enum ServiceError {
    /// The requested object does not exist.
    NotFound(String),
    /// The request is malformed.
    Invalid(String),
    /// The node cannot answer now.
    Unavailable(String),
}

impl ServiceError {
    /// The Cosmos SDK's ABCI code for this failure (NotFound 22, InvalidRequest 18, 1 otherwise).
    pub fn abci_code(&self) -> u32 {
        match self {
            Self::NotFound(_) => 22,
            Self::Invalid(_) => 18,
            Self::Unavailable(_) => 1,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound(m) | Self::Invalid(m) | Self::Unavailable(m) => m,
        }
    }
}

/// The services a node (not its application) answers: GetTx, GetNodeInfo, GetLatestBlock and
/// GetBlockByHeight. `None` for every other path. Shared by gRPC and gRPC-over-ABCI queries.
pub fn node_service<A: Application>(
    node: &Node<A>,
    path: &str,
    body: &[u8],
) -> Option<Result<Vec<u8>, ServiceError>> {
    let unavailable = |e: crate::node::NodeError| ServiceError::Unavailable(e.to_string());
    let invalid = |e: prost::DecodeError| ServiceError::Invalid(e.to_string());
    let result = match path {
        "/cosmos.tx.v1beta1.Service/GetTx" => (|| {
            let req = GetTxRequest::decode(body).map_err(invalid)?;
            let hash: tendermint::Hash = req
                .hash
                .parse()
                .map_err(|_| ServiceError::Invalid(format!("invalid tx hash {:?}", req.hash)))?;
            let record = node
                .record()
                .map_err(unavailable)?
                .tx(&hash)
                .ok_or_else(|| ServiceError::NotFound(format!("tx not found: {}", req.hash)))?;
            let tx = Tx::decode(record.tx.as_slice()).ok();
            let result = &record.result;
            let response = TxResponse {
                height: i64::try_from(record.height).unwrap_or(i64::MAX),
                txhash: record.hash.to_string(),
                codespace: result.codespace.clone(),
                code: result.code.value(),
                raw_log: result.log.clone(),
                gas_wanted: result.gas_wanted,
                gas_used: result.gas_used,
                events: result.events.iter().cloned().map(Into::into).collect(),
                ..Default::default()
            };
            Ok(GetTxResponse {
                tx,
                tx_response: Some(response),
            }
            .encode_to_vec())
        })(),
        "/cosmos.base.tendermint.v1beta1.Service/GetNodeInfo" => Ok(tmsvc::GetNodeInfoResponse {
            default_node_info: Some(tmsvc_node_info(node)),
            application_version: Some(tmsvc::VersionInfo {
                name: "devnet".into(),
                app_name: "devnet".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                cosmos_sdk_version: "v0.50.0".into(),
                // As an SDK binary lists its Go modules: relayers read the SDK's, CometBFT's and ibc-go's
                // versions here. The devnet's IBC is ibc-rs; ibc-go v8 is the release whose wire it matches
                // (docs/devnet.md).
                build_deps: [
                    ("github.com/cosmos/cosmos-sdk", "v0.50.0"),
                    ("github.com/cometbft/cometbft", "v0.38.12"),
                    ("github.com/cosmos/ibc-go/v8", "v8.0.0"),
                ]
                .into_iter()
                .map(|(path, version)| tmsvc::Module {
                    path: path.into(),
                    version: version.into(),
                    sum: String::new(),
                })
                .collect(),
                ..Default::default()
            }),
        }
        .encode_to_vec()),
        "/cosmos.base.tendermint.v1beta1.Service/GetLatestBlock" => (|| {
            let record = node.record().map_err(unavailable)?;
            let latest = record
                .block(record.latest_height())
                .ok_or_else(|| ServiceError::Unavailable("no block yet".into()))?;
            Ok(tmsvc::GetLatestBlockResponse {
                block_id: Some(latest.id.into()),
                block: Some(latest.block.as_ref().clone().into()),
                ..Default::default()
            }
            .encode_to_vec())
        })(),
        "/cosmos.base.tendermint.v1beta1.Service/GetBlockByHeight" => (|| {
            let req = tmsvc::GetBlockByHeightRequest::decode(body).map_err(invalid)?;
            let record = node.record().map_err(unavailable)?;
            let block = u64::try_from(req.height)
                .ok()
                .and_then(|h| record.block(h))
                .ok_or_else(|| {
                    ServiceError::Invalid(format!(
                        "requested block height {} is bigger than the chain length {}",
                        req.height,
                        record.latest_height()
                    ))
                })?;
            Ok(tmsvc::GetBlockByHeightResponse {
                block_id: Some(block.id.into()),
                block: Some(block.block.as_ref().clone().into()),
                ..Default::default()
            }
            .encode_to_vec())
        })(),
        _ => return None,
    };
    Some(result)
}

fn tmsvc_node_info<A: Application>(
    node: &Node<A>,
) -> cosmrs::proto::tendermint::p2p::DefaultNodeInfo {
    cosmrs::proto::tendermint::p2p::DefaultNodeInfo {
        network: node.chain_id().to_string(),
        version: "0.38.12".into(),
        moniker: "devnet".into(),
        ..Default::default()
    }
}

/// Serves every gRPC service of the node on `listener` until `shutdown` resolves.
pub async fn serve<A: Application>(
    listener: tokio::net::TcpListener,
    node: Arc<Node<A>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    fn gw<A: Application, S: ServiceName>(node: &Arc<Node<A>>) -> Gateway<A, S> {
        Gateway {
            node: Arc::clone(node),
            _name: PhantomData,
        }
    }
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(gw::<A, BankQuery>(&node))
        .add_service(gw::<A, AuthQuery>(&node))
        .add_service(gw::<A, StakingQuery>(&node))
        .add_service(gw::<A, TxService>(&node))
        .add_service(gw::<A, TendermintService>(&node))
        .add_service(gw::<A, ClientQuery>(&node))
        .add_service(gw::<A, ConnectionQuery>(&node))
        .add_service(gw::<A, ChannelQuery>(&node))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
