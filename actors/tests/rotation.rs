//! Validator-set changes end to end: a devnet chain whose validators join, leave, change power and are replaced
//! wholesale. `light init` trusts the header right before a change (its next validators differ from its own),
//! a client created from it on the counterparty is carried across the changes by bisected `MsgUpdateClient`s
//! that ibc-rs accepts, and the trusted state refreshes across them.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use relayd_actors::chain::cosmos::client::{create_client_msg, update_client_msgs, ClientParams};
use relayd_actors::chain::cosmos::light_client::{headers_to, light_init, refresh, TrustOptions};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::store::StateStore;
use support::chain::{Chain, Wallet};
use tendermint_light_client_verifier::types::TrustThreshold;
use tendermint_rpc::client::CompatMode;

/// Changes decided every 3 blocks take effect at 5 (a power change), 8 (a join), 11 (a leave) and 14 (the whole
/// set replaced).
const EVERY: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_init_create_client_and_updates_cross_validator_changes() {
    let mut rotating = devnet::ChainOptions::local("ibc-0", Duration::from_millis(100));
    rotating.rotate_validators_every = Some(EVERY);
    let tracked = devnet::start_chain(rotating).await.unwrap();
    let host = devnet::start_chain(devnet::ChainOptions::local(
        "ibc-1",
        Duration::from_millis(100),
    ))
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(30), tracked.wait_for_height(6))
        .await
        .unwrap();

    let rpc = CosmosRpc::new("ibc-0", &tracked.rpc_url(), CompatMode::V0_38).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state")).unwrap();

    // The first header whose next validators differ from its own: the one right before a change.
    let mut before_change = None;
    for h in 1..=6 {
        let b = rpc.fetch_light_block(h).await.unwrap();
        let header = &b.signed_header.header;
        if header.validators_hash != header.next_validators_hash {
            before_change = Some(b);
            break;
        }
    }
    let before_change = before_change.expect("a validator change within 6 blocks");
    let height = before_change.height().value();
    assert_eq!(
        height,
        EVERY + 1,
        "decided at {EVERY}, in effect at {}",
        EVERY + 2
    );
    assert_ne!(
        before_change.validators.hash(),
        before_change.next_validators.hash()
    );

    let hash = before_change.signed_header.header.hash();
    let trusted = light_init(&rpc, &store, "ibc-0", height, &hash)
        .await
        .unwrap();
    assert_eq!(trusted.next_validators, before_change.next_validators);

    // The counterparty's ibc-rs accepts a client rooted at that header.
    let host_chain = Chain::connect(&host);
    let relayer = Wallet::genesis(&host, "relayer");
    let unbonding = tracked.genesis.unbonding_period;
    let params = ClientParams {
        trust_level: (1, 3),
        trusting_period: unbonding * 2 / 3,
        unbonding_period: unbonding,
        max_clock_drift: Duration::from_secs(20),
        proof_specs: vec![support::proof::spec(), support::proof::spec()],
    };
    let created = host_chain
        .submit(
            &relayer,
            &[create_client_msg(&trusted, &params, &relayer.address)],
        )
        .await;
    let client_id = created
        .attr("create_client", "client_id")
        .expect("client id");

    // Past the whole-set swap (in effect at 14): skipping from the root cannot reach it in one step.
    let target = 4 * EVERY + 6;
    tokio::time::timeout(Duration::from_secs(30), tracked.wait_for_height(target + 1))
        .await
        .unwrap();
    let trust = TrustOptions {
        trust_threshold: TrustThreshold::ONE_THIRD,
        trusting_period: params.trusting_period,
        clock_drift: Duration::from_secs(5),
    };
    let headers = headers_to(
        "ibc-0",
        &rpc,
        &trusted,
        target,
        &trust,
        tendermint::Time::now(),
    )
    .await
    .unwrap();
    let heights: Vec<u64> = headers.iter().map(|b| b.height().value()).collect();
    assert_eq!(heights.last(), Some(&target));
    assert!(
        heights.len() >= 2 && heights.iter().any(|&h| h < 4 * EVERY + 2),
        "the swap needs an intermediate header before it: {heights:?}"
    );
    for pair in headers.windows(2) {
        assert_eq!(
            pair[0].next_validators.hash(),
            pair[0].signed_header.header.next_validators_hash
        );
    }

    // Each update carries the trusted height's next validators (ibc-go's trusted_validators rule); ibc-rs
    // verifies every one of them.
    let updates = update_client_msgs(&client_id, &trusted, &headers, &relayer.address);
    let updated = host_chain.submit(&relayer, &updates).await;
    let installed = updated
        .events
        .iter()
        .filter(|e| e.kind == "update_client")
        .count();
    assert_eq!(installed, headers.len());

    // The trusted state moves across every change as well.
    let refreshed = refresh(&rpc, &store, &trust).await.unwrap();
    assert!(refreshed.height().value() > target);

    tracked.shutdown().await;
    host.shutdown().await;
}
