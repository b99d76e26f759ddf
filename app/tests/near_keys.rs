//! A NEAR chain signed for with two access keys of one account (`key_files`): relayd sends its `deliver` calls on
//! both keys, each with its own nonce, and the transfers it relays between a Cosmos devnet and the NEAR devnet (both
//! separate processes, `devnet near --relayer-keys 2`) complete exactly once with exact balances. The NEAR devnet
//! judges every call (signature, access key, nonce); both keys' nonces are read from it with `view_access_key`.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

#[path = "common/near_process.rs"]
#[allow(dead_code)]
mod near_process;

use common::{eventually, log_has};
use near_process::{balance, KeepOnFailure, Stage};
use relayd_actors::chain::near::credentials::load_signer;
use relayd_actors::chain::near::rpc::NearRpc;
use support::packet::{escrow_address, voucher_denom};

/// Transfers each way, sent in two bursts.
const PER_BURST: usize = 15;
/// What each Cosmos → NEAR transfer carries, in `stake`.
const STAKE_EACH: u128 = 3;
/// What each NEAR → Cosmos transfer carries, in `usdc.devnet`.
const USDC_EACH: u128 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_near_access_keys_both_sign_and_every_transfer_completes_once() {
    let kept = KeepOnFailure(Some(tempfile::tempdir().unwrap()));
    let dir = kept.0.as_ref().unwrap();
    let stage = Stage::start(dir.path(), &["--relayer-keys", "2"]).await;
    let (config, near_id) = (&stage.config, stage.near_id.as_str());

    // The service signs NEAR calls with both of the relayer's keys.
    let files: Vec<std::path::PathBuf> = stage.near["relayer_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| stage.near_home.join(f.as_str().unwrap()))
        .collect();
    assert_eq!(files.len(), 2);
    let text = std::fs::read_to_string(config).unwrap();
    let one = format!("key_file = \"{}\"\n", files[0].display());
    assert!(text.contains(&one), "{text}");
    let both = format!(
        "key_files = [\"{}\", \"{}\"]\n",
        files[0].display(),
        files[1].display()
    );
    std::fs::write(config, text.replace(&one, &both)).unwrap();
    let checked = common::relayd(config, &["config", "validate"]);
    assert!(checked.status.success(), "{checked:?}");

    let rpc = NearRpc::new(near_id, stage.near["rpc_addr"].as_str().unwrap());
    let signers: Vec<_> = files
        .iter()
        .map(|f| load_signer(f, Some("relayer.devnet")).unwrap())
        .collect();
    assert_ne!(signers[0].public_key(), signers[1].public_key());
    let nonces = || async {
        let mut out = Vec::new();
        for s in &signers {
            let (key, _) = rpc
                .access_key(&s.get_account_id(), &s.public_key())
                .await
                .unwrap();
            out.push(key.nonce);
        }
        out
    };
    let before = nonces().await;

    let (near_user, cosmos_user_address) = (stage.near_user.as_str(), &stage.cosmos_user_address);
    let (cosmos_chan, near_chan) = (&stage.cosmos_chan, &stage.near_chan);
    let near_escrow = stage.near_escrow();
    let near_user_usdc = balance(config, near_id, near_user, "usdc.devnet").await;
    let log = dir.path().join("relayd.log");
    let mut service = common::start(config, &log);
    eventually("relayd started", || async {
        log_has(&log, "relayd started")
    })
    .await;
    let (stake, usdc) = (
        format!("{STAKE_EACH}stake"),
        format!("{USDC_EACH}usdc.devnet"),
    );
    for _ in 0..2 {
        let (to_near, to_cosmos) = tokio::join!(
            stage.send("ibc-0", &stake, PER_BURST),
            stage.send(near_id, &usdc, PER_BURST)
        );
        assert_eq!(to_near["sequences"].as_array().unwrap().len(), PER_BURST);
        assert_eq!(to_cosmos["sequences"].as_array().unwrap().len(), PER_BURST);
    }

    let total = (2 * PER_BURST) as u128;
    let near_voucher = format!("transfer/{near_chan}/stake");
    let cosmos_voucher = voucher_denom("transfer", cosmos_chan, "usdc.devnet");
    eventually("every transfer arrives", || async {
        balance(config, near_id, near_user, &near_voucher).await == total * STAKE_EACH
            && balance(config, "ibc-0", cosmos_user_address, &cosmos_voucher).await
                == total * USDC_EACH
    })
    .await;
    stage.wait_nothing_pending().await;
    let cosmos_escrow = escrow_address("transfer", cosmos_chan);
    assert_eq!(
        balance(config, "ibc-0", &cosmos_escrow, "stake").await,
        total * STAKE_EACH
    );
    assert_eq!(
        balance(config, near_id, &near_escrow, "usdc.devnet").await,
        total * USDC_EACH
    );
    assert_eq!(
        balance(config, near_id, near_user, "usdc.devnet").await,
        near_user_usdc - total * USDC_EACH
    );

    // Both access keys carried calls: each key's nonce moved on the chain.
    let after = nonces().await;
    assert!(
        after[0] > before[0],
        "first key unused: {before:?} -> {after:?}"
    );
    assert!(
        after[1] > before[1],
        "second key unused: {before:?} -> {after:?}"
    );

    common::stop(&mut service);
    assert!(log_has(&log, "relayd stopped"));
    common::assert_each_acknowledged_once(&dir.path().join("data/state"), 4 * PER_BURST);
    drop(stage);
}
