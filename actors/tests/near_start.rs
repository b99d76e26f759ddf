//! Starting relayd with a NEAR chain and no trusted NEAR head: the chain's light client refuses to start, its
//! error (in the chain's status, as `/health` shows it) names `relayd light init` for that chain, and nothing is
//! trusted or stored; the same chain with `trust_on_first_use = true` starts (its head is then taken from the
//! node on first use, as `NearLight`'s unit tests check).

use std::time::Duration;

use relayd_actors::store::StateStore;
use relayd_messages::{ActorKind, ChildStatus, QueryChainStatus};

const BLOCK_TIME: Duration = Duration::from_millis(200);

/// Starts relayd's actors on `config` with `store`; answers the NEAR chain's light-client child status once it has
/// started or failed at least once.
fn light_client_status(
    config: relayd_config::Config,
    store: StateStore,
    keys: std::path::PathBuf,
) -> ChildStatus {
    actix_rt::System::new().block_on(async move {
        let handle = relayd_actors::system::start(&config, store, keys)
            .await
            .expect("relayd starts");
        let (_, supervisor) = &handle.supervisors[0];
        let mut status = None;
        // A hang guard, not a timing assertion.
        for _ in 0..200 {
            let chain = supervisor.send(QueryChainStatus).await.expect("status");
            let child = chain
                .children
                .into_iter()
                .find(|c| c.kind == ActorKind::LightClient)
                .expect("a light-client child");
            if child.running || child.last_error.is_some() {
                status = Some(child);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.shutdown().await;
        status.expect("the light client started or failed")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_near_chain_without_a_trusted_head_is_not_started_unless_trust_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = devnet::near::NearOptions::local(BLOCK_TIME);
    options.home = Some(dir.path().join("near"));
    let near = devnet::near::start(options).await.unwrap();
    near.wait_for_height(3).await;
    let near_id = near.chain_id().to_owned();
    let relayer = near.genesis.relayer.account_id.to_string();
    let contract = near.genesis.ibc.account_id.to_string();
    let key_file = dir
        .path()
        .join("near")
        .join("keys")
        .join(format!("{relayer}.json"));
    let config_text = format!(
        "[global]\ntimeout = \"10s\"\ndata_dir = \"data\"\n\n[[chains]]\nid = \"{near_id}\"\ntype = \"near\"\nrpc_addr = \"{}\"\ncontract_account = \"{contract}\"\nsigner_account = \"{relayer}\"\nkey_file = \"{}\"\n",
        near.rpc_url(),
        key_file.display()
    );
    let config_path = dir.path().join("relayd.toml");
    let data = dir.path().join("data");
    let store = StateStore::open(&data.join("state")).unwrap();

    // By default: refused, with the fix in the message, and nothing stored.
    std::fs::write(&config_path, &config_text).unwrap();
    let config = relayd_config::Config::load(&config_path).unwrap();
    let (s, k) = (store.clone(), data.join("keys"));
    let status = tokio::task::spawn_blocking(move || light_client_status(config, s, k))
        .await
        .unwrap();
    assert!(!status.running);
    let error = status.last_error.expect("why it did not start");
    assert!(
        error.contains(&format!("relayd light init --chain {near_id} --hash")),
        "{error}"
    );
    assert!(store.trusted_near(&near_id).unwrap().is_none());

    // With trust_on_first_use the chain's light client starts.
    std::fs::write(
        &config_path,
        format!("{config_text}trust_on_first_use = true\n"),
    )
    .unwrap();
    let config = relayd_config::Config::load(&config_path).unwrap();
    let (s, k) = (store.clone(), data.join("keys"));
    let status = tokio::task::spawn_blocking(move || light_client_status(config, s, k))
        .await
        .unwrap();
    assert!(status.running, "{status:?}");
    assert_eq!(status.last_error, None);

    near.shutdown().await;
}
