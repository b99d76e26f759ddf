//! `abci_query`: ICS-24 store reads with ICS-23 proofs (`store/ibc/key`), and the gRPC-over-ABCI services
//! relayers call (bank, auth, staking params, tx simulate, IBC client/connection/channel queries).

use basecoin_store::context::Store;
use basecoin_store::types::{Height as StoreHeight, Path};
use cosmrs::proto::cosmos::auth::v1beta1::{QueryAccountRequest, QueryAccountResponse};
use cosmrs::proto::cosmos::bank::v1beta1::{
    QueryAllBalancesRequest, QueryAllBalancesResponse, QueryBalanceRequest, QueryBalanceResponse,
};
use cosmrs::proto::cosmos::base::abci::v1beta1::{GasInfo, Result as AbciResult};
use cosmrs::proto::cosmos::base::v1beta1::Coin;
use cosmrs::proto::cosmos::staking::v1beta1::{Params as StakingParams, QueryParamsResponse};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use ibc::core::channel::types::channel::Order;
use ibc::core::host::types::identifiers::{ChannelId, PortId};
use ibc::core::host::types::path::{ChannelEndPath, Path as IbcPath, SeqRecvPath};
use ibc::core::host::ValidationContext;
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::channel::v1 as rawch;
use ibc_proto::ibc::core::client::v1 as rawcl;
use ibc_proto::ibc::core::connection::v1 as rawconn;
use ibc_query::core::channel as qch;
use ibc_query::core::client as qcl;
use ibc_query::core::connection as qconn;
use ibc_query::core::context::ProvableContext;
use prost::Message;
use tendermint::abci::response;
use tendermint::merkle::proof::{ProofOp, ProofOps};

use super::exec::{account_at, Mode};
use super::{Core, IBC_STORE_KEY};
use crate::genesis::DENOM;
use crate::host::big_endian_sequence;

/// The proof op type of both levels: ICS-23 proofs over a Jellyfish Merkle tree.
const PROOF_OP_TYPE: &str = "ics23:jmt";

/// A query failure: ABCI code, codespace and log.
struct QueryFail {
    code: u32,
    codespace: String,
    log: String,
}

fn invalid(log: impl Into<String>) -> QueryFail {
    QueryFail {
        code: 18,
        codespace: "sdk".to_owned(),
        log: format!("{}: invalid request", log.into()),
    }
}

fn not_found(log: impl std::fmt::Display) -> QueryFail {
    QueryFail {
        code: 22,
        codespace: "sdk".to_owned(),
        log: format!("rpc error: code = NotFound desc = {log}: key not found"),
    }
}

fn decode<M: Message + Default>(data: &[u8]) -> Result<M, QueryFail> {
    M::decode(data).map_err(|e| invalid(format!("decoding request: {e}")))
}

/// Decodes the raw request, converts it to ibc-query's domain request, runs `f` on the IBC context and encodes
/// the raw response.
macro_rules! ibc_query {
    ($core:expr, $data:expr, $raw_req:ty, $raw_resp:ty, $f:path) => {{
        let raw: $raw_req = decode($data)?;
        let req = raw
            .try_into()
            .map_err(|e: ibc_query::error::QueryError| invalid(e.to_string()))?;
        let resp = $f(&$core.ibc, &req).map_err(not_found)?;
        let raw_resp: $raw_resp = resp.into();
        Ok(raw_resp.encode_to_vec())
    }};
}

/// Like [`ibc_query!`] for requests whose domain conversion cannot fail.
macro_rules! ibc_query_infallible {
    ($core:expr, $data:expr, $raw_req:ty, $raw_resp:ty, $f:path) => {{
        let raw: $raw_req = decode($data)?;
        let resp = $f(&$core.ibc, &raw.into()).map_err(not_found)?;
        let raw_resp: $raw_resp = resp.into();
        Ok(raw_resp.encode_to_vec())
    }};
}

impl Core {
    pub(super) fn query(
        &mut self,
        path: &str,
        data: &[u8],
        height: u64,
        prove: bool,
    ) -> response::Query {
        let h = if height == 0 {
            self.last_committed
        } else {
            height
        };
        let mut r = response::Query {
            height: tendermint::block::Height::try_from(h).unwrap_or_default(),
            ..Default::default()
        };
        let res = if h > self.last_committed {
            Err(QueryFail {
                code: 26,
                codespace: "sdk".to_owned(),
                log: format!(
                    "cannot query with height in the future; please provide a valid height (latest height: {}): invalid height",
                    self.last_committed
                ),
            })
        } else if h + 1 < self.oldest_version() {
            Err(invalid(format!(
                "failed to load state at height {h}; version does not exist (latest height: {})",
                self.last_committed
            )))
        } else {
            match path {
                "store/ibc/key" => self.store_query(data, h, prove).map(|(value, proof)| {
                    r.key = data.to_vec().into();
                    r.proof = proof;
                    value
                }),
                _ => self.grpc_query(path, data, h),
            }
        };
        match res {
            Ok(value) => r.value = value.into(),
            Err(f) => {
                r.code = f.code.into();
                r.codespace = f.codespace;
                r.log = f.log;
            }
        }
        r
    }

    /// The IBC store value at `key` after block `h`, with a two-op proof to the app hash of header h+1: the
    /// key's existence or absence under the IBC store root, then that root under `ibc` in the multistore.
    fn store_query(
        &self,
        key: &[u8],
        h: u64,
        prove: bool,
    ) -> Result<(Vec<u8>, Option<ProofOps>), QueryFail> {
        let path = Path::try_from(key).map_err(|e| invalid(format!("key is not a path: {e}")))?;
        let version = h + 1;
        if !prove {
            let value = self
                .ibc
                .store
                .get(StoreHeight::Stable(version), &path)
                .unwrap_or_default();
            return Ok((value, None));
        }
        let unprovable =
            |e: super::store::TreeError| invalid(format!("no proof at height {h}: {e}"));
        let (value, inner) =
            super::store::prove(&self.ibc.store, version, &path).map_err(unprovable)?;
        let (_, outer) = self
            .multi
            .prove(version, &IBC_STORE_KEY.to_owned().into())
            .map_err(unprovable)?;
        let ops = ProofOps {
            ops: vec![
                ProofOp {
                    field_type: PROOF_OP_TYPE.to_owned(),
                    key: key.to_vec(),
                    data: inner.encode_to_vec(),
                },
                ProofOp {
                    field_type: PROOF_OP_TYPE.to_owned(),
                    key: IBC_STORE_KEY.as_bytes().to_vec(),
                    data: outer.encode_to_vec(),
                },
            ],
        };
        Ok((value.unwrap_or_default(), Some(ops)))
    }

    fn grpc_query(&mut self, path: &str, data: &[u8], h: u64) -> Result<Vec<u8>, QueryFail> {
        let version = h + 1;
        match path {
            "/cosmos.bank.v1beta1.Query/Balance" => {
                let req: QueryBalanceRequest = decode(data)?;
                super::auth::validate_address(&req.address).map_err(invalid)?;
                let amount =
                    self.bank
                        .balance_at(StoreHeight::Stable(version), &req.address, &req.denom);
                Ok(QueryBalanceResponse {
                    balance: Some(Coin {
                        denom: req.denom,
                        amount: amount.to_string(),
                    }),
                }
                .encode_to_vec())
            }
            "/cosmos.bank.v1beta1.Query/AllBalances" => {
                let req: QueryAllBalancesRequest = decode(data)?;
                super::auth::validate_address(&req.address).map_err(invalid)?;
                // Listing reads the latest state (the store lists keys of its pending version only).
                let balances = self
                    .bank
                    .all_balances(&req.address)
                    .into_iter()
                    .map(|(denom, amount)| Coin {
                        denom,
                        amount: amount.to_string(),
                    })
                    .collect();
                Ok(QueryAllBalancesResponse {
                    balances,
                    pagination: None,
                }
                .encode_to_vec())
            }
            "/cosmos.auth.v1beta1.Query/Account" => {
                let req: QueryAccountRequest = decode(data)?;
                let acc = account_at(self, version, &req.address)
                    .ok_or_else(|| not_found(format!("account {} not found", req.address)))?;
                Ok(QueryAccountResponse {
                    account: Some(Any {
                        type_url: "/cosmos.auth.v1beta1.BaseAccount".to_owned(),
                        value: acc.encode_to_vec(),
                    }),
                }
                .encode_to_vec())
            }
            "/cosmos.staking.v1beta1.Query/Params" => Ok(QueryParamsResponse {
                params: Some(StakingParams {
                    unbonding_time: Some(prost_duration(self.unbonding_period)),
                    max_validators: 100,
                    max_entries: 7,
                    historical_entries: 10_000,
                    bond_denom: DENOM.to_owned(),
                    min_commission_rate: "0".to_owned(),
                }),
            }
            .encode_to_vec()),
            // Relayers read the node's minimum gas price from here (Hermes' health check does).
            "/cosmos.base.node.v1beta1.Service/Config" => {
                Ok(cosmrs::proto::cosmos::base::node::v1beta1::ConfigResponse {
                    minimum_gas_price: format!("{}{DENOM}", self.min_gas_price),
                    ..Default::default()
                }
                .encode_to_vec())
            }
            "/cosmos.tx.v1beta1.Service/Simulate" => {
                let req: SimulateRequest = decode(data)?;
                let out = self.run_tx(&req.tx_bytes, Mode::Simulate);
                if let Err(e) = out.result {
                    return Err(QueryFail {
                        code: e.code,
                        codespace: e.codespace,
                        log: e.log,
                    });
                }
                #[allow(deprecated)]
                let result = AbciResult {
                    data: Vec::new(),
                    log: String::new(),
                    events: out.events.into_iter().map(Into::into).collect(),
                    msg_responses: Vec::new(),
                };
                Ok(SimulateResponse {
                    gas_info: Some(GasInfo {
                        gas_wanted: out.gas_wanted,
                        gas_used: out.gas_used,
                    }),
                    result: Some(result),
                }
                .encode_to_vec())
            }
            "/ibc.core.client.v1.Query/ClientState" => ibc_query!(
                self,
                data,
                rawcl::QueryClientStateRequest,
                rawcl::QueryClientStateResponse,
                qcl::query_client_state
            ),
            "/ibc.core.client.v1.Query/ClientStates" => ibc_query_infallible!(
                self,
                data,
                rawcl::QueryClientStatesRequest,
                rawcl::QueryClientStatesResponse,
                qcl::query_client_states
            ),
            "/ibc.core.client.v1.Query/ConsensusState" => ibc_query!(
                self,
                data,
                rawcl::QueryConsensusStateRequest,
                rawcl::QueryConsensusStateResponse,
                qcl::query_consensus_state
            ),
            "/ibc.core.client.v1.Query/ConsensusStates" => ibc_query!(
                self,
                data,
                rawcl::QueryConsensusStatesRequest,
                rawcl::QueryConsensusStatesResponse,
                qcl::query_consensus_states
            ),
            "/ibc.core.client.v1.Query/ConsensusStateHeights" => ibc_query!(
                self,
                data,
                rawcl::QueryConsensusStateHeightsRequest,
                rawcl::QueryConsensusStateHeightsResponse,
                qcl::query_consensus_state_heights
            ),
            "/ibc.core.client.v1.Query/ClientStatus" => ibc_query!(
                self,
                data,
                rawcl::QueryClientStatusRequest,
                rawcl::QueryClientStatusResponse,
                qcl::query_client_status
            ),
            "/ibc.core.connection.v1.Query/Connection" => ibc_query!(
                self,
                data,
                rawconn::QueryConnectionRequest,
                rawconn::QueryConnectionResponse,
                qconn::query_connection
            ),
            "/ibc.core.connection.v1.Query/Connections" => ibc_query_infallible!(
                self,
                data,
                rawconn::QueryConnectionsRequest,
                rawconn::QueryConnectionsResponse,
                qconn::query_connections
            ),
            "/ibc.core.connection.v1.Query/ClientConnections" => ibc_query!(
                self,
                data,
                rawconn::QueryClientConnectionsRequest,
                rawconn::QueryClientConnectionsResponse,
                qconn::query_client_connections
            ),
            "/ibc.core.connection.v1.Query/ConnectionClientState" => ibc_query!(
                self,
                data,
                rawconn::QueryConnectionClientStateRequest,
                rawconn::QueryConnectionClientStateResponse,
                qconn::query_connection_client_state
            ),
            // ibc-go's wire carries the time in nanoseconds (ibc-rs's query helper answers seconds).
            "/ibc.core.connection.v1.Query/ConnectionParams" => {
                let _: rawconn::QueryConnectionParamsRequest = decode(data)?;
                let nanos = self.ibc.max_expected_time_per_block().as_nanos();
                Ok(rawconn::QueryConnectionParamsResponse {
                    params: Some(rawconn::Params {
                        max_expected_time_per_block: u64::try_from(nanos).unwrap_or(u64::MAX),
                    }),
                }
                .encode_to_vec())
            }
            "/ibc.core.channel.v1.Query/Channel" => ibc_query!(
                self,
                data,
                rawch::QueryChannelRequest,
                rawch::QueryChannelResponse,
                qch::query_channel
            ),
            "/ibc.core.channel.v1.Query/Channels" => ibc_query_infallible!(
                self,
                data,
                rawch::QueryChannelsRequest,
                rawch::QueryChannelsResponse,
                qch::query_channels
            ),
            "/ibc.core.channel.v1.Query/ConnectionChannels" => ibc_query!(
                self,
                data,
                rawch::QueryConnectionChannelsRequest,
                rawch::QueryConnectionChannelsResponse,
                qch::query_connection_channels
            ),
            "/ibc.core.channel.v1.Query/ChannelClientState" => ibc_query!(
                self,
                data,
                rawch::QueryChannelClientStateRequest,
                rawch::QueryChannelClientStateResponse,
                qch::query_channel_client_state
            ),
            "/ibc.core.channel.v1.Query/PacketCommitments" => ibc_query!(
                self,
                data,
                rawch::QueryPacketCommitmentsRequest,
                rawch::QueryPacketCommitmentsResponse,
                qch::query_packet_commitments
            ),
            "/ibc.core.channel.v1.Query/PacketAcknowledgements" => ibc_query!(
                self,
                data,
                rawch::QueryPacketAcknowledgementsRequest,
                rawch::QueryPacketAcknowledgementsResponse,
                qch::query_packet_acknowledgements
            ),
            "/ibc.core.channel.v1.Query/UnreceivedPackets" => self.unreceived_packets(data),
            "/ibc.core.channel.v1.Query/UnreceivedAcks" => ibc_query!(
                self,
                data,
                rawch::QueryUnreceivedAcksRequest,
                rawch::QueryUnreceivedAcksResponse,
                qch::query_unreceived_acks
            ),
            "/ibc.core.channel.v1.Query/NextSequenceReceive" => self.next_sequence_receive(data),
            "/ibc.core.channel.v1.Query/PacketCommitment" => ibc_query!(
                self,
                data,
                rawch::QueryPacketCommitmentRequest,
                rawch::QueryPacketCommitmentResponse,
                qch::query_packet_commitment
            ),
            "/ibc.core.channel.v1.Query/PacketAcknowledgement" => ibc_query!(
                self,
                data,
                rawch::QueryPacketAcknowledgementRequest,
                rawch::QueryPacketAcknowledgementResponse,
                qch::query_packet_acknowledgement
            ),
            "/ibc.core.channel.v1.Query/PacketReceipt" => ibc_query!(
                self,
                data,
                rawch::QueryPacketReceiptRequest,
                rawch::QueryPacketReceiptResponse,
                qch::query_packet_receipt
            ),
            other => Err(QueryFail {
                code: 6,
                codespace: "sdk".to_owned(),
                log: format!("unknown query path {other:?}: unknown request"),
            }),
        }
    }
}

fn prost_duration(d: std::time::Duration) -> ibc_proto::google::protobuf::Duration {
    ibc_proto::google::protobuf::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

impl Core {
    /// Next-sequence-receive with its proof, read as ibc-go stores it (8 big-endian bytes; ibc-query's own
    /// handler reads ibc-testkit's JSON form, which this devnet does not store).
    fn next_sequence_receive(&self, data: &[u8]) -> Result<Vec<u8>, QueryFail> {
        let raw: rawch::QueryNextSequenceReceiveRequest = decode(data)?;
        let (port, channel) = ids(&raw.port_id, &raw.channel_id)?;
        let path = SeqRecvPath::new(&port, &channel);
        let next = big_endian_sequence(&self.ibc, path.to_string())
            .ok_or_else(|| not_found(format!("next sequence receive of {port}/{channel}")))?;
        let height = self
            .ibc
            .host_height()
            .map_err(|e| not_found(e.to_string()))?;
        let proof = self
            .ibc
            .get_proof(height, &IbcPath::SeqRecv(path))
            .ok_or_else(|| {
                not_found(format!(
                    "proof of the next sequence receive of {port}/{channel}"
                ))
            })?;
        Ok(rawch::QueryNextSequenceReceiveResponse {
            next_sequence_receive: next.value(),
            proof,
            proof_height: Some(height.into()),
        }
        .encode_to_vec())
    }

    /// The sequences of `packet_commitment_sequences` not received on the channel: for an ordered channel those
    /// at or above its next sequence to receive (ordered channels keep no receipts), for an unordered one those
    /// without a receipt, as ibc-go answers.
    fn unreceived_packets(&self, data: &[u8]) -> Result<Vec<u8>, QueryFail> {
        let raw: rawch::QueryUnreceivedPacketsRequest = decode(data)?;
        let (port, channel) = ids(&raw.port_id, &raw.channel_id)?;
        let end = self
            .ibc
            .channel_end(&ChannelEndPath::new(&port, &channel))
            .map_err(|e| not_found(e.to_string()))?;
        if end.ordering != Order::Ordered {
            let req = raw
                .try_into()
                .map_err(|e: ibc_query::error::QueryError| invalid(e.to_string()))?;
            let resp = qch::query_unreceived_packets(&self.ibc, &req).map_err(not_found)?;
            let raw_resp: rawch::QueryUnreceivedPacketsResponse = resp.into();
            return Ok(raw_resp.encode_to_vec());
        }
        let next = big_endian_sequence(&self.ibc, SeqRecvPath::new(&port, &channel).to_string())
            .ok_or_else(|| not_found(format!("next sequence receive of {port}/{channel}")))?;
        let height = self
            .ibc
            .host_height()
            .map_err(|e| not_found(e.to_string()))?;
        Ok(rawch::QueryUnreceivedPacketsResponse {
            sequences: raw
                .packet_commitment_sequences
                .into_iter()
                .filter(|s| *s >= next.value())
                .collect(),
            height: Some(height.into()),
        }
        .encode_to_vec())
    }
}

fn ids(port: &str, channel: &str) -> Result<(PortId, ChannelId), QueryFail> {
    let port: PortId = port.parse().map_err(|e| invalid(format!("port id: {e}")))?;
    let channel: ChannelId = channel
        .parse()
        .map_err(|e| invalid(format!("channel id: {e}")))?;
    Ok((port, channel))
}
