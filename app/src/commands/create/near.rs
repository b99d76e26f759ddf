//! `relayd create client` with a NEAR end: a `12-near` client of a NEAR chain on a Cosmos chain, created from a
//! light-client block relayd's NEAR light client verified from its stored head; and a Tendermint client of a Cosmos
//! chain on a NEAR chain, delivered through relayd's NEAR `deliver` submitter.

use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use relayd_actors::chain::endpoint::{path, ChainEndpoint, QueryHeight};
use relayd_actors::chain::near::backend::NearLight;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::store::StateStore;
use relayd_config::ChainConfig;
use relayd_messages::IbcEvent;

use super::{attr, BoxError, Env};

/// The pause between looks at the NEAR node while the light client waits for a block to verify.
const POLL: Duration = Duration::from_millis(200);

/// Creates a `12-near` client of NEAR chain `reference` on Cosmos chain `host`; returns its id. The client's
/// consensus state is the newest block relayd's NEAR light client verified from the head in the state database
/// (`relayd light init`); without a stored head the command fails as the service does, unless the chain sets
/// `trust_on_first_use`.
pub(super) async fn create_near_client(
    env: &Env,
    host: &ChainConfig,
    reference: &ChainConfig,
) -> Result<String, BoxError> {
    let id = reference.id.as_str();
    let settings = reference
        .near()
        .ok_or_else(|| format!("{id}: not a complete NEAR chain entry"))?;
    let store = StateStore::open(&env.dir.join("state")).map_err(|e| {
        format!("{id}: the state database, where the trusted NEAR head is kept (is relayd running on this data directory?): {e}")
    })?;
    reference.primary_rpc()?;
    let rpc = NearRpc::of_chain(reference);
    // Ten block times for the light client to see a block it can verify, as in the service.
    let wait = reference
        .max_block_time
        .get()
        .saturating_mul(10)
        .max(Duration::from_secs(10));
    if settings.trust_on_first_use && store.trusted_near(id)?.is_none() {
        eprintln!("relayd: {id}: TRUST ON FIRST USE (trust_on_first_use = true): no stored NEAR head, so the client's root of trust is the node's latest light-client block, unverified; for development only");
    }
    let mut light = NearLight::new(rpc, store.clone(), wait, POLL, settings.trust_on_first_use)?;
    let signer = env.signer(host).await?;
    let (msg, height, hash) = light
        .create_client_msg(reference.trusting_period.get(), &signer)
        .await?;
    drop(light);
    store.flush()?;
    eprintln!("relayd: {id}: the client trusts block {height} ({hash}), verified by relayd's NEAR light client");
    let outcome = env.submit(host, msg).await?;
    attr(&outcome, "create_client", "client_id")
        .ok_or_else(|| format!("{}: create_client event without a client id", host.id).into())
}

/// Delivers `msg` (a `MsgCreateClient`) to NEAR chain `host` through the IBC contract; returns the id of the client
/// the contract's `create_client` event names.
pub(super) async fn deliver_create_client(
    host: &ChainConfig,
    msg: Any,
) -> Result<String, BoxError> {
    deliver_for(host, msg, "create_client", |e| match e {
        IbcEvent::CreateClient { client_id, .. } => Some(client_id.to_string()),
        _ => None,
    })
    .await
}

/// Delivers `msg` to NEAR chain `host` through the IBC contract; returns the first IBC event of the blocks its
/// receipts ran in that `pick` accepts.
async fn deliver_for<T>(
    host: &ChainConfig,
    msg: Any,
    what: &str,
    pick: impl Fn(IbcEvent) -> Option<T>,
) -> Result<T, BoxError> {
    let (endpoint, submitter) = relayd_actors::chain::near::from_config(host)?;
    let outcome = submitter.submit(&[msg]).await?;
    for block in &outcome.receipt_blocks {
        let height = endpoint.rpc().block_by_hash(*block).await?.header.height;
        for event in endpoint.ibc_events_at(height).await? {
            if let Some(found) = pick(event.event) {
                return Ok(found);
            }
        }
    }
    Err(format!(
        "{}: deliver {} executed without a {what} event",
        host.id, outcome.tx_hash
    )
    .into())
}

/// Delivers `MsgConnectionOpenInit` to NEAR chain `host`; returns the new connection's id.
pub(super) async fn deliver_connection_init(
    host: &ChainConfig,
    msg: Any,
) -> Result<String, BoxError> {
    deliver_for(host, msg, "connection_open_init", |e| match e {
        IbcEvent::ConnectionOpenInit(a) => Some(a.connection_id.to_string()),
        _ => None,
    })
    .await
}

/// Delivers `MsgChannelOpenInit` to NEAR chain `host`; returns the new channel's id.
pub(super) async fn deliver_channel_init(host: &ChainConfig, msg: Any) -> Result<String, BoxError> {
    deliver_for(host, msg, "channel_open_init", |e| match e {
        IbcEvent::ChannelOpenInit(a) => Some(a.channel_id.to_string()),
        _ => None,
    })
    .await
}

/// NEAR's commitment prefix as a counterparty records it: the trie-key prefix of the IBC contract's storage,
/// `[9] ++ contract ++ ","`.
pub(super) fn commitment_prefix(chain: &ChainConfig) -> Option<Vec<u8>> {
    chain
        .near()
        .map(|n| relayd_actors::chain::near::trie::contract_data_key(&n.contract_account, b""))
}

/// The client a connection on NEAR chain `host` is built on, and its stored state (`Any` bytes).
pub(super) async fn connection_client_state(
    host: &ChainConfig,
    connection: &str,
) -> Result<Vec<u8>, BoxError> {
    let (endpoint, _) = relayd_actors::chain::near::from_config(host)?;
    let client = endpoint.connection_client(connection).await?;
    Ok(endpoint
        .query_ibc(&path::client_state(&client), QueryHeight::Latest, false)
        .await?
        .value)
}

/// Copies what relayd verified of the NEAR chains among `chains` (the trusted head and the recorded state roots)
/// from the state database `from` into `to`: into a short-lived relay system's scratch database so its NEAR light
/// clients resume from the heads the operator vouched for, and back so the next command knows what it verified.
pub(super) fn copy_near_state(
    from: &StateStore,
    to: &StateStore,
    chains: &[&ChainConfig],
) -> Result<(), BoxError> {
    for chain in chains.iter().filter(|c| c.near().is_some()) {
        let id = chain.id.as_str();
        if let Some(head) = from.trusted_near(id)? {
            to.save_trusted_near(id, &head)?;
        }
        for (height, root) in from.near_roots(id)? {
            to.save_near_root(id, height, &root)?;
        }
    }
    Ok(())
}

/// The state database in `dir`, where the trusted NEAR heads are kept, when `chains` has a NEAR chain.
pub(super) fn near_state(
    dir: &std::path::Path,
    chains: &[&ChainConfig],
) -> Result<Option<StateStore>, BoxError> {
    if chains.iter().all(|c| c.near().is_none()) {
        return Ok(None);
    }
    let store = StateStore::open(&dir.join("state")).map_err(|e| {
        format!("the state database, where the trusted NEAR heads are kept (is relayd running on this data directory?): {e}")
    })?;
    Ok(Some(store))
}
