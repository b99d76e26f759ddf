//! IBC state queries on a Cosmos chain: proven values from `abci_query` on `store/<prefix>/key`, listings
//! through the query services (paginated, so they work on real chains with large state), on the node's gRPC
//! endpoint when one is configured and gRPC-over-ABCI otherwise.

use ibc_proto::cosmos::base::query::v1beta1::{PageRequest, PageResponse};
use ibc_proto::ibc::core::channel::v1 as chan;
use ibc_proto::ibc::core::client::v1 as client;
use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use ibc_proto::ibc::core::connection::v1 as conn;
use prost::Message;
use tendermint_rpc::Client;

use super::rpc::CosmosRpc;
use crate::chain::endpoint::{ChainError, Proven, QueryHeight};

/// Page size for listings: large enough to need few round trips, small enough for any node's limits.
const PAGE_LIMIT: u64 = 500;
/// Most pages one listing reads (a million entries): a bound on memory and time whatever a node answers.
const MAX_PAGES: usize = 2000;

impl CosmosRpc {
    /// Reads `path` from the IBC store named `store_prefix` (ABCI `store/<prefix>/key`), with a proof if `prove`.
    pub async fn query_ibc(
        &self,
        store_prefix: &str,
        path: &str,
        height: QueryHeight,
        prove: bool,
    ) -> Result<Proven, ChainError> {
        let at = match height {
            QueryHeight::Latest => None,
            QueryHeight::At(h) => Some(
                h.try_into()
                    .map_err(|e| ChainError::rpc(self.chain(), "abci_query", e))?,
            ),
        };
        let call = format!("abci_query {path}");
        let response = self
            .http()
            .abci_query(
                Some(format!("store/{store_prefix}/key")),
                path.as_bytes().to_vec(),
                at,
                prove,
            )
            .await
            .map_err(|e| ChainError::rpc(self.chain(), &call, e))?;
        if response.code.is_err() {
            return Err(ChainError::Query {
                chain: self.chain().to_owned(),
                call,
                code: response.code.value(),
                log: response.log,
            });
        }
        let height = response.height.value();
        let proof = match (prove, response.proof) {
            (false, _) => None,
            (true, None) => {
                return Err(ChainError::MissingProof {
                    chain: self.chain().to_owned(),
                    path: path.to_owned(),
                    height,
                })
            }
            (true, Some(ops)) => {
                let proofs = ops
                    .ops
                    .iter()
                    .map(|op| ics23::CommitmentProof::decode(op.data.as_slice()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        ChainError::rpc(self.chain(), &call, format!("undecodable proof: {e}"))
                    })?;
                Some(MerkleProof { proofs }.encode_to_vec())
            }
        };
        Ok(Proven {
            value: response.value,
            height,
            proof,
        })
    }

    /// Calls the gRPC query method `path` through CometBFT's `abci_query` at the latest height: the request
    /// encoded, the node's answer (code, log, codespace, value) returned undecoded, since callers read its
    /// failures differently (a listing's as a query error, a simulation's as a transaction verdict).
    pub(crate) async fn abci_grpc<Req: Message>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<tendermint_rpc::endpoint::abci_query::AbciQuery, tendermint_rpc::Error> {
        self.http()
            .abci_query(Some(path.to_owned()), request.encode_to_vec(), None, false)
            .await
    }

    /// Calls a gRPC query service method at the latest height: on the node's gRPC endpoint when the chain has a
    /// `grpc_addr`, else through `abci_query`.
    async fn grpc<Req, Resp>(&self, path: &str, request: &Req) -> Result<Resp, ChainError>
    where
        Req: Message + Clone + Send + Sync + 'static,
        Resp: Message + Default + Send + Sync + 'static,
    {
        if let Some(endpoint) = self.grpc_endpoint() {
            return endpoint.call(path, request.clone()).await;
        }
        let response = self
            .abci_grpc(path, request)
            .await
            .map_err(|e| ChainError::rpc(self.chain(), path, e))?;
        if response.code.is_err() {
            return Err(ChainError::Query {
                chain: self.chain().to_owned(),
                call: path.to_owned(),
                code: response.code.value(),
                log: response.log,
            });
        }
        Resp::decode(response.value.as_slice())
            .map_err(|e| ChainError::rpc(self.chain(), path, format!("undecodable response: {e}")))
    }

    /// Runs a paginated listing until the node reports no next page.
    async fn paged<Req, Resp, T>(
        &self,
        path: &str,
        make: impl Fn(Option<PageRequest>) -> Req,
        take: impl Fn(Resp) -> (Vec<T>, Option<PageResponse>),
    ) -> Result<Vec<T>, ChainError>
    where
        Req: Message + Clone + Send + Sync + 'static,
        Resp: Message + Default + Send + Sync + 'static,
    {
        let mut out = Vec::new();
        let mut key = Vec::new();
        // Every key asked with: a node whose pages come round again (A, B, A, ...) would keep the loop going.
        let mut asked = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let page = PageRequest {
                key: key.clone(),
                limit: PAGE_LIMIT,
                ..PageRequest::default()
            };
            asked.insert(key.clone());
            let (items, next) = take(self.grpc(path, &make(Some(page))).await?);
            out.extend(items);
            match next {
                Some(p) if p.next_key.is_empty() => return Ok(out),
                Some(p) if asked.contains(&p.next_key) => {
                    return Err(ChainError::rpc(
                        self.chain(),
                        path,
                        "the node's pages come round to a page already read",
                    ))
                }
                Some(p) => key = p.next_key,
                None => return Ok(out),
            }
        }
        Err(ChainError::rpc(
            self.chain(),
            path,
            format!("more than {MAX_PAGES} pages of {PAGE_LIMIT}; refused"),
        ))
    }

    /// The staking module's unbonding period: a client of this chain must trust its headers for less.
    pub async fn unbonding_period(&self) -> Result<std::time::Duration, ChainError> {
        use cosmrs::proto::cosmos::staking::v1beta1::{QueryParamsRequest, QueryParamsResponse};
        let path = "/cosmos.staking.v1beta1.Query/Params";
        let r: QueryParamsResponse = self.grpc(path, &QueryParamsRequest {}).await?;
        let d = r
            .params
            .and_then(|p| p.unbonding_time)
            .ok_or_else(|| ChainError::rpc(self.chain(), path, "no unbonding time"))?;
        Ok(std::time::Duration::new(
            u64::try_from(d.seconds).unwrap_or(0),
            u32::try_from(d.nanos).unwrap_or(0),
        ))
    }

    /// Every client on the chain: id and client state (`Any`).
    pub async fn client_states(&self) -> Result<Vec<client::IdentifiedClientState>, ChainError> {
        self.paged(
            "/ibc.core.client.v1.Query/ClientStates",
            |pagination| client::QueryClientStatesRequest { pagination },
            |r: client::QueryClientStatesResponse| (r.client_states, r.pagination),
        )
        .await
    }

    /// Every connection on the chain.
    pub async fn connections(&self) -> Result<Vec<conn::IdentifiedConnection>, ChainError> {
        self.paged(
            "/ibc.core.connection.v1.Query/Connections",
            |pagination| conn::QueryConnectionsRequest { pagination },
            |r: conn::QueryConnectionsResponse| (r.connections, r.pagination),
        )
        .await
    }

    /// The connection ids built on `client_id`.
    pub async fn client_connections(&self, client_id: &str) -> Result<Vec<String>, ChainError> {
        let r: conn::QueryClientConnectionsResponse = self
            .grpc(
                "/ibc.core.connection.v1.Query/ClientConnections",
                &conn::QueryClientConnectionsRequest {
                    client_id: client_id.to_owned(),
                },
            )
            .await?;
        Ok(r.connection_paths)
    }

    /// Every channel on the chain.
    pub async fn channels(&self) -> Result<Vec<chan::IdentifiedChannel>, ChainError> {
        self.paged(
            "/ibc.core.channel.v1.Query/Channels",
            |pagination| chan::QueryChannelsRequest { pagination },
            |r: chan::QueryChannelsResponse| (r.channels, r.pagination),
        )
        .await
    }

    /// The channels over `connection`.
    pub async fn connection_channels(
        &self,
        connection: &str,
    ) -> Result<Vec<chan::IdentifiedChannel>, ChainError> {
        self.paged(
            "/ibc.core.channel.v1.Query/ConnectionChannels",
            |pagination| chan::QueryConnectionChannelsRequest {
                connection: connection.to_owned(),
                pagination,
            },
            |r: chan::QueryConnectionChannelsResponse| (r.channels, r.pagination),
        )
        .await
    }

    /// Bank balances of `address` (x/bank's `Balance` for one denomination, `AllBalances` otherwise), as
    /// `(denom, amount)` with amounts as the chain writes them; one denomination the account never held is `0`.
    pub async fn bank_balances(
        &self,
        address: &str,
        denom: Option<&str>,
    ) -> Result<Vec<(String, String)>, ChainError> {
        use cosmrs::proto::cosmos::bank::v1beta1 as bank;
        if let Some(denom) = denom {
            let r: bank::QueryBalanceResponse = self
                .grpc(
                    "/cosmos.bank.v1beta1.Query/Balance",
                    &bank::QueryBalanceRequest {
                        address: address.to_owned(),
                        denom: denom.to_owned(),
                    },
                )
                .await?;
            let amount = r.balance.map_or_else(|| "0".to_owned(), |c| c.amount);
            return Ok(vec![(denom.to_owned(), amount)]);
        }
        let coins = self
            .paged(
                "/cosmos.bank.v1beta1.Query/AllBalances",
                |pagination| bank::QueryAllBalancesRequest {
                    address: address.to_owned(),
                    pagination: pagination.map(|p| {
                        cosmrs::proto::cosmos::base::query::v1beta1::PageRequest {
                            key: p.key,
                            offset: p.offset,
                            limit: p.limit,
                            count_total: p.count_total,
                            reverse: p.reverse,
                        }
                    }),
                    resolve_denom: false,
                },
                |r: bank::QueryAllBalancesResponse| {
                    let next = r.pagination.map(|p| PageResponse {
                        next_key: p.next_key,
                        total: p.total,
                    });
                    (r.balances, next)
                },
            )
            .await?;
        Ok(coins.into_iter().map(|c| (c.denom, c.amount)).collect())
    }

    /// Sequences with a packet commitment (sent, not yet acknowledged or timed out) on a channel.
    pub async fn packet_commitments(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<Vec<u64>, ChainError> {
        let states = self
            .paged(
                "/ibc.core.channel.v1.Query/PacketCommitments",
                |pagination| chan::QueryPacketCommitmentsRequest {
                    port_id: port.to_owned(),
                    channel_id: channel.to_owned(),
                    pagination,
                },
                |r: chan::QueryPacketCommitmentsResponse| (r.commitments, r.pagination),
            )
            .await?;
        let mut seqs: Vec<u64> = states.into_iter().map(|s| s.sequence).collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Of `sequences` sent to this chain's `port`/`channel`, those it has not received.
    pub async fn unreceived_packets(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        let r: chan::QueryUnreceivedPacketsResponse = self
            .grpc(
                "/ibc.core.channel.v1.Query/UnreceivedPackets",
                &chan::QueryUnreceivedPacketsRequest {
                    port_id: port.to_owned(),
                    channel_id: channel.to_owned(),
                    packet_commitment_sequences: sequences.to_vec(),
                },
            )
            .await?;
        let mut seqs = r.sequences;
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Of `sequences` sent from this chain's `port`/`channel` and acknowledged on the other side, those whose
    /// acknowledgement this chain has not processed.
    pub async fn unreceived_acks(
        &self,
        port: &str,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, ChainError> {
        let r: chan::QueryUnreceivedAcksResponse = self
            .grpc(
                "/ibc.core.channel.v1.Query/UnreceivedAcks",
                &chan::QueryUnreceivedAcksRequest {
                    port_id: port.to_owned(),
                    channel_id: channel.to_owned(),
                    packet_ack_sequences: sequences.to_vec(),
                },
            )
            .await?;
        let mut seqs = r.sequences;
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Sequences with a written acknowledgement on this chain's `port`/`channel`.
    pub async fn packet_acknowledgements(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<Vec<u64>, ChainError> {
        let states = self
            .paged(
                "/ibc.core.channel.v1.Query/PacketAcknowledgements",
                |pagination| chan::QueryPacketAcknowledgementsRequest {
                    port_id: port.to_owned(),
                    channel_id: channel.to_owned(),
                    pagination,
                    packet_commitment_sequences: Vec::new(),
                },
                |r: chan::QueryPacketAcknowledgementsResponse| (r.acknowledgements, r.pagination),
            )
            .await?;
        let mut seqs: Vec<u64> = states.into_iter().map(|s| s.sequence).collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// The next sequence an ordered channel expects to receive.
    pub async fn next_sequence_receive(
        &self,
        port: &str,
        channel: &str,
    ) -> Result<u64, ChainError> {
        let r: chan::QueryNextSequenceReceiveResponse = self
            .grpc(
                "/ibc.core.channel.v1.Query/NextSequenceReceive",
                &chan::QueryNextSequenceReceiveRequest {
                    port_id: port.to_owned(),
                    channel_id: channel.to_owned(),
                },
            )
            .await?;
        Ok(r.next_sequence_receive)
    }
}
