//! The IBC contract's view methods, as near-ibc exposes them: each reads the contract storage of one block
//! (clients, connections, channels, packet commitments, receipts and acks, token balances, events) and answers
//! JSON, or fails the way a contract's view function does.

use ibc::core::channel::types::channel::{ChannelEnd, IdentifiedChannelEnd};
use ibc::core::channel::types::commitment::{AcknowledgementCommitment, PacketCommitment};
use ibc::core::client::types::Height;
use ibc::core::connection::types::{ConnectionEnd, IdentifiedConnectionEnd};
use ibc::core::host::types::identifiers::{ChannelId, ClientId, ConnectionId, PortId, Sequence};
use ibc::core::host::types::path::{
    AckPath, ChannelEndPath, ClientConsensusStatePath, ClientStatePath, CommitmentPath,
    ConnectionPath, ReceiptPath, SeqRecvPath,
};
use ibc::primitives::proto::Protobuf;
use near_primitives::types::AccountId;
use serde::Deserialize;

use crate::near::ledger;

use super::{contract_data_key, ContractStorage, IbcContract};

impl IbcContract {
    /// Runs view method `method` with JSON `args` against the contract storage of one block; returns the JSON
    /// result bytes or the panic message.
    pub fn view(
        &self,
        storage: &ContractStorage<'_>,
        block_height: u64,
        method: &str,
        args: &[u8],
    ) -> Result<Vec<u8>, ViewError> {
        let out = match method {
            "get_latest_height" => json(&Height::new(0, block_height).map_err(panic)?),
            "get_commitment_prefix" => json(&contract_data_key(&self.account, b"")),
            "get_client_consensus_heights" => {
                let a: ClientArgs = parse(args)?;
                let prefix = format!("clients/{}/consensusStates/", a.client_id);
                let mut heights: Vec<Height> = storage
                    .keys_with_prefix(&prefix)
                    .iter()
                    .filter_map(|k| k[prefix.len()..].parse::<Height>().ok())
                    .collect();
                heights.sort();
                json(&heights)
            }
            "get_client_state" => {
                let a: ClientArgs = parse(args)?;
                let key = ClientStatePath::new(a.client_id).to_string();
                json(&storage.get(&key).cloned().unwrap_or_default())
            }
            "get_client_consensus" => {
                let a: ConsensusArgs = parse(args)?;
                let key = ClientConsensusStatePath::new(
                    a.client_id,
                    a.consensus_height.revision_number(),
                    a.consensus_height.revision_height(),
                )
                .to_string();
                json(&storage.get(&key).cloned().unwrap_or_default())
            }
            "get_connection_end" => {
                let a: ConnectionArgs = parse(args)?;
                let key = ConnectionPath::new(&a.connection_id).to_string();
                let end = storage
                    .get(&key)
                    .map(|b| ConnectionEnd::decode_vec(b).map_err(panic))
                    .transpose()?;
                json(&end)
            }
            "get_connections" => json(&connections(storage)?),
            "get_client_connections" => {
                let a: ClientArgs = parse(args)?;
                let ids: Vec<ConnectionId> = connections(storage)?
                    .into_iter()
                    .filter(|c| c.connection_end.client_id() == &a.client_id)
                    .map(|c| c.connection_id)
                    .collect();
                json(&ids)
            }
            // near-ibc takes a `QueryChannelsRequest` (pagination) and answers every channel.
            "get_channels" => json(&channels(storage)?),
            "get_connection_channels" => {
                let a: ConnectionArgs = parse(args)?;
                let on: Vec<IdentifiedChannelEnd> = channels(storage)?
                    .into_iter()
                    .filter(|c| c.channel_end.connection_hops().first() == Some(&a.connection_id))
                    .collect();
                json(&on)
            }
            "get_channel_end" => {
                let a: ChannelArgs = parse(args)?;
                let key = ChannelEndPath::new(&a.port_id, &a.channel_id).to_string();
                let end = storage
                    .get(&key)
                    .map(|b| ChannelEnd::decode_vec(b).map_err(panic))
                    .transpose()?;
                json(&end)
            }
            "get_packet_commitment" => {
                let a: PacketArgs = parse(args)?;
                let key = CommitmentPath::new(&a.port_id, &a.channel_id, a.sequence).to_string();
                json(&storage.get(&key).cloned().map(PacketCommitment::from))
            }
            "get_packet_commitment_sequences" => {
                let a: ChannelArgs = parse(args)?;
                let prefix = format!(
                    "commitments/ports/{}/channels/{}/sequences/",
                    a.port_id, a.channel_id
                );
                json(&sequences_under(storage, &prefix))
            }
            "get_packet_receipt" => {
                let a: PacketArgs = parse(args)?;
                let key = ReceiptPath::new(&a.port_id, &a.channel_id, a.sequence).to_string();
                // Stored as near-ibc's borsh `Receipt::Ok` ([0]); nothing when absent.
                json(&storage.get(&key).cloned().unwrap_or_default())
            }
            "get_unreceived_packets" | "get_unreceipt_packet" => {
                let a: UnreceivedArgs = parse(args)?;
                let missing: Vec<Sequence> = a
                    .sequences
                    .into_iter()
                    .filter(|s| {
                        let key = ReceiptPath::new(&a.port_id, &a.channel_id, *s).to_string();
                        storage.get(&key).is_none()
                    })
                    .collect();
                json(&missing)
            }
            "get_packet_acknowledgement" => {
                let a: PacketArgs = parse(args)?;
                let key = AckPath::new(&a.port_id, &a.channel_id, a.sequence).to_string();
                json(
                    &storage
                        .get(&key)
                        .cloned()
                        .map(AcknowledgementCommitment::from),
                )
            }
            "get_packet_acknowledgement_sequences" => {
                let a: ChannelArgs = parse(args)?;
                let prefix = format!(
                    "acks/ports/{}/channels/{}/sequences/",
                    a.port_id, a.channel_id
                );
                json(&sequences_under(storage, &prefix))
            }
            "get_next_sequence_receive" => {
                let a: ChannelArgs = parse(args)?;
                let key = SeqRecvPath::new(&a.port_id, &a.channel_id).to_string();
                let seq = storage
                    .get(&key)
                    .map(|b| {
                        <[u8; 8]>::try_from(b.as_slice())
                            .map(|le| Sequence::from(u64::from_le_bytes(le)))
                            .map_err(|_| panic("stored sequence is not 8 bytes"))
                    })
                    .transpose()?;
                json(&seq)
            }
            "get_ibc_events_at" => {
                let a: EventsArgs = parse(args)?;
                let evs = if a.height.revision_number() == 0 {
                    self.events
                        .get(&a.height.revision_height())
                        .cloned()
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                json(&evs)
            }
            // near-ibc's view of the heights its event history still holds (pruned with old blocks here).
            "get_ibc_events_heights" => json(
                &self
                    .events
                    .iter()
                    .filter(|(_, evs)| !evs.is_empty())
                    .map(|(h, _)| Height::new(0, *h).map_err(panic))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            "ft_balance_of" => {
                let a: BalanceArgs = parse(args)?;
                let denom = a
                    .denom
                    .ok_or_else(|| panic("ft_balance_of needs a denom"))?;
                json(&ledger::stored_balance(storage, a.account_id.as_str(), &denom).to_string())
            }
            "ft_balances_of" => {
                let a: BalanceArgs = parse(args)?;
                let all: Vec<DenomBalance> =
                    ledger::stored_balances(storage, a.account_id.as_str())
                        .into_iter()
                        .map(|(denom, amount)| DenomBalance {
                            denom,
                            amount: amount.to_string(),
                        })
                        .collect();
                json(&all)
            }
            "deliver" => {
                return Err(ViewError::Panic(
                    "ProhibitedInView { method_name: \"storage_write\" }".to_owned(),
                ))
            }
            _ => return Err(ViewError::MethodNotFound),
        };
        out
    }
}

/// Why a view call failed, in the terms nearcore reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    /// No such method.
    MethodNotFound,
    /// The method panicked with this message.
    Panic(String),
}

impl ViewError {
    /// nearcore's `vm_error` text for this failure.
    pub fn vm_error(&self) -> String {
        match self {
            Self::MethodNotFound => {
                "wasm execution failed with error: FunctionCallError(MethodResolveError(MethodNotFound))"
                    .to_owned()
            }
            Self::Panic(m) => format!(
                "wasm execution failed with error: FunctionCallError(ExecutionError(\"Smart contract panicked: {m}\"))"
            ),
        }
    }
}

fn panic(e: impl std::fmt::Display) -> ViewError {
    ViewError::Panic(e.to_string())
}

fn parse<T: for<'de> Deserialize<'de>>(args: &[u8]) -> Result<T, ViewError> {
    serde_json::from_slice(args)
        .map_err(|e| ViewError::Panic(format!("Failed to deserialize input from JSON.: {e}")))
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ViewError> {
    serde_json::to_vec(v).map_err(panic)
}

fn sequences_under(storage: &ContractStorage<'_>, prefix: &str) -> Vec<Sequence> {
    let mut seqs: Vec<Sequence> = storage
        .keys_with_prefix(prefix)
        .iter()
        .filter_map(|k| k[prefix.len()..].parse::<u64>().ok())
        .map(Sequence::from)
        .collect();
    seqs.sort();
    seqs
}

/// Every connection end in the contract's storage (`connections/{id}`), in key order.
fn connections(storage: &ContractStorage<'_>) -> Result<Vec<IdentifiedConnectionEnd>, ViewError> {
    storage
        .keys_with_prefix("connections/")
        .into_iter()
        .filter_map(|key| {
            let id = key
                .strip_prefix("connections/")?
                .parse::<ConnectionId>()
                .ok()?;
            let bytes = storage.get(&key)?;
            Some(
                ConnectionEnd::decode_vec(bytes)
                    .map(|end| IdentifiedConnectionEnd::new(id, end))
                    .map_err(panic),
            )
        })
        .collect()
}

/// Every channel end in the contract's storage (`channelEnds/ports/{port}/channels/{channel}`), in key order.
fn channels(storage: &ContractStorage<'_>) -> Result<Vec<IdentifiedChannelEnd>, ViewError> {
    storage
        .keys_with_prefix("channelEnds/ports/")
        .into_iter()
        .filter_map(|key| {
            let (port, channel) = key
                .strip_prefix("channelEnds/ports/")?
                .split_once("/channels/")?;
            let port = port.parse::<PortId>().ok()?;
            let channel = channel.parse::<ChannelId>().ok()?;
            let bytes = storage.get(&key)?;
            Some(
                ChannelEnd::decode_vec(bytes)
                    .map(|end| IdentifiedChannelEnd::new(port, channel, end))
                    .map_err(panic),
            )
        })
        .collect()
}

#[derive(Deserialize)]
struct ClientArgs {
    client_id: ClientId,
}

#[derive(Deserialize)]
struct ConsensusArgs {
    client_id: ClientId,
    consensus_height: Height,
}

#[derive(Deserialize)]
struct ConnectionArgs {
    connection_id: ConnectionId,
}

#[derive(Deserialize)]
struct ChannelArgs {
    port_id: PortId,
    channel_id: ChannelId,
}

#[derive(Deserialize)]
struct PacketArgs {
    port_id: PortId,
    channel_id: ChannelId,
    sequence: Sequence,
}

#[derive(Deserialize)]
struct UnreceivedArgs {
    port_id: PortId,
    channel_id: ChannelId,
    sequences: Vec<Sequence>,
}

#[derive(Deserialize)]
struct BalanceArgs {
    account_id: AccountId,
    denom: Option<String>,
}

/// One entry of `ft_balances_of`: amounts are decimal strings, as NEP-141's `U128`.
#[derive(serde::Serialize)]
struct DenomBalance {
    denom: String,
    amount: String,
}

#[derive(Deserialize)]
struct EventsArgs {
    height: Height,
}
