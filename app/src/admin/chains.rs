//! What the admin server knows about each chain beyond the actors: a periodic probe of the chain's node (RPC
//! health and latency), the clients relayd relies on that the chain hosts (height and time to expiry) and the
//! relayer account's balance. Probing in the background keeps `/chains` and `/metrics` fast and never lets a
//! slow node stall a scrape.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cosmrs::proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState};
use prost::Message;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::{path, QueryHeight};
use relayd_actors::metrics::Metrics;
use relayd_actors::store::now_ms;
use relayd_config::{ChainConfig, Config};
use serde::Serialize;
use tendermint_rpc::Client;

/// How often every chain is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(3);
/// How long one probe call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The node's health as last probed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RpcHealth {
    /// Whether the node answered `status`.
    pub healthy: bool,
    /// How long it took, ms.
    pub latency_ms: Option<u64>,
    /// The height it reported.
    pub latest_height: Option<u64>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// A client hosted on the chain.
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    /// The client.
    pub client_id: String,
    /// The chain it tracks.
    pub tracked_chain: Option<String>,
    /// Its latest height, `revision-height`.
    pub latest_height: Option<String>,
    /// Its trusting period, seconds.
    pub trusting_period_secs: Option<u64>,
    /// Seconds until it expires (negative: expired), from its latest consensus state's time.
    pub expires_in_secs: Option<i64>,
    /// Whether it is frozen.
    pub frozen: Option<bool>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// The relayer account on the chain.
#[derive(Debug, Clone, Serialize)]
pub struct WalletInfo {
    /// Its address.
    pub address: String,
    /// The fee denom.
    pub denom: String,
    /// Its balance in that denom (a decimal string: amounts exceed JSON's safe integers).
    pub balance: Option<String>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// One chain's last probe.
#[derive(Debug, Clone, Serialize)]
pub struct ChainProbe {
    /// When it ran, ms since the epoch.
    pub probed_ms: u64,
    /// The node.
    pub rpc: RpcHealth,
    /// Its hosted clients listed in `client_ids`.
    pub clients: Vec<ClientInfo>,
    /// The relayer account.
    pub wallet: WalletInfo,
}

/// The latest probe of every chain.
pub type Probes = Arc<RwLock<HashMap<String, ChainProbe>>>;

struct Target {
    chain: ChainConfig,
    store_prefix: String,
    address: String,
    /// The primary signing key's name.
    key: String,
    denom: String,
    rpc: Option<CosmosRpc>,
}

/// Probes every Cosmos chain of `config` forever, every [`PROBE_EVERY`]; `addresses` are the relayer accounts.
pub fn spawn_prober(
    config: &Config,
    addresses: HashMap<String, Vec<(String, String)>>,
    probes: Probes,
    metrics: Metrics,
) {
    let mut targets: Vec<Target> = config
        .chains
        .iter()
        .filter_map(|c| {
            let s = c.cosmos()?;
            let (key, address) = addresses
                .get(c.id.as_str())
                .and_then(|keys| keys.first().cloned())
                .unwrap_or_default();
            Some(Target {
                chain: c.clone(),
                store_prefix: s.store_prefix,
                address,
                key,
                denom: s.gas_price.denom,
                rpc: None,
            })
        })
        .collect();
    actix::spawn(async move {
        loop {
            for t in &mut targets {
                let probe = probe(t, &metrics).await;
                let mut map = match probes.write() {
                    Ok(m) => m,
                    Err(poisoned) => poisoned.into_inner(),
                };
                map.insert(t.chain.id.to_string(), probe);
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    });
}

async fn timed<T, E: std::fmt::Display>(
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
    }
}

async fn probe(t: &mut Target, metrics: &Metrics) -> ChainProbe {
    let id = t.chain.id.to_string();
    let started = Instant::now();
    let rpc = match t.rpc.clone() {
        Some(rpc) => Ok(rpc),
        None => timed(CosmosRpc::connect_endpoints(&t.chain)).await,
    };
    let status = match rpc {
        Ok(rpc) => timed(rpc.status()).await.map(|s| (rpc, s.1)),
        Err(e) => Err(e),
    };
    let elapsed = started.elapsed();
    metrics.rpc(&id, elapsed.as_secs_f64(), status.is_ok());
    let families = metrics.families();
    let (health, rpc) = match status {
        Ok((rpc, height)) => (
            RpcHealth {
                healthy: true,
                latency_ms: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
                latest_height: Some(height),
                error: None,
            },
            Some(rpc),
        ),
        Err(e) => (
            RpcHealth {
                error: Some(e),
                ..RpcHealth::default()
            },
            None,
        ),
    };
    t.rpc = rpc.clone();
    let mut clients = Vec::new();
    for client in &t.chain.client_ids {
        let info = match &rpc {
            Some(rpc) => client_info(rpc, &t.store_prefix, client.as_str()).await,
            None => Err("the node is unreachable".to_owned()),
        };
        let info = info.unwrap_or_else(|e| ClientInfo {
            client_id: client.to_string(),
            tracked_chain: None,
            latest_height: None,
            trusting_period_secs: None,
            expires_in_secs: None,
            frozen: None,
            error: Some(e),
        });
        if let Some(secs) = info.expires_in_secs {
            families
                .client_expiry_seconds
                .with_label_values(&[&id, client.as_str()])
                .set(secs);
        }
        clients.push(info);
    }
    let balance = match &rpc {
        Some(rpc) => balance(rpc, &t.address, &t.denom).await,
        None => Err("the node is unreachable".to_owned()),
    };
    // The primary key's gauge, also while the chain's TxSubmitter is down; every key's balance (the primary's
    // too) is read by the TxSubmitter's lanes and set from their board at each scrape (`telemetry.rs`).
    if let Ok(b) = &balance {
        families
            .wallet_balance
            .with_label_values(&[&id, &t.denom, &t.key])
            .set(i64::try_from(*b).unwrap_or(i64::MAX));
    }
    ChainProbe {
        probed_ms: now_ms(),
        rpc: health,
        clients,
        wallet: WalletInfo {
            address: t.address.clone(),
            denom: t.denom.clone(),
            balance: balance.as_ref().ok().map(u128::to_string),
            error: balance.err(),
        },
    }
}

fn decode_any<M: Message + Default>(raw: &[u8], type_url: &str) -> Result<M, String> {
    let any = Any::decode(raw).map_err(|e| format!("not an Any: {e}"))?;
    if any.type_url != type_url {
        return Err(format!("unsupported type {}", any.type_url));
    }
    M::decode(any.value.as_slice()).map_err(|e| format!("undecodable {type_url}: {e}"))
}

async fn client_info(rpc: &CosmosRpc, prefix: &str, client: &str) -> Result<ClientInfo, String> {
    let raw = timed(rpc.query_ibc(
        prefix,
        &path::client_state(client),
        QueryHeight::Latest,
        false,
    ))
    .await?
    .value;
    if raw.is_empty() {
        return Err(format!("{client} does not exist on the chain"));
    }
    let cs: ClientState = decode_any(&raw, "/ibc.lightclients.tendermint.v1.ClientState")?;
    let latest = cs.latest_height.unwrap_or_default();
    let trusting = cs.trusting_period.map_or(0, |d| d.seconds.max(0));
    let raw = timed(rpc.query_ibc(
        prefix,
        &path::consensus_state(client, latest.revision_number, latest.revision_height),
        QueryHeight::Latest,
        false,
    ))
    .await?
    .value;
    let expires = if raw.is_empty() {
        None
    } else {
        let cons: ConsensusState =
            decode_any(&raw, "/ibc.lightclients.tendermint.v1.ConsensusState")?;
        cons.timestamp.map(|ts| {
            let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
            ts.seconds + trusting - now
        })
    };
    Ok(ClientInfo {
        client_id: client.to_owned(),
        tracked_chain: Some(cs.chain_id),
        latest_height: Some(format!(
            "{}-{}",
            latest.revision_number, latest.revision_height
        )),
        trusting_period_secs: Some(u64::try_from(trusting).unwrap_or(0)),
        expires_in_secs: expires,
        frozen: Some(
            cs.frozen_height
                .is_some_and(|h| h.revision_height != 0 || h.revision_number != 0),
        ),
        error: None,
    })
}

async fn balance(rpc: &CosmosRpc, address: &str, denom: &str) -> Result<u128, String> {
    let request = QueryBalanceRequest {
        address: address.to_owned(),
        denom: denom.to_owned(),
    };
    let path = "/cosmos.bank.v1beta1.Query/Balance";
    let response =
        timed(
            rpc.http()
                .abci_query(Some(path.to_owned()), request.encode_to_vec(), None, false),
        )
        .await?;
    if response.code.is_err() {
        return Err(format!("{path}: {}", response.log));
    }
    let decoded = QueryBalanceResponse::decode(response.value.as_slice())
        .map_err(|e| format!("{path}: undecodable answer: {e}"))?;
    decoded.balance.map_or(Ok(0), |c| {
        c.amount
            .parse()
            .map_err(|e| format!("{path}: amount {:?}: {e}", c.amount))
    })
}
