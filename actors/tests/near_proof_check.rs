//! Proofs from NEAR go through the builders' path before they are forwarded, against the NEAR devnet: the NEAR
//! light client lists the heads it verified, the proof-height rule picks the newest one and reads at its parent,
//! the light client prepares the update to that head, and the builders' check takes the proof as a NEAR state
//! proof under the head's `prev_state_root`. An honest proof passes; a proof for another value, a proof under a
//! root no verified head carries, and a head whose block was altered (refused by the light client, so its root
//! is never one relayd checks against) do not.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use actix::{Actor, Context, Handler};
use relayd_actors::chain::cosmos::client::{create_client_msg, ClientParams};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::endpoint::path;
use relayd_actors::chain::near::factory::{commitment_prefix, NearFactory};
use relayd_actors::chain::near::light_client::lite_block_hash;
use relayd_actors::chain::near::monitor::NearMonitorConfig;
use relayd_actors::chain::near::rpc::NearRpc;
use relayd_actors::chain::near::state_proof::StateProofError;
use relayd_actors::chain::near::trie::TrieProofError;
use relayd_actors::chain::near::tx::NearTxConfig;
use relayd_actors::chain::proof::{check_forwarded, Forwarded, ProofFault, ProofFormat};
use relayd_actors::chain_link::ChainLink;
use relayd_actors::packet_builder::datagrams;
use relayd_actors::packet_builder::proving::{Expect, Prover};
use relayd_actors::proof_height::{self, NoPlan, Source};
use relayd_actors::store::StateStore;
use relayd_actors::supervisor::chain::ChainSupervisor;
use relayd_config::SupervisionConfig;
use relayd_messages::{
    BlockObserved, ChainId, ClientId, ClientSummary, CorrelationId, Datagram, ErrorKind, IbcEvent,
    PrepareClientUpdate, Proven, QueryClient, QueryProof, QueryVerifiedHeads, RelayError, SubmitTx,
};
use support::chain::Chain;
use support::light::unbonding_period;
use tokio::sync::mpsc;

const BLOCK_TIME: Duration = Duration::from_millis(200);
/// The NEAR client on the counterparty that the update is prepared for.
const NEAR_CLIENT: &str = "12-near-0";

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

/// Stands in for the destination's Querier: the NEAR client it hosts, as builders read it before proving.
struct HostedNearClient(ClientSummary);

impl Actor for HostedNearClient {
    type Context = Context<Self>;
}

impl Handler<QueryClient> for HostedNearClient {
    type Result = Result<ClientSummary, RelayError>;

    fn handle(&mut self, msg: QueryClient, _: &mut Self::Context) -> Self::Result {
        assert_eq!(msg.client_id.as_str(), NEAR_CLIENT);
        Ok(self.0.clone())
    }
}

fn forwarded<'a>(
    link: &'a ChainLink,
    p: &'a str,
    proven: &'a Proven,
    root: &'a [u8],
    expect: Option<&'a [u8]>,
) -> Forwarded<'a> {
    Forwarded {
        chain: link.chain.as_str(),
        format: &link.proofs,
        prefix: &link.prefix,
        path: p,
        proven,
        root,
        specs: &[],
        expect,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_proofs_are_checked_on_the_builders_path_before_forwarding() {
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

    // IBC state to prove on NEAR: a Tendermint client of ibc-0, created through the contract.
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

    let actors = std::thread::spawn(move || {
        let system = actix_rt::System::new();
        system.block_on(async move {
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
                // The test starts from the node's head; a service would need `relayd light init`.
                trust_on_first_use: true,
                light_poll: BLOCK_TIME,
            };
            // As `NearFactory::from_config` links a NEAR chain: its proofs are NEAR state proofs.
            let link = ChainLink::new(
                chain.clone(),
                relayer.to_string(),
                commitment_prefix(&contract),
            )
            .with_proofs(ProofFormat::NearState {
                contract: contract.to_string(),
            });
            let (observed, mut blocks) = mpsc::unbounded_channel();
            let sink = Collector(observed).start().recipient();
            let _sup = ChainSupervisor::new(
                factory,
                link.clone(),
                store.clone(),
                sink.into(),
                SupervisionConfig::default(),
                Duration::from_secs(3600),
            )
            .start();
            tokio::time::timeout(Duration::from_secs(60), async {
                while !link.is_complete() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await
            .expect("the four actors");

            link.submit(SubmitTx {
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
            let (created_at, client_id) = loop {
                let block = tokio::time::timeout(Duration::from_secs(60), blocks.recv())
                    .await
                    .expect("a block in time")
                    .expect("monitor running");
                let created = block.events.iter().find_map(|e| match &e.event {
                    IbcEvent::CreateClient { client_id, .. } => Some(client_id.to_string()),
                    _ => None,
                });
                if let Some(id) = created {
                    break (block.height, id);
                }
            };

            // The rule over the heads relayd's light client verified, for a counterparty client at height 0 and
            // state that must include the client's creation.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            let (plan, heads) = loop {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no usable verified head in time"
                );
                // A NEAR chain that has just started may have nothing to bootstrap the light client from yet.
                let heads = match link
                    .verified_heads(QueryVerifiedHeads {
                        correlation: CorrelationId::fresh(),
                        from: 0,
                    })
                    .await
                {
                    Ok(heads) => heads,
                    Err(e) if e.kind == ErrorKind::Unavailable => {
                        tokio::time::sleep(BLOCK_TIME).await;
                        continue;
                    }
                    Err(e) => panic!("{e:?}"),
                };
                match proof_height::plan(Source::Near { heads: &heads }, 0, created_at) {
                    Ok(plan) => break (plan, heads),
                    Err(NoPlan::NoVerifiedHead { .. } | NoPlan::SourceBehind { .. }) => {
                        tokio::time::sleep(BLOCK_TIME).await
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            let newest = heads.iter().map(|h| h.height).max().unwrap();
            assert_eq!(plan.proof_height, newest, "the newest verified head");
            assert!(plan.query_height < plan.proof_height && plan.update_client);
            // The parent is the node's: the head's block names it.
            let head_block = rpc.block(Some(plan.proof_height)).await.unwrap();
            assert_eq!(head_block.header.prev_height, Some(plan.query_height));

            // Read at the parent, update prepared for the head: the proof checks against the verified root.
            let client_path = path::client_state(&client_id);
            let proven = link
                .query_proof(QueryProof {
                    correlation: CorrelationId::fresh(),
                    path: client_path.clone(),
                    height: Some(plan.query_height),
                })
                .await
                .unwrap();
            assert!(!proven.value.is_empty(), "the client is in the state read");
            let update = link
                .prepare_update(PrepareClientUpdate {
                    correlation: CorrelationId::fresh(),
                    client_id: ClientId::new(NEAR_CLIENT).unwrap(),
                    trusted_height: 0,
                    anchor: None,
                    target: plan.proof_height,
                    signer: "cosmos1relayer".to_owned(),
                })
                .await
                .unwrap();
            assert_eq!(update.target, plan.proof_height);
            assert!(!update.msgs.is_empty(), "the client is brought to the head");
            assert_eq!(
                update.app_hash,
                head_block.header.prev_state_root.0.to_vec()
            );
            let value = proven.value.clone();
            datagrams::check(forwarded(
                &link,
                &client_path,
                &proven,
                &update.app_hash,
                Some(&value),
            ))
            .expect("an honest NEAR proof passes");
            // Checked as ICS-23 (what the builders did before), the same honest proof does not even decode.
            let as_ics23 = Forwarded {
                format: &ProofFormat::Ics23,
                ..forwarded(&link, &client_path, &proven, &update.app_hash, Some(&value))
            };
            assert!(matches!(
                *check_forwarded(&as_ics23).unwrap_err().fault,
                ProofFault::Undecodable(_)
            ));

            // A proof for another value: refused, whether the node's value differs from the one relayd holds or
            // the node changed the value it serves with the proof.
            let mut other = value.clone();
            other[3] ^= 1;
            let refused = datagrams::check(forwarded(
                &link,
                &client_path,
                &proven,
                &update.app_hash,
                Some(&other),
            ))
            .unwrap_err();
            assert_eq!(refused.kind, ErrorKind::Unverified);
            let lying = Proven {
                value: other.clone(),
                ..proven.clone()
            };
            let rejected = check_forwarded(&forwarded(
                &link,
                &client_path,
                &lying,
                &update.app_hash,
                Some(&other),
            ))
            .unwrap_err();
            assert!(
                matches!(
                    *rejected.fault,
                    ProofFault::NearState(StateProofError::Trie(
                        TrieProofError::ValueMismatch { .. }
                    ))
                ),
                "{rejected}"
            );
            assert_eq!(
                (rejected.path.as_str(), rejected.height),
                (client_path.as_str(), plan.query_height)
            );
            // Absence of a present value is refused too.
            assert!(check_forwarded(&forwarded(
                &link,
                &client_path,
                &proven,
                &update.app_hash,
                None
            ))
            .is_err());

            // A root no verified head carries: refused.
            let mut forged_root = update.app_hash.clone();
            forged_root[0] ^= 1;
            let rejected = check_forwarded(&forwarded(
                &link,
                &client_path,
                &proven,
                &forged_root,
                Some(&value),
            ))
            .unwrap_err();
            assert!(
                matches!(
                    *rejected.fault,
                    ProofFault::NearState(StateProofError::ShardRoot { .. })
                ),
                "{rejected}"
            );

            // The builders' own path: `Prover` reads the destination's client, applies the rule, reads at the
            // chosen height and checks the proof against the update it prepares; a wrong value is refused.
            let dst = ChainLink::new(
                ChainId::new("ibc-0").unwrap(),
                "cosmos1relayer".into(),
                b"ibc".to_vec(),
            );
            let now_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            let hosted = HostedNearClient(ClientSummary {
                client_id: ClientId::new(NEAR_CLIENT).unwrap(),
                tracked_chain: chain.to_string(),
                latest_height: plan.query_height,
                frozen: false,
                trusting_period_secs: 3600,
                proof_specs: Vec::new(),
                anchor: None,
                consensus_time_ns: Some(now_ns),
            })
            .start();
            dst.update(|r| r.client = Some(hosted.recipient()));
            let near_client = ClientId::new(NEAR_CLIENT).unwrap();
            let (prover, read) = Prover::start(
                CorrelationId::fresh(),
                (&link, &dst, &near_client),
                &client_path,
                created_at,
            )
            .await
            .unwrap();
            assert!(prover.plan.proof_height >= plan.proof_height);
            assert_eq!(read.height, prover.plan.query_height);
            assert_eq!(read.value, value, "the client state has not changed");
            let update = prover
                .verify(&[Expect {
                    path: &client_path,
                    proven: &read,
                    value: Some(&value),
                }])
                .await
                .expect("an honest proof passes the builders' path");
            assert_eq!(update.target, prover.plan.proof_height);
            assert!(!update.msgs.is_empty());
            let refused = prover
                .verify(&[Expect {
                    path: &client_path,
                    proven: &read,
                    value: Some(&other),
                }])
                .await
                .unwrap_err();
            assert_eq!(refused.kind, ErrorKind::Unverified);

            // A head that fails verification: the next light-client block with another prev_state_root is refused
            // by relayd's light client, so its root never becomes one relayd checks against; the untouched block
            // verifies.
            let stored = store
                .trusted_near(chain.as_str())
                .unwrap()
                .expect("stored head");
            let next = loop {
                if let Some(b) = rpc
                    .next_light_client_block(stored.trusted.head_hash())
                    .await
                    .unwrap()
                {
                    if b.inner_lite.height > stored.trusted.head.inner_lite.height {
                        break b;
                    }
                }
                tokio::time::sleep(BLOCK_TIME).await;
            };
            let mut tampered = next.clone();
            tampered.inner_lite.prev_state_root.0[0] ^= 1;
            assert_ne!(
                lite_block_hash(&near_primitives::views::LightClientBlockLiteView {
                    prev_block_hash: tampered.prev_block_hash,
                    inner_rest_hash: tampered.inner_rest_hash,
                    inner_lite: tampered.inner_lite.clone(),
                }),
                lite_block_hash(&near_primitives::views::LightClientBlockLiteView {
                    prev_block_hash: next.prev_block_hash,
                    inner_rest_hash: next.inner_rest_hash,
                    inner_lite: next.inner_lite.clone(),
                })
            );
            assert!(
                stored.trusted.advance(&tampered).is_err(),
                "a tampered head verified"
            );
            stored
                .trusted
                .advance(&next)
                .expect("the untouched head verifies");
        });
    });
    tokio::task::spawn_blocking(move || actors.join())
        .await
        .unwrap()
        .unwrap();

    near.shutdown().await;
    cosmos.shutdown().await;
}
