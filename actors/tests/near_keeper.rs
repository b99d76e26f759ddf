//! The ClientKeeper keeps clients fresh both ways between a Cosmos devnet chain and a NEAR devnet with short
//! epochs: a `12-near` client on the Cosmos chain (created from a block relayd's NEAR light client verified from a
//! head the operator vouched for) and a Tendermint client of the Cosmos chain on NEAR (delivered through relayd's
//! `deliver`) are both updated by the keeper, running in relayd's actor system, before their trusting periods run
//! out, the NEAR one across NEAR epoch changes, with the chains' clients accepting every update.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use actix::Actor;
use devnet::near_client::{NearClientState, NearConsensusState};
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState};
use prost::Message;
use relayd_actors::chain::cosmos::client::{create_client_msg, ClientParams};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::ChainEndpoint;
use relayd_actors::chain::near::backend::{near_light_init, NearLight};
use relayd_actors::chain::near::credentials::load_signer;
use relayd_actors::chain::near::endpoint::NearEndpoint;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::tx::{NearTxConfig, NearTxSubmitter};
use relayd_actors::client_keeper::state::ClientPolicy;
use relayd_actors::client_keeper::{ClientKeeper, TrackedClient};
use relayd_actors::keys::{KeySource, KeyStore};
use relayd_actors::meter::{Meter, MeteredRecipient};
use relayd_actors::store::StateStore;
use relayd_messages::{ChainId, ClientId, ClientReport, IbcEvent, QueryClientHealth};
use support::chain::{Chain, Wallet};
use support::light::unbonding_period;
use tokio::sync::{mpsc, oneshot};

const BLOCK_TIME: Duration = Duration::from_millis(200);
/// Short enough for the keeper's refresh (at a third of it) to come within the test.
const TRUSTING: Duration = Duration::from_secs(30);

async fn stored(chain: &Chain, path: String) -> Any {
    let raw = chain
        .query("store/ibc/key", path.into_bytes(), None, false)
        .await
        .unwrap()
        .value;
    Any::decode(raw.as_slice()).unwrap()
}

async fn tm_on_near(endpoint: &NearEndpoint, client: &str) -> (u64, u64) {
    let raw = endpoint.client_state(client).await.unwrap();
    let state = ClientState::decode(Any::decode(raw.as_slice()).unwrap().value.as_slice()).unwrap();
    let height = state.latest_height.unwrap().revision_height;
    let raw = endpoint.consensus_state(client, 0, height).await.unwrap();
    let cs = ConsensusState::decode(Any::decode(raw.as_slice()).unwrap().value.as_slice()).unwrap();
    let t = cs.timestamp.unwrap();
    (height, t.seconds as u64 * 1_000_000_000 + t.nanos as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_refreshes_clients_both_ways_between_cosmos_and_near_before_expiry() {
    let chains = devnet::start_chains(1, &devnet::ChainOptions::local("ibc", BLOCK_TIME))
        .await
        .unwrap();
    let cosmos = Chain::connect(&chains[0]);
    let wallet = Wallet::genesis(&chains[0], "relayer");
    let dir = tempfile::tempdir().unwrap();
    let mut options = devnet::near::NearOptions::local(BLOCK_TIME);
    options.genesis.epoch_length = 5;
    options.home = Some(dir.path().join("near"));
    let near = devnet::near::start(options).await.unwrap();
    let near_id = near.chain_id().to_owned();
    let relayer = near.genesis.relayer.account_id.clone();
    let contract = near.genesis.ibc.account_id.clone();
    let key_file = dir
        .path()
        .join("near")
        .join("keys")
        .join(format!("{relayer}.json"));
    let rpc = NearRpc::new(&near_id, &near.rpc_url());
    let endpoint = NearEndpoint::new(rpc.clone(), contract.clone());

    // relayd's data: the Cosmos relayer key, and a NEAR head the operator vouches for.
    let data = dir.path().join("data");
    let account = chains[0].genesis.account("relayer").unwrap();
    let cosmos_key = dir.path().join("ibc-0-relayer.json");
    std::fs::write(
        &cosmos_key,
        format!(
            "{{\"private_key\": \"{}\"}}",
            hex::encode(account.private_key)
        ),
    )
    .unwrap();
    KeyStore::open(&data.join("keys"))
        .unwrap()
        .add(
            "ibc-0",
            "relayer",
            "cosmos",
            KeySource::KeyFile(&cosmos_key),
        )
        .unwrap();
    let store = StateStore::open(&data.join("state")).unwrap();
    let epoch = near.genesis.epoch_length;
    let vouched = 2 * epoch + 3;
    near.wait_for_height(vouched + 2).await;
    let hash = rpc.block(Some(vouched)).await.unwrap().header.hash;
    near_light_init(&rpc, &store, vouched, hash).await.unwrap();

    // The 12-near client on ibc-0, from the block relayd's light client verified.
    let mut light = NearLight::new(
        rpc.clone(),
        store.clone(),
        Duration::from_secs(10),
        BLOCK_TIME,
        false,
    )
    .unwrap();
    let (msg, near_start, _) = light
        .create_client_msg(TRUSTING, &wallet.address)
        .await
        .unwrap();
    drop(light);
    let near_client = cosmos
        .submit(&wallet, &[msg])
        .await
        .attr("create_client", "client_id")
        .unwrap();
    let start_cs = NearConsensusState::try_from(
        stored(
            &cosmos,
            format!("clients/{near_client}/consensusStates/0-{near_start}"),
        )
        .await,
    )
    .unwrap();

    // The Tendermint client of ibc-0 on NEAR.
    let src = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let root = src.fetch_light_block(cosmos.height().await).await.unwrap();
    let params = ClientParams {
        trust_level: (1, 3),
        trusting_period: TRUSTING,
        unbonding_period: unbonding_period(&cosmos).await,
        max_clock_drift: Duration::from_secs(20),
        proof_specs: vec![support::proof::spec(), support::proof::spec()],
    };
    let signer = load_signer(&key_file, Some(relayer.as_str())).unwrap();
    let submitter = NearTxSubmitter::new(
        rpc.clone(),
        signer,
        contract.clone(),
        NearTxConfig::default(),
    );
    let created = submitter
        .submit(&[create_client_msg(&root, &params, relayer.as_str())])
        .await
        .unwrap();
    let mut tm_client = None;
    for block in &created.receipt_blocks {
        let height = rpc.block_by_hash(*block).await.unwrap().header.height;
        for event in endpoint.ibc_events_at(height).await.unwrap() {
            if let IbcEvent::CreateClient { client_id, .. } = event.event {
                tm_client = Some(client_id.to_string());
            }
        }
    }
    let tm_client = tm_client.expect("create_client event");
    let (tm_start, tm_start_time) = tm_on_near(&endpoint, &tm_client).await;

    // relayd's actor system over both chains, and a keeper of the two clients.
    let config_path = dir.path().join("relayd.toml");
    std::fs::write(
        &config_path,
        format!(
            "[global]\ntimeout = \"10s\"\ndata_dir = \"data\"\n\n[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"{}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_gas = 50000000\nmax_block_time = \"2s\"\ntrusting_period = \"30s\"\n\n[[chains]]\nid = \"{near_id}\"\ntype = \"near\"\nrpc_addr = \"{}\"\ncontract_account = \"{contract}\"\nsigner_account = \"{relayer}\"\nkey_file = \"{}\"\nmax_block_time = \"2s\"\ntrusting_period = \"30s\"\n",
            chains[0].rpc_url(),
            near.rpc_url(),
            key_file.display()
        ),
    )
    .unwrap();
    let config = relayd_config::Config::load(&config_path).unwrap();
    let tracked = vec![
        TrackedClient {
            host: ChainId::new("ibc-0".to_owned()).unwrap(),
            client_id: ClientId::new(near_client.clone()).unwrap(),
            tracked: ChainId::new(near_id.clone()).unwrap(),
        },
        TrackedClient {
            host: ChainId::new(near_id.clone()).unwrap(),
            client_id: ClientId::new(tm_client.clone()).unwrap(),
            tracked: ChainId::new("ibc-0".to_owned()).unwrap(),
        },
    ];
    let (ask, mut asked) = mpsc::unbounded_channel::<oneshot::Sender<Vec<ClientReport>>>();
    let keys_dir = data.join("keys");
    let actors = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let handle = relayd_actors::system::start(&config, store, keys_dir)
                .await
                .unwrap();
            let policy = ClientPolicy {
                refresh_fraction: 0.3,
                alarm_below: Duration::from_secs(1),
            };
            let keeper = ClientKeeper::new(
                tracked,
                handle.links.clone(),
                policy,
                Duration::from_secs(1),
                MeteredRecipient::new(handle.coordinator.clone().recipient(), Meter::new()),
                None,
            )
            .start();
            while let Some(reply) = asked.recv().await {
                let _ = reply.send(keeper.send(QueryClientHealth).await.unwrap_or_default());
            }
            handle.shutdown().await;
        })
    });
    let reports = || {
        let ask = ask.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            ask.send(tx).unwrap();
            rx.await.unwrap()
        }
    };

    // Both clients refreshed by the keeper (the NEAR one twice); a hang guard, not a timing assertion.
    let mut last = Vec::new();
    for _ in 0..240 {
        last = reports().await;
        let refreshes = |id: &str| {
            last.iter()
                .find(|r| r.client_id == id)
                .map_or(0, |r| r.refreshes)
        };
        if refreshes(&near_client) >= 2 && refreshes(&tm_client) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for report in &last {
        assert!(report.refreshes >= 1, "{report:?}");
        assert!(report.last_refresh_tx.is_some(), "{report:?}");
        assert_ne!(report.health, "expired", "{report:?}");
    }
    let near_report = last
        .iter()
        .find(|r| r.client_id == near_client)
        .expect("report");
    assert!(near_report.refreshes >= 2, "{near_report:?}");

    // ibc-0's 12-near client moved on across NEAR epochs, each update before the last consensus state expired.
    let state = NearClientState::try_from(
        stored(&cosmos, format!("clients/{near_client}/clientState")).await,
    )
    .unwrap();
    assert!(state.latest_height > near_start);
    let latest = NearConsensusState::try_from(
        stored(
            &cosmos,
            format!(
                "clients/{near_client}/consensusStates/0-{}",
                state.latest_height
            ),
        )
        .await,
    )
    .unwrap();
    assert_ne!(
        latest.header().block.inner_lite.epoch_id,
        start_cs.header().block.inner_lite.epoch_id
    );
    assert!(latest.timestamp_ns() > start_cs.timestamp_ns());
    // ibc-rs refuses to update an expired client: the accepted updates came before expiry, and the client is
    // alive now.
    assert!(state.frozen_height.is_none());

    // NEAR's Tendermint client of ibc-0 moved on too.
    let (tm_latest, tm_time) = tm_on_near(&endpoint, &tm_client).await;
    assert!(tm_latest > tm_start);
    assert!(tm_time > tm_start_time);

    drop(ask);
    tokio::task::spawn_blocking(move || actors.join())
        .await
        .unwrap()
        .unwrap();
    near.shutdown().await;
}
