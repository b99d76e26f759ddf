//! The per-chain actors over the NEAR backend, against the NEAR devnet: a ChainSupervisor built by `NearFactory`
//! starts the same ChainMonitor, Querier, LightClient and TxSubmitter the Cosmos chains run. The submitter delivers
//! a `MsgCreateClient` for a Cosmos devnet chain, the monitor reports the block with its `create_client` event, the
//! light client moves its verified NEAR head and prepares a NEAR-client update for a head, the querier reads the
//! new client with a proof that checks against that head, and a restarted light client resumes from sled.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use actix::{Actor, Context, Handler};
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::client::v1::MsgUpdateClient;
use ibc_proto::ibc::lightclients::tendermint::v1::ClientState;
use prost::Message;
use relayd_actors::chain::cosmos::client::{create_client_msg, ClientParams};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::path;
use relayd_actors::chain::near::factory::{commitment_prefix, NearFactory};
use relayd_actors::chain::near::header::{chunks_root, RawNearHeader, NEAR_HEADER_TYPE_URL};
use relayd_actors::chain::near::light_client::{combine_hash, sha256};
use relayd_actors::chain::near::monitor::NearMonitorConfig;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::state_proof::{verify_state_proof, NearStateProof};
use relayd_actors::chain::near::tx::NearTxConfig;
use relayd_actors::chain_link::ChainLink;
use relayd_actors::store::StateStore;
use relayd_actors::supervisor::any::AnyChainSupervisor;
use relayd_actors::supervisor::chain::ChainSupervisor;
use relayd_config::SupervisionConfig;
use relayd_messages::{
    ActorKind, BlockObserved, ChainId, ClientId, ClientUpdate, CorrelationId, Datagram, ErrorKind,
    IbcEvent, PanicChild, PrepareClientUpdate, QueryChainStatus, QueryClient, QueryProof,
    RelayError, SubmitTx,
};
use support::chain::Chain;
use support::light::unbonding_period;
use tokio::sync::mpsc;

const BLOCK_TIME: Duration = Duration::from_millis(200);
/// A NEAR client on the Cosmos side (relayd only prepares its update here; no chain hosts one yet).
const NEAR_CLIENT: &str = "12-near-0";

/// Stands in for the RelayCoordinator: hands every observed block to the test.
struct Collector(mpsc::UnboundedSender<BlockObserved>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<BlockObserved> for Collector {
    type Result = ();

    fn handle(&mut self, msg: BlockObserved, _: &mut Self::Context) {
        let _ = self.0.send(msg);
    }
}

async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let found = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn prepare(target: u64, trusted_height: u64) -> PrepareClientUpdate {
    PrepareClientUpdate {
        correlation: CorrelationId::fresh(),
        client_id: ClientId::new(NEAR_CLIENT).unwrap(),
        trusted_height,
        anchor: None,
        target,
        signer: "cosmos1relayer".to_owned(),
    }
}

/// The height of the light-client block carried by a NEAR header, with the block hash recomputed from its bytes,
/// and the chunk roots it carries.
fn header_parts(update: &Datagram) -> (u64, [u8; 32], Vec<[u8; 32]>) {
    assert_eq!(update.type_url, "/ibc.core.client.v1.MsgUpdateClient");
    let msg = MsgUpdateClient::decode(update.value.as_slice()).unwrap();
    assert_eq!(msg.client_id, NEAR_CLIENT);
    let header = msg.client_message.unwrap();
    assert_eq!(header.type_url, NEAR_HEADER_TYPE_URL);
    let raw = RawNearHeader::decode(header.value.as_slice()).unwrap();
    let bytes = raw.light_client_block;
    let height = u64::from_le_bytes(bytes[64..72].try_into().unwrap());
    let hash = combine_hash(
        &combine_hash(
            &sha256(&bytes[64..272]),
            &near_primitives::hash::CryptoHash(bytes[272..304].try_into().unwrap()),
        ),
        &near_primitives::hash::CryptoHash(bytes[0..32].try_into().unwrap()),
    );
    let roots = raw
        .prev_state_root_of_chunks
        .iter()
        .map(|h| h.raw_data.as_slice().try_into().unwrap())
        .collect();
    (height, hash.0, roots)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_chain_actors_run_over_the_near_backend() {
    let cosmos = devnet::start_chain(devnet::ChainOptions::local("ibc-0", BLOCK_TIME))
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut options = devnet::near::NearOptions::local(BLOCK_TIME);
    options.home = Some(home.path().to_path_buf());
    let near = devnet::near::start(options).await.unwrap();
    near.wait_for_height(3).await;
    cosmos.wait_for_height(3).await;

    let relayer = near.genesis.relayer.account_id.clone();
    let contract = near.genesis.ibc.account_id.clone();
    let key_file = home.path().join("keys").join(format!("{relayer}.json"));
    let near_url = near.rpc_url();
    let near_chain = near.chain_id().to_owned();

    // What the submitter will deliver: a Tendermint client of ibc-0, as relayd builds it.
    let src = CosmosRpc::connect("ibc-0", &cosmos.rpc_url())
        .await
        .unwrap();
    let root = src.fetch_light_block(2).await.unwrap();
    let unbonding = unbonding_period(&Chain::connect(&cosmos)).await;
    let params = ClientParams {
        trust_level: (1, 3),
        trusting_period: unbonding * 2 / 3,
        unbonding_period: unbonding,
        max_clock_drift: Duration::from_secs(20),
        proof_specs: vec![support::proof::spec(), support::proof::spec()],
    };
    let create = create_client_msg(&root, &params, relayer.as_str());

    let data = tempfile::tempdir().unwrap();
    let state_dir = data.path().join("state");
    let chain = ChainId::new(near_chain.clone()).unwrap();

    // The actors live in an actix System of their own, as under `relayd start`.
    let actors = std::thread::spawn(move || {
        let system = actix_rt::System::new();
        system.block_on(async move {
            relayd_actors::supervisor::guard::enable_fault_injection(true);
            let store = StateStore::open(&state_dir).unwrap();
            let rpc = NearRpc::new(&near_chain, &near_url);
            let factory = NearFactory {
                chain: chain.clone(),
                rpc: rpc.clone(),
                contract: contract.clone(),
                store: store.clone(),
                key_files: vec![key_file],
                signer_account: relayer.clone(),
                tx: NearTxConfig::default(),
                max_msgs: 10,
                max_tx_size: 1 << 20,
                monitor: NearMonitorConfig {
                    poll_interval: BLOCK_TIME,
                    ..NearMonitorConfig::default()
                },
                light_wait: Duration::from_secs(30),
                light_poll: BLOCK_TIME,
                // A devnet: the head is the node's latest light-client block (no `light init`).
                trust_on_first_use: true,
            };
            let link = ChainLink::new(
                chain.clone(),
                relayer.to_string(),
                commitment_prefix(&contract),
            );
            let (observed, mut blocks) = mpsc::unbounded_channel();
            let sink = Collector(observed).start().recipient();
            // The light client moves only when asked (no periodic refresh), so the test knows its head.
            let refresh = Duration::from_secs(3600);
            let sup = ChainSupervisor::new(
                factory,
                link.clone(),
                store.clone(),
                sink.into(),
                SupervisionConfig::default(),
                refresh,
            )
            .start();
            until("the four actors", || {
                let ready = link.is_complete();
                async move { ready.then_some(()) }
            })
            .await;
            assert_eq!(link.signer, relayer.as_str());

            // TxSubmitter: a real `deliver` of MsgCreateClient.
            let report = link
                .submit(SubmitTx {
                    correlation: CorrelationId::fresh(),
                    update: None,
                    datagrams: vec![Datagram {
                        type_url: create.type_url.clone(),
                        value: create.value.clone(),
                    }],
                    priority: 0,
                    ordered_channel: None,
                })
                .await
                .unwrap();
            assert_eq!(report.messages, 1);
            assert!(report.gas_used > 0);

            // ChainMonitor: the block the contract recorded the event at, in order with the others.
            let mut last = 0;
            let (created_at, client_id) = loop {
                let block = tokio::time::timeout(Duration::from_secs(60), blocks.recv())
                    .await
                    .expect("a block in time")
                    .expect("monitor running");
                assert_eq!(block.chain, chain);
                assert!(block.height > last, "heights in order");
                last = block.height;
                let created = block.events.iter().find_map(|e| match &e.event {
                    IbcEvent::CreateClient { client_id, .. } => Some(client_id.to_string()),
                    _ => None,
                });
                if let Some(id) = created {
                    break (block.height, id);
                }
            };
            assert_eq!(
                created_at, report.height,
                "the report names the event's block"
            );

            // LightClient: asked for heights past the event until it answers for one of its verified heads.
            // Heights the node serves no light-client block at are refused, not guessed.
            let mut target = created_at + 1;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            let update: ClientUpdate = loop {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no update for a verified head in time"
                );
                match link.prepare_update(prepare(target, 0)).await {
                    Ok(update) => break update,
                    Err(RelayError { kind, message, .. }) => {
                        assert!(
                            kind == ErrorKind::Unavailable
                                && (message.contains("not a verified NEAR light-client head")
                                    || message.contains("no verified NEAR head")),
                            "{kind:?}: {message}"
                        );
                        let head = store.trusted_near(chain.as_str()).unwrap().expect("stored");
                        let height = head.trusted.head.inner_lite.height;
                        // A bootstrapped head has no verified block of its own: ask past it.
                        target = if head.block.is_some() && height > created_at {
                            height
                        } else {
                            height.max(target) + 1
                        };
                    }
                }
            };
            let stored = store.trusted_near(chain.as_str()).unwrap().expect("stored");
            let head = stored.trusted.head.clone();
            assert_eq!(
                update.target, head.inner_lite.height,
                "the stored head is the head answered for"
            );
            // The head was trusted on first use with its next epoch's producers only; it now has a verified block
            // of its own and knows its epoch's producers: it moved by verification.
            assert!(
                stored.block.is_some(),
                "the head was reached by a verified block"
            );
            assert!(!stored.trusted.epoch_bps.is_empty());
            assert_eq!(update.app_hash, head.inner_lite.prev_state_root.0.to_vec());
            // The headers end at the head, whose bytes hash to the head relayd verified and whose chunk roots
            // merklize to its state root.
            let (height, hash, roots) = header_parts(update.msgs.last().expect("a header"));
            assert_eq!(height, head.inner_lite.height);
            assert_eq!(hash, stored.trusted.head_hash().0);
            let roots: Vec<_> = roots
                .into_iter()
                .map(near_primitives::hash::CryptoHash)
                .collect();
            assert_eq!(chunks_root(&roots), head.inner_lite.prev_state_root);

            // Querier: the new client's state at the head's parent, with a proof that checks against the head.
            let parent = rpc
                .block_by_hash(stored.trusted.head_hash())
                .await
                .unwrap()
                .header
                .prev_height
                .unwrap();
            assert!(parent >= created_at);
            let client_path = path::client_state(&client_id);
            let proven = link
                .query_proof(QueryProof {
                    correlation: CorrelationId::fresh(),
                    path: client_path.clone(),
                    height: Some(parent),
                })
                .await
                .unwrap();
            let state = ClientState::decode(
                Any::decode(proven.value.as_slice())
                    .unwrap()
                    .value
                    .as_slice(),
            )
            .unwrap();
            assert_eq!(state.chain_id, "ibc-0");
            let proof = NearStateProof::from_bytes(proven.proof.as_deref().unwrap()).unwrap();
            verify_state_proof(
                &head.inner_lite.prev_state_root,
                contract.as_str(),
                client_path.as_bytes(),
                Some(&proven.value),
                &proof,
            )
            .unwrap();
            let mut forged = proven.value.clone();
            forged[3] ^= 1;
            assert!(verify_state_proof(
                &head.inner_lite.prev_state_root,
                contract.as_str(),
                client_path.as_bytes(),
                Some(&forged),
                &proof,
            )
            .is_err());

            // Querier: the NEAR-hosted client as builders see it, anchored on the consensus state NEAR stored.
            let summary = link
                .query_client(QueryClient {
                    correlation: CorrelationId::fresh(),
                    client_id: ClientId::new(client_id.clone()).unwrap(),
                })
                .await
                .unwrap();
            assert_eq!(summary.tracked_chain, "ibc-0");
            assert_eq!(
                summary.latest_height,
                root.signed_header.header.height.value()
            );
            assert!(!summary.frozen);
            assert_eq!(
                summary.anchor,
                Some((
                    root.signed_header.header.app_hash.as_bytes().to_vec(),
                    root.signed_header
                        .header
                        .next_validators_hash
                        .as_bytes()
                        .to_vec()
                ))
            );

            // A light client that dies resumes from sled: the restarted one has never seen this head from the
            // node (it is not served again), yet answers for it from the stored block.
            assert!(sup.send(PanicChild(ActorKind::LightClient)).await.unwrap());
            until("the light client restarted", || {
                let sup = sup.clone();
                let link = link.clone();
                async move {
                    let status = sup.send(QueryChainStatus).await.ok()?;
                    let light = status
                        .children
                        .iter()
                        .find(|c| c.kind == ActorKind::LightClient)?;
                    (light.restarts >= 1 && light.running && link.is_complete()).then_some(())
                }
            })
            .await;
            let again = link
                .prepare_update(prepare(update.target, update.target - 1))
                .await
                .unwrap();
            assert_eq!(again.app_hash, update.app_hash);
            assert_eq!(again.msgs.last(), update.msgs.last());
            let after = store.trusted_near(chain.as_str()).unwrap().expect("stored");
            assert_eq!(
                after.trusted.head_hash(),
                stored.trusted.head_hash(),
                "resumed, not re-bootstrapped"
            );
            // And it keeps verifying from there.
            let next = until("the resumed head to move", || {
                let link = link.clone();
                let store = store.clone();
                let chain = chain.clone();
                let target = update.target + 1;
                async move {
                    let _ = link.prepare_update(prepare(target, 0)).await;
                    let h = store
                        .trusted_near(chain.as_str())
                        .ok()??
                        .trusted
                        .head
                        .inner_lite
                        .height;
                    (h > target - 1).then_some(h)
                }
            })
            .await;
            assert!(next > update.target);
        });
    });
    tokio::task::spawn_blocking(move || actors.join())
        .await
        .unwrap()
        .unwrap();

    near.shutdown().await;
    cosmos.shutdown().await;
}

/// `relayd start`'s entry point with a Cosmos chain and a NEAR chain: each gets a supervisor of its own kind,
/// and a NEAR key file that is not there stops the start with an error naming the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_start_runs_cosmos_and_near_chains_side_by_side() {
    let cosmos = devnet::start_chain(devnet::ChainOptions::local("ibc-0", BLOCK_TIME))
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut options = devnet::near::NearOptions::local(BLOCK_TIME);
    options.home = Some(home.path().to_path_buf());
    let near = devnet::near::start(options).await.unwrap();
    near.wait_for_height(3).await;
    cosmos.wait_for_height(3).await;

    let dir = tempfile::tempdir().unwrap();
    let relayer = cosmos.genesis.account("relayer").unwrap();
    let cosmos_key = dir.path().join("ibc-0-relayer.json");
    std::fs::write(
        &cosmos_key,
        format!(
            "{{\"private_key\": \"{}\"}}",
            hex::encode(relayer.private_key)
        ),
    )
    .unwrap();
    let keys_dir = dir.path().join("keys");
    relayd_actors::keys::KeyStore::open(&keys_dir)
        .unwrap()
        .add(
            "ibc-0",
            "relayer",
            "cosmos",
            relayd_actors::keys::KeySource::KeyFile(&cosmos_key),
        )
        .unwrap();
    let signer = near.genesis.relayer.account_id.to_string();
    let contract = near.genesis.ibc.account_id.to_string();
    let config_text = |key_file: &std::path::Path| {
        format!(
            "[supervision]\nbackoff_base = \"50ms\"\nbackoff_cap = \"1s\"\n\n\
             [[chains]]\nid = \"ibc-0\"\nrpc_addr = \"{}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\n\
             gas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_block_time = \"2s\"\n\n\
             [[chains]]\nid = \"{}\"\ntype = \"near\"\nrpc_addr = \"{}\"\ncontract_account = \"{contract}\"\n\
             signer_account = \"{signer}\"\nkey_file = \"{}\"\nmax_block_time = \"2s\"\n\
             trust_on_first_use = true\n",
            cosmos.rpc_url(),
            near.chain_id(),
            near.rpc_url(),
            key_file.display()
        )
    };
    let path = dir.path().join("relayd.toml");
    let good = relayd_config::Config::parse(
        &config_text(&home.path().join("keys").join(format!("{signer}.json"))),
        &path,
    )
    .unwrap();
    let missing =
        relayd_config::Config::parse(&config_text(&dir.path().join("absent.json")), &path).unwrap();
    let state_dir = dir.path().join("state");
    let near_chain = near.chain_id().to_owned();

    let actors = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let store = StateStore::open(&state_dir).unwrap();
            let refused = relayd_actors::system::start(&missing, store.clone(), keys_dir.clone())
                .await
                .err()
                .expect("a missing key file is refused");
            assert!(refused.to_string().contains(&near_chain), "{refused}");

            let handle = relayd_actors::system::start(&good, store, keys_dir)
                .await
                .unwrap();
            assert_eq!(handle.supervisors.len(), 2);
            // The links fill as children start; the monitors, which have no recipient there, may start last.
            until("every chain's actors", || {
                let ready = handle.links.values().all(ChainLink::is_complete);
                let sups: Vec<_> = handle.supervisors.iter().map(|(_, s)| s.clone()).collect();
                async move {
                    if !ready {
                        return None;
                    }
                    for sup in sups {
                        let status = sup.send(QueryChainStatus).await.ok()?;
                        if !status.children.iter().all(|c| c.running) {
                            return None;
                        }
                    }
                    Some(())
                }
            })
            .await;
            for (chain, sup) in &handle.supervisors {
                let status = sup.send(QueryChainStatus).await.unwrap();
                assert_eq!(status.chain, chain.to_string());
                assert!(status.children.iter().all(|c| c.running), "{status:?}");
                assert!(matches!(
                    (chain.as_str(), sup),
                    ("ibc-0", AnyChainSupervisor::Cosmos(_)) | (_, AnyChainSupervisor::Near(_))
                ));
            }
            let near_link = &handle.links[&ChainId::new(near_chain.clone()).unwrap()];
            assert_eq!(near_link.signer, signer);
            assert_eq!(
                near_link.prefix,
                commitment_prefix(&contract.parse().unwrap())
            );
            handle.shutdown().await;
        });
    });
    tokio::task::spawn_blocking(move || actors.join())
        .await
        .unwrap()
        .unwrap();
    near.shutdown().await;
    cosmos.shutdown().await;
}
