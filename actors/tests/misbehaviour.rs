//! Misbehaviour detection end to end: relayd relays between two devnet chains and judges every client update
//! (its own ones stay unremarked); then a rogue relayer installs headers that the chains' real validators signed
//! (the devnet genesis holds their keys) but that belong to no history relayd verified. relayd must find each
//! forgery, submit `MsgSubmitMisbehaviour` to the host, whose ibc-rs client verifies the evidence and freezes,
//! and its ClientKeeper must then report the client frozen.
//!
//! Two forgeries: a second header at a height the tracked chain has (a conflict at one height), and a header far
//! above the tracked chain's height whose time is not after the chain's latest block (a BFT time violation).
//! The evidence outlives a restart of relayd.
//!
//! The chains emit `update_client` events as ibc-go v9 and later do, without the header, so relayd reads each
//! header from the transaction that installed it; one run has them carry the header, as ibc-go up to v8 does.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod harness;

use std::time::Duration;

use devnet::consensus::BlockSigner;
use harness::{eventually, far_timeout, write_config, Cmd, Relayd};
use ibc_proto::ibc::core::client::v1::{Height, MsgUpdateClient};
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, Header};
use prost::Message;
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_messages::{ClientReport, MisbehaviourReport, MisbehaviourStatus};
use support::chain::{Chain, Wallet};
use support::handshake::{connect_transfer, End};
use support::light::{any, fetch_light_block, TM_HEADER_URL, UPDATE_CLIENT_URL};
use support::packet::{transfers, voucher_denom, TRANSFER_PORT};
use tendermint::block::signed_header::SignedHeader;
use tendermint_light_client_verifier::types::LightBlock;
use tendermint_rpc::Client;

const CLIENT: &str = "07-tendermint-0";

/// The client `CLIENT` as stored on `host`.
async fn client_state(host: &Chain) -> ClientState {
    let q = host
        .query(
            "store/ibc/key",
            format!("clients/{CLIENT}/clientState").into_bytes(),
            None,
            false,
        )
        .await
        .expect("client state query");
    let any = ibc_proto::google::protobuf::Any::decode(q.value.as_slice()).expect("any");
    ClientState::decode(any.value.as_slice()).expect("tendermint client state")
}

fn frozen(cs: &ClientState) -> bool {
    cs.frozen_height
        .as_ref()
        .is_some_and(|h| h.revision_height != 0)
}

/// `header` signed by `running`'s genesis validators: a commit that makes it valid to any light client of
/// the chain, although the chain never produced it.
fn sign(running: &devnet::RunningChain, header: tendermint::block::Header) -> SignedHeader {
    let signer = BlockSigner::new(
        running.genesis.chain_id.clone(),
        running.genesis.validators.clone(),
    );
    let (_, _, commit) = signer
        .finalize(header.clone(), Vec::new(), None)
        .expect("validators sign");
    SignedHeader::new(header, commit).expect("signed header")
}

/// A rogue relayer's `MsgUpdateClient` of `host`'s client of `tracked`, installing `forged` from the client's
/// consensus state at `trusted`; submitted by `rogue`, so relayd's own account is not involved.
async fn rogue_update(
    host: &Chain,
    rogue: &Wallet,
    tracked: &Chain,
    trusted: u64,
    forged: &SignedHeader,
    validators: &LightBlock,
) -> support::chain::Included {
    let trusted_block = fetch_light_block(tracked, trusted).await;
    let header = Header {
        signed_header: Some(forged.clone().into()),
        validator_set: Some(validators.validators.clone().into()),
        trusted_height: Some(Height {
            revision_number: tracked.revision,
            revision_height: trusted,
        }),
        trusted_validators: Some(trusted_block.next_validators.clone().into()),
    };
    let msg = MsgUpdateClient {
        client_id: CLIENT.to_owned(),
        client_message: Some(any(TM_HEADER_URL, &header)),
        signer: rogue.address.clone(),
    };
    host.submit(rogue, &[any(UPDATE_CLIENT_URL, &msg)]).await
}

async fn status(relayd: &Relayd) -> MisbehaviourStatus {
    relayd.ask(Cmd::Misbehaviour).await
}

async fn report_for(relayd: &Relayd, host: &str) -> Option<MisbehaviourReport> {
    status(relayd)
        .await
        .reports
        .into_iter()
        .find(|r| r.host == host)
}

async fn keeper_report(relayd: &Relayd, host: &str) -> Option<ClientReport> {
    relayd
        .ask(Cmd::Clients)
        .await
        .into_iter()
        .find(|c| c.host == host)
}

/// Whether relayd's transaction `hash` on `host` is the one that froze the client (ibc-rs emits
/// `client_misbehaviour` when it finds the evidence valid).
async fn froze_the_client(host: &Chain, hash: &str) -> bool {
    let hash = hash.parse().expect("tx hash");
    let tx = host.rpc.tx(hash, false).await.expect("relayd's tx");
    tx.tx_result.code.is_ok()
        && tx.tx_result.events.iter().any(|e| {
            e.kind == "client_misbehaviour"
                && e.attributes
                    .iter()
                    .any(|a| a.value_str().ok() == Some(CLIENT))
        })
}

/// Whether the update event of `inc` carries the installed header, as the chains were told to emit it.
fn check_header_attribute(inc: &support::chain::Included, legacy: bool) {
    assert_eq!(
        inc.attr("update_client", "client_id").as_deref(),
        Some(CLIENT),
        "the host accepted the forged header: {:?}",
        inc.events.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
    assert_eq!(
        inc.attr("update_client", "header").is_some(),
        legacy,
        "header attribute present only in the legacy event shape"
    );
}

/// Whether relayd names the transaction at `height` of `host` as the one that installed the forged header.
async fn names_the_update_tx(host: &Chain, report: &MisbehaviourReport, height: u64) -> bool {
    let Some(hash) = &report.update_tx else {
        return false;
    };
    let tx = host
        .rpc
        .tx(hash.parse().expect("tx hash"), false)
        .await
        .expect("the update's tx");
    tx.height.value() == height
}

/// Waits until `host`'s client is frozen on chain and relayd's ClientKeeper reports it so.
async fn until_frozen(relayd: &Relayd, host: &Chain) {
    eventually(
        &format!("the client on {} frozen on chain", host.id),
        || async { frozen(&client_state(host).await) },
    )
    .await;
    eventually(
        &format!("the ClientKeeper reports the client on {} frozen", host.id),
        || async {
            keeper_report(relayd, &host.id)
                .await
                .is_some_and(|c| c.health == "frozen" && c.alarm)
        },
    )
    .await;
}

async fn relay_a_few_transfers(a: &End, b: &End, chains: &[devnet::RunningChain]) {
    let u1 = Wallet::genesis(&chains[0], "user1");
    let u2 = Wallet::genesis(&chains[1], "user2");
    transfers(a, &u1, &u2.address, 5, 3, 3, far_timeout()).await;
    transfers(b, &u2, &u1.address, 5, 3, 3, far_timeout()).await;
    let on_b = voucher_denom(TRANSFER_PORT, &b.channel_id, "stake");
    let on_a = voucher_denom(TRANSFER_PORT, &a.channel_id, "stake");
    eventually("the transfers relayed both ways", || async {
        b.chain.balance(&u2.address, &on_b).await == 15
            && a.chain.balance(&u1.address, &on_a).await == 15
    })
    .await;
    // Acknowledged too: no update of either client may be on its way when the rogue relayer strikes.
    let rpc_a = CosmosRpc::connect("ibc-0", &chains[0].rpc_url())
        .await
        .unwrap();
    let rpc_b = CosmosRpc::connect("ibc-1", &chains[1].rpc_url())
        .await
        .unwrap();
    eventually("the transfers acknowledged", || async {
        rpc_a
            .packet_commitments(TRANSFER_PORT, &a.channel_id)
            .await
            .is_ok_and(|c| c.is_empty())
            && rpc_b
                .packet_commitments(TRANSFER_PORT, &b.channel_id)
                .await
                .is_ok_and(|c| c.is_empty())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_headers_are_read_from_their_transactions_and_their_clients_frozen() {
    forged_headers_are_detected(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_headers_in_legacy_update_events_are_detected_and_their_clients_frozen() {
    forged_headers_are_detected(true).await;
}

/// The whole scenario, with `update_client` events carrying the header (`legacy`) or not.
async fn forged_headers_are_detected(legacy: bool) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut options = devnet::ChainOptions::local("ibc", Duration::from_millis(200));
    options.update_client_header = legacy;
    let chains = devnet::start_chains(2, &options).await.unwrap();
    let (a, b) = connect_transfer(&chains).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &chains, &a);
    let relayd = Relayd::start(&config, dir.path());
    eventually("relayd follows both chains", || async {
        relayd.ask(Cmd::Following).await == 2
    })
    .await;

    // relayd's own updates, on both hosts, are judged and found to be the headers it verified.
    relay_a_few_transfers(&a, &b, &chains).await;
    eventually("relayd's builders finish", || async {
        relayd.ask(Cmd::Builders).await == 0
    })
    .await;
    eventually("relayd's own updates judged on both hosts", || async {
        let s = status(&relayd).await;
        s.consistent >= 2 && s.pending == 0
    })
    .await;
    let before = status(&relayd).await;
    assert!(before.reports.is_empty(), "{before:?}");
    assert_eq!(before.unjudged, 0, "{before:?}");

    // 1. A conflict at one height: ibc-1's client of ibc-0 gets a second header at a height ibc-0 has, with
    //    another app hash, signed by ibc-0's validators.
    let trusted = client_state(&b.chain)
        .await
        .latest_height
        .expect("latest height")
        .revision_height;
    a.chain.wait_until_height(trusted + 2).await;
    let h = a.chain.height().await;
    assert!(
        !b.client.has_consensus_state(&b.chain, &a.chain, h).await,
        "no update of ibc-1's client may race the rogue one"
    );
    let real = fetch_light_block(&a.chain, h).await;
    let mut header = real.signed_header.header.clone();
    let mut app_hash = header.app_hash.as_bytes().to_vec();
    app_hash[0] ^= 0xff;
    header.app_hash = app_hash.try_into().expect("app hash");
    let forged = sign(&chains[0], header);
    assert_ne!(forged.header.hash(), real.signed_header.header.hash());
    let rogue_b = Wallet::genesis(&chains[1], "user1");
    let inc = rogue_update(&b.chain, &rogue_b, &a.chain, trusted, &forged, &real).await;
    check_header_attribute(&inc, legacy);
    assert!(
        !frozen(&client_state(&b.chain).await),
        "accepted, not frozen"
    );

    eventually("relayd reports the conflict on ibc-1", || async {
        report_for(&relayd, "ibc-1")
            .await
            .is_some_and(|r| r.submitted_tx.is_some())
    })
    .await;
    let report = report_for(&relayd, "ibc-1").await.unwrap();
    assert_eq!(
        (report.client_id.as_str(), report.tracked.as_str()),
        (CLIENT, "ibc-0")
    );
    assert_eq!(report.evidence.kind, "conflict");
    assert_eq!((report.evidence.height_1, report.evidence.height_2), (h, h));
    assert_eq!(report.evidence.hash_1, forged.header.hash().to_string());
    assert_eq!(
        report.evidence.hash_2,
        real.signed_header.header.hash().to_string()
    );
    assert!(
        report.evidence.reason.contains("app_hash"),
        "{}",
        report.evidence.reason
    );
    assert!(report.error.is_none(), "{report:?}");
    assert!(
        names_the_update_tx(&b.chain, &report, inc.height).await,
        "{report:?}"
    );
    assert!(froze_the_client(&b.chain, report.submitted_tx.as_deref().unwrap()).await);
    until_frozen(&relayd, &b.chain).await;

    // 2. Time going backwards: ibc-0's client of ibc-1 gets a header far above ibc-1's height, carrying the
    //    time of ibc-1's block at `latest`, signed by ibc-1's validators.
    let trusted = client_state(&a.chain)
        .await
        .latest_height
        .expect("latest height")
        .revision_height;
    let latest = b.chain.wait_until_height(trusted + 2).await;
    let base = fetch_light_block(&b.chain, latest).await;
    let mut header = base.signed_header.header.clone();
    let future = latest + 10_000;
    header.height = future.try_into().expect("height");
    let forged = sign(&chains[1], header);
    let rogue_a = Wallet::genesis(&chains[0], "user2");
    let inc = rogue_update(&a.chain, &rogue_a, &b.chain, trusted, &forged, &base).await;
    check_header_attribute(&inc, legacy);
    assert!(
        !frozen(&client_state(&a.chain).await),
        "accepted, not frozen"
    );

    eventually("relayd reports the BFT time violation on ibc-0", || async {
        report_for(&relayd, "ibc-0")
            .await
            .is_some_and(|r| r.submitted_tx.is_some())
    })
    .await;
    let report = report_for(&relayd, "ibc-0").await.unwrap();
    assert_eq!(report.evidence.kind, "bft_time_violation");
    assert_eq!(report.evidence.height_1, future);
    assert!(
        report.evidence.height_2 >= latest && report.evidence.height_2 < future,
        "{report:?}"
    );
    assert!(
        names_the_update_tx(&a.chain, &report, inc.height).await,
        "{report:?}"
    );
    assert!(froze_the_client(&a.chain, report.submitted_tx.as_deref().unwrap()).await);
    until_frozen(&relayd, &a.chain).await;

    let after = status(&relayd).await;
    assert_eq!(after.reports.len(), 2, "{after:?}");
    assert_eq!(after.unjudged, 0, "{after:?}");
    relayd.stop().await;

    // relayd restarted (in this process, on the same data directory): the evidence is still reported, read
    // back from the state database when the watcher starts.
    let relayd = Relayd::start(&config, dir.path());
    let kept = status(&relayd).await;
    assert_eq!(kept.reports, after.reports, "{kept:?}");
    relayd.stop().await;
    for chain in chains {
        chain.shutdown().await;
    }
}
