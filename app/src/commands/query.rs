//! `relayd query ...`: the queries relayd makes while relaying, from the command line, in ADR-002's forms
//! (`query client state <chain> <client> [-h HEIGHT] [-p PROOF]`), on Cosmos and NEAR chains. Values are
//! decoded; proofs are reported with their height and size.

use std::process::ExitCode;

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::channel::v1::{Channel, IdentifiedChannel};
use ibc_proto::ibc::core::connection::v1::{ConnectionEnd, IdentifiedConnection};
use ibc_proto::ibc::lightclients::tendermint::v1 as tm;
use prost::Message;
use relayd_actors::chain::any::AnyEndpoint;
use relayd_actors::chain::cosmos::endpoint::CosmosEndpoint;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::{path, ChainEndpoint, ChainError, Proven, QueryHeight};
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::chain::near::header::NEAR_CLIENT_STATE_TYPE_URL;
use relayd_actors::chain::near::rpc::NearRpc;
use serde_json::{json, Value};

use crate::cli::{
    BalanceArgs, Cli, ClientQuery, PacketQuery, QueryGroup, EXIT_CONFIG, EXIT_RUNTIME,
};
use crate::commands::balance;
use crate::commands::config::load;
use crate::commands::fail;

/// Runs a query subcommand.
pub fn run(cli: &Cli, command: &QueryGroup) -> ExitCode {
    let config_path = cli.config_path();
    let config = match load(&config_path, command.out().json) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let chain_id = command.chain();
    let Some(chain) = config.chains.iter().find(|c| c.id.as_str() == chain_id) else {
        return fail(
            &format!("chain {chain_id} is not in {}", config_path.display()),
            EXIT_CONFIG,
        );
    };
    // A balance query names its account; the relayer's own is the default.
    let resolved;
    let command = match command {
        QueryGroup::Balance(args) if args.address.is_none() => {
            match balance::relayer_account(&config, &config_path, chain) {
                Ok(owner) => {
                    resolved = QueryGroup::Balance(BalanceArgs {
                        address: Some(owner),
                        ..args.clone()
                    });
                    &resolved
                }
                Err(e) => return fail(&e, EXIT_CONFIG),
            }
        }
        other => other,
    };
    if let Err(e) = chain.primary_rpc() {
        return fail(&e.to_string(), EXIT_CONFIG);
    }
    let result = if let Some(near) = chain.near() {
        let contract = match near.contract_account.parse() {
            Ok(contract) => contract,
            Err(e) => {
                return fail(
                    &format!("chain {chain_id}: contract_account: {e}"),
                    EXIT_CONFIG,
                )
            }
        };
        let endpoint = NearEndpoint::new(NearRpc::of_chain(chain), contract);
        actix_rt::System::new().block_on(execute_near(&endpoint, command, &config))
    } else if let Some(cosmos) = chain.cosmos() {
        let prefix = cosmos.store_prefix;
        actix_rt::System::new().block_on(async {
            let rpc = CosmosRpc::connect_configured(chain)
                .await
                .map_err(|e| ChainError::rpc(chain_id, "connect", e))?;
            execute(&rpc, &prefix, command, &config).await
        })
    } else {
        return fail(
            &format!("chain {chain_id}: incomplete chain entry (run `relayd config validate`)"),
            EXIT_CONFIG,
        );
    };
    match result {
        Ok(value) => {
            if command.out().json {
                println!("{value}");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string(), EXIT_RUNTIME),
    }
}

fn at(height: Option<u64>) -> QueryHeight {
    height.map_or(QueryHeight::Latest, QueryHeight::At)
}

/// The query height and, when proven, the proof's height and size: the proof verifies against the header after
/// the query height (its app hash on Cosmos, its `prev_state_root` on NEAR).
fn proof_info(proven: &Proven) -> Value {
    match &proven.proof {
        Some(p) => {
            json!({"query_height": proven.height, "proof_height": proven.height + 1, "proof_bytes": p.len(), "proof": hex::encode(p)})
        }
        None => json!({"query_height": proven.height}),
    }
}

fn decode_any(bytes: &[u8]) -> Value {
    let Ok(any) = Any::decode(bytes) else {
        return json!({"raw": hex::encode(bytes)});
    };
    let decoded = match any.type_url.as_str() {
        "/ibc.lightclients.tendermint.v1.ClientState" => {
            tm::ClientState::decode(any.value.as_slice())
                .ok()
                .and_then(|v| serde_json::to_value(v).ok())
        }
        "/ibc.lightclients.tendermint.v1.ConsensusState" => {
            tm::ConsensusState::decode(any.value.as_slice())
                .ok()
                .and_then(|v| serde_json::to_value(v).ok())
        }
        _ => None,
    };
    json!({"type_url": any.type_url, "value": decoded.unwrap_or_else(|| json!(hex::encode(&any.value)))})
}

fn decode<M: Message + Default + serde::Serialize>(bytes: &[u8]) -> Value {
    M::decode(bytes)
        .ok()
        .and_then(|m| serde_json::to_value(m).ok())
        .unwrap_or_else(|| json!({"raw": hex::encode(bytes)}))
}

async fn execute(
    rpc: &CosmosRpc,
    prefix: &str,
    command: &QueryGroup,
    config: &relayd_config::Config,
) -> Result<Value, ChainError> {
    let chain = rpc.chain().to_owned();
    let absent = |what: String, height: u64| ChainError::Query {
        chain: chain.clone(),
        call: what,
        code: 0,
        log: format!("not found at height {height}"),
    };
    Ok(match command {
        QueryGroup::Client(ClientQuery::State(a)) => {
            let client = &a.client;
            let p = path::client_state(client);
            let proven = rpc
                .query_ibc(prefix, &p, at(a.at.height), a.at.proof)
                .await?;
            if proven.value.is_empty() {
                return Err(absent(p, proven.height));
            }
            json!({"client_id": client, "client_state": decode_any(&proven.value), "proof": proof_info(&proven)})
        }
        QueryGroup::Client(ClientQuery::Consensus(a)) => {
            let (client, consensus_height) = (&a.client, &a.consensus_height);
            let (rev, h) = parse_height(&chain, consensus_height)?;
            let p = path::consensus_state(client, rev, h);
            let proven = rpc
                .query_ibc(prefix, &p, at(a.at.height), a.at.proof)
                .await?;
            if proven.value.is_empty() {
                return Err(absent(p, proven.height));
            }
            json!({"client_id": client, "consensus_height": consensus_height, "consensus_state": decode_any(&proven.value), "proof": proof_info(&proven)})
        }
        QueryGroup::Connection(a) => {
            let connection = &a.connection;
            let p = path::connection(connection);
            let proven = rpc
                .query_ibc(prefix, &p, at(a.at.height), a.at.proof)
                .await?;
            if proven.value.is_empty() {
                return Err(absent(p, proven.height));
            }
            json!({"connection_id": connection, "connection": decode::<ConnectionEnd>(&proven.value), "proof": proof_info(&proven)})
        }
        QueryGroup::Connections(a) => match &a.client {
            Some(client) => {
                json!({"client_id": client, "connections": rpc.client_connections(client).await?})
            }
            None => serde_json::to_value(rpc.connections().await?).unwrap_or_default(),
        },
        QueryGroup::Channel(a) => {
            let (port, channel) = (&a.port, &a.channel);
            let p = path::channel(port, channel);
            let proven = rpc
                .query_ibc(prefix, &p, at(a.at.height), a.at.proof)
                .await?;
            if proven.value.is_empty() {
                return Err(absent(p, proven.height));
            }
            json!({"port_id": port, "channel_id": channel, "channel": decode::<Channel>(&proven.value), "proof": proof_info(&proven)})
        }
        QueryGroup::Channels(a) => match &a.connection {
            Some(connection) => {
                serde_json::to_value(rpc.connection_channels(connection).await?).unwrap_or_default()
            }
            None => serde_json::to_value(rpc.channels().await?).unwrap_or_default(),
        },
        QueryGroup::Packet(PacketQuery::Pending(a)) => {
            pending(
                &CosmosEndpoint::new(rpc.clone(), prefix),
                &a.port,
                &a.channel,
                config,
            )
            .await?
        }
        QueryGroup::Packet(PacketQuery::Commitments(a)) => {
            let (port, channel) = (&a.port, &a.channel);
            json!({"port_id": port, "channel_id": channel, "sequences": rpc.packet_commitments(port, channel).await?})
        }
        QueryGroup::Balance(a) => {
            let address = a.address.as_deref().unwrap_or_default();
            let balances = rpc.bank_balances(address, a.denom.as_deref()).await?;
            balance::report(&chain, address, balances)
        }
    })
}

/// The queries a NEAR chain answers: IBC state read from the contract's storage (`view_state`, with its trie proof
/// when asked) through the same chain trait the relay uses, and the contract's commitment listing.
async fn execute_near(
    endpoint: &NearEndpoint,
    command: &QueryGroup,
    config: &relayd_config::Config,
) -> Result<Value, ChainError> {
    let chain = endpoint.chain_id().to_owned();
    let read = |p: String, height: Option<u64>, proof: bool| async move {
        let proven = endpoint.query_ibc(&p, at(height), proof).await?;
        if proven.value.is_empty() {
            return Err(ChainError::Query {
                chain: endpoint.chain_id().to_owned(),
                call: p,
                code: 0,
                log: format!("not found at height {}", proven.height),
            });
        }
        Ok(proven)
    };
    Ok(match command {
        QueryGroup::Client(ClientQuery::State(a)) => {
            let client = &a.client;
            let proven = read(path::client_state(client), a.at.height, a.at.proof).await?;
            json!({"client_id": client, "client_state": decode_any(&proven.value), "proof": proof_info(&proven)})
        }
        QueryGroup::Client(ClientQuery::Consensus(a)) => {
            let (client, consensus_height) = (&a.client, &a.consensus_height);
            let (rev, h) = parse_height(&chain, consensus_height)?;
            let p = path::consensus_state(client, rev, h);
            let proven = read(p, a.at.height, a.at.proof).await?;
            json!({"client_id": client, "consensus_height": consensus_height, "consensus_state": decode_any(&proven.value), "proof": proof_info(&proven)})
        }
        QueryGroup::Connection(a) => {
            let connection = &a.connection;
            let proven = read(path::connection(connection), a.at.height, a.at.proof).await?;
            json!({"connection_id": connection, "connection": decode::<ConnectionEnd>(&proven.value), "proof": proof_info(&proven)})
        }
        QueryGroup::Channel(a) => {
            let (port, channel) = (&a.port, &a.channel);
            let proven = read(path::channel(port, channel), a.at.height, a.at.proof).await?;
            json!({"port_id": port, "channel_id": channel, "channel": decode::<Channel>(&proven.value), "proof": proof_info(&proven)})
        }
        QueryGroup::Packet(PacketQuery::Commitments(a)) => {
            let (port, channel) = (&a.port, &a.channel);
            json!({"port_id": port, "channel_id": channel, "sequences": endpoint.packet_commitments(port, channel).await?})
        }
        QueryGroup::Connections(a) => match &a.client {
            Some(client) => {
                json!({"client_id": client, "connections": endpoint.client_connections(client).await?})
            }
            None => {
                let ids = endpoint.connections().await?;
                serde_json::to_value(near_connections(endpoint, ids).await?).unwrap_or_default()
            }
        },
        QueryGroup::Channels(a) => {
            let ids = match &a.connection {
                Some(connection) => endpoint.connection_channels(connection).await?,
                None => endpoint.channels().await?,
            };
            serde_json::to_value(near_channels(endpoint, ids).await?).unwrap_or_default()
        }
        QueryGroup::Packet(PacketQuery::Pending(a)) => {
            pending(endpoint, &a.port, &a.channel, config).await?
        }
        QueryGroup::Balance(a) => {
            let address = a.address.as_deref().unwrap_or_default();
            let balances = balance::near(endpoint, address, a.denom.as_deref()).await?;
            balance::report(&chain, address, balances)
        }
    })
}

/// The ends of the listed connections, read from the contract's storage at a final block after the listing (so
/// every listed end is there), in ibc-proto's `IdentifiedConnection` form as the Cosmos listing prints them.
async fn near_connections(
    endpoint: &NearEndpoint,
    ids: Vec<String>,
) -> Result<Vec<IdentifiedConnection>, ChainError> {
    let at = QueryHeight::At(endpoint.final_height().await?);
    let mut out = Vec::new();
    for id in ids {
        let raw = endpoint
            .query_ibc(&path::connection(&id), at, false)
            .await?;
        let end = ConnectionEnd::decode(raw.value.as_slice())
            .map_err(|e| ChainError::rpc(endpoint.chain_id(), &path::connection(&id), e))?;
        out.push(IdentifiedConnection {
            id,
            client_id: end.client_id,
            versions: end.versions,
            state: end.state,
            counterparty: end.counterparty,
            delay_period: end.delay_period,
        });
    }
    Ok(out)
}

/// The ends of the listed channels, as [`near_connections`] reads connections.
async fn near_channels(
    endpoint: &NearEndpoint,
    ids: Vec<(String, String)>,
) -> Result<Vec<IdentifiedChannel>, ChainError> {
    let at = QueryHeight::At(endpoint.final_height().await?);
    let mut out = Vec::new();
    for (port, channel) in ids {
        let p = path::channel(&port, &channel);
        let raw = endpoint.query_ibc(&p, at, false).await?;
        let end = Channel::decode(raw.value.as_slice())
            .map_err(|e| ChainError::rpc(endpoint.chain_id(), &p, e))?;
        out.push(IdentifiedChannel {
            state: end.state,
            ordering: end.ordering,
            counterparty: end.counterparty,
            connection_hops: end.connection_hops,
            version: end.version,
            port_id: port,
            channel_id: channel,
            upgrade_sequence: end.upgrade_sequence,
        });
    }
    Ok(out)
}

/// The configured NEAR chain (its id and endpoint) whose channel `cp_port`/`cp_channel` has `port`/`channel` as
/// its counterparty.
async fn near_counterparty(
    config: &relayd_config::Config,
    port: &str,
    channel: &str,
    cp_port: &str,
    cp_channel: &str,
) -> Option<(String, AnyEndpoint)> {
    for chain in config.chains.iter().filter(|c| c.near().is_some()) {
        let Ok(endpoint) = counterparty_endpoint(chain).await else {
            continue;
        };
        let Ok(proven) = endpoint
            .query_ibc(
                &path::channel(cp_port, cp_channel),
                QueryHeight::Latest,
                false,
            )
            .await
        else {
            continue;
        };
        let names_us = Channel::decode(proven.value.as_slice())
            .ok()
            .and_then(|end| end.counterparty)
            .is_some_and(|c| c.port_id == port && c.channel_id == channel);
        if names_us {
            return Some((chain.id.to_string(), endpoint));
        }
    }
    None
}

/// An endpoint of a configured chain of either kind.
async fn counterparty_endpoint(
    chain: &relayd_config::ChainConfig,
) -> Result<AnyEndpoint, ChainError> {
    let id = chain.id.as_str();
    chain
        .primary_rpc()
        .map_err(|e| ChainError::rpc(id, "config", e))?;
    if let Some(near) = chain.near() {
        let contract = near
            .contract_account
            .parse()
            .map_err(|e| ChainError::rpc(id, "contract_account", e))?;
        return Ok(AnyEndpoint::Near(NearEndpoint::new(
            NearRpc::of_chain(chain),
            contract,
        )));
    }
    let cosmos = chain
        .cosmos()
        .ok_or_else(|| ChainError::rpc(id, "config", "incomplete chain entry"))?;
    let rpc = CosmosRpc::connect_configured(chain)
        .await
        .map_err(|e| ChainError::rpc(id, "connect", e))?;
    Ok(AnyEndpoint::Cosmos(CosmosEndpoint::new(
        rpc,
        &cosmos.store_prefix,
    )))
}

/// A `revision-height` argument such as `0-42`.
fn parse_height(chain: &str, text: &str) -> Result<(u64, u64), ChainError> {
    text.split_once('-')
        .and_then(|(r, h)| Some((r.parse().ok()?, h.parse().ok()?)))
        .ok_or_else(|| {
            ChainError::rpc(
                chain,
                "query",
                format!("{text:?} is not a height such as 0-42"),
            )
        })
}

/// Unreceived packets and unrelayed acknowledgements of `port`/`channel`, asking the counterparty chain that the
/// channel's connection's client tracks.
async fn pending<E: ChainEndpoint>(
    src: &E,
    port: &str,
    channel: &str,
    config: &relayd_config::Config,
) -> Result<Value, ChainError> {
    let chain = src.chain_id().to_owned();
    let err = |what: String| ChainError::rpc(&chain, "query packet pending", what);
    let read = |p: String| async move {
        let proven = src.query_ibc(&p, QueryHeight::Latest, false).await?;
        if proven.value.is_empty() {
            return Err(ChainError::rpc(
                src.chain_id(),
                "query packet pending",
                format!("{p} not found"),
            ));
        }
        Ok(proven.value)
    };
    let end = Channel::decode(read(path::channel(port, channel)).await?.as_slice())
        .map_err(|e| err(format!("channel end: {e}")))?;
    let counterparty = end
        .counterparty
        .ok_or_else(|| err("channel has no counterparty".into()))?;
    let hop = end
        .connection_hops
        .first()
        .ok_or_else(|| err("channel has no connection".into()))?;
    let connection = ConnectionEnd::decode(read(path::connection(hop)).await?.as_slice())
        .map_err(|e| err(format!("connection end: {e}")))?;
    let client_any = Any::decode(
        read(path::client_state(&connection.client_id))
            .await?
            .as_slice(),
    )
    .map_err(|e| err(format!("client state: {e}")))?;
    let (cp_chain, cp) = if client_any.type_url == NEAR_CLIENT_STATE_TYPE_URL {
        // A 12-near client names no chain: the counterparty is the configured NEAR chain whose end of the channel
        // names this one back.
        near_counterparty(
            config,
            port,
            channel,
            &counterparty.port_id,
            &counterparty.channel_id,
        )
        .await
        .ok_or_else(|| {
            err(format!(
                "no configured NEAR chain has {}/{} with {port}/{channel} as its counterparty",
                counterparty.port_id, counterparty.channel_id
            ))
        })?
    } else {
        let client = tm::ClientState::decode(client_any.value.as_slice())
            .map_err(|e| err(format!("client state: {e}")))?;
        let cp_chain = config
            .chains
            .iter()
            .find(|c| c.id.as_str() == client.chain_id)
            .ok_or_else(|| {
                err(format!(
                    "counterparty chain {} is not in the config",
                    client.chain_id
                ))
            })?;
        (client.chain_id, counterparty_endpoint(cp_chain).await?)
    };
    let commitments = src.packet_commitments(port, channel).await?;
    let unreceived = if commitments.is_empty() {
        Vec::new()
    } else {
        cp.unreceived_packets(
            &counterparty.port_id,
            &counterparty.channel_id,
            &commitments,
        )
        .await?
    };
    let acked = cp
        .packet_acknowledgements(&counterparty.port_id, &counterparty.channel_id)
        .await?;
    let unrelayed_acks = if acked.is_empty() {
        Vec::new()
    } else {
        src.unreceived_acks(port, channel, &acked).await?
    };
    Ok(json!({
        "chain": chain,
        "port_id": port,
        "channel_id": channel,
        "counterparty": {"chain": cp_chain, "port_id": counterparty.port_id, "channel_id": counterparty.channel_id},
        "unreceived_packets": unreceived,
        "unrelayed_acks": unrelayed_acks,
    }))
}
