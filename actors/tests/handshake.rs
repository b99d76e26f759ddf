//! Handshake builders end to end: relayd's actors finish connection and channel handshakes that someone else
//! started between two devnet chains, whose ibc-rs judges every datagram (proofs, client states, versions).
//! A connection started before relayd runs is found by the start-up scan (and a request for it, as
//! `relayd create` sends, is accepted); a channel on it is started while relayd runs and found through the
//! monitor's events.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::Duration;

use ibc_proto::ibc::core::channel::v1::{
    Channel, Counterparty as ChanCounterparty, MsgChannelOpenInit, Order, State as ChanState,
};
use ibc_proto::ibc::core::commitment::v1::MerklePrefix;
use ibc_proto::ibc::core::connection::v1::{
    ConnectionEnd, Counterparty as ConnCounterparty, MsgConnectionOpenInit, State as ConnState,
};
use prost::Message;
use relayd_actors::keys::{KeySource, KeyStore};
use relayd_actors::store::StateStore;
use relayd_messages::{
    ChainId, ConnectionId, CorrelationId, HandshakeState, RelayHandshake, RelayObject,
};
use support::chain::{Chain, Wallet};
use support::handshake::{channel_path, create_clients};
use support::light::any;
use support::packet::{ICS20_VERSION, TRANSFER_PORT};
use tokio::sync::{mpsc, oneshot};

/// relayd in its own thread and actix System, taking handshake requests.
struct Relayd {
    requests: mpsc::UnboundedSender<(RelayHandshake, oneshot::Sender<Result<(), String>>)>,
    thread: std::thread::JoinHandle<()>,
}

impl Relayd {
    fn start(config_path: &Path, data: &Path) -> Self {
        let config = relayd_config::Config::load(config_path).expect("config");
        let data = data.to_owned();
        let (tx, mut rx) = mpsc::unbounded_channel::<(RelayHandshake, oneshot::Sender<_>)>();
        let thread = std::thread::spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let store = StateStore::open(&data.join("state")).expect("store");
                let handle = relayd_actors::system::start(&config, store, data.join("keys"))
                    .await
                    .expect("relayd starts");
                while let Some((request, reply)) = rx.recv().await {
                    let result = handle.coordinator.send(request).await.expect("mailbox");
                    let _ = reply.send(result.map_err(|e| e.to_string()));
                }
                handle.shutdown().await;
            });
        });
        Self {
            requests: tx,
            thread,
        }
    }

    async fn request(&self, request: RelayHandshake) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.requests.send((request, tx)).expect("relayd runs");
        rx.await.expect("relayd answers")
    }

    async fn stop(self) {
        drop(self.requests);
        tokio::task::spawn_blocking(move || self.thread.join())
            .await
            .unwrap()
            .unwrap();
    }
}

async fn ibc_value(chain: &Chain, path: String) -> Vec<u8> {
    chain
        .query("store/ibc/key", path.into_bytes(), None, false)
        .await
        .map(|q| q.value)
        .unwrap_or_default()
}

async fn connection(chain: &Chain, id: &str) -> Option<ConnectionEnd> {
    let v = ibc_value(chain, format!("connections/{id}")).await;
    (!v.is_empty()).then(|| ConnectionEnd::decode(v.as_slice()).expect("connection end"))
}

async fn channel(chain: &Chain, port: &str, id: &str) -> Option<Channel> {
    let v = ibc_value(chain, channel_path(port, id)).await;
    (!v.is_empty()).then(|| Channel::decode(v.as_slice()).expect("channel end"))
}

/// Waits until `check` holds, failing after a generous bound (a hang guard, not a timing assertion).
async fn eventually<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen");
}

async fn open_init(a: &Chain, user: &Wallet, client: &str, counterparty_client: &str) -> String {
    let init = MsgConnectionOpenInit {
        client_id: client.to_owned(),
        counterparty: Some(ConnCounterparty {
            client_id: counterparty_client.to_owned(),
            connection_id: String::new(),
            prefix: Some(MerklePrefix {
                key_prefix: support::proof::PREFIX.to_vec(),
            }),
        }),
        version: None,
        delay_period: 0,
        signer: user.address.clone(),
    };
    a.submit(
        user,
        &[any("/ibc.core.connection.v1.MsgConnectionOpenInit", &init)],
    )
    .await
    .attr("connection_open_init", "connection_id")
    .expect("connection id")
}

struct Setup {
    chains: Vec<devnet::RunningChain>,
    a: support::handshake::End,
    b: support::handshake::End,
    user_a: Wallet,
    conn_a: String,
    _dir: tempfile::TempDir,
    config_path: std::path::PathBuf,
    data: std::path::PathBuf,
}

/// Two chains with clients of each other, and a connection someone opened on ibc-0 before relayd runs.
async fn setup() -> Setup {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let chains = devnet::start_chains(
        2,
        &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let (a, b) = create_clients(
        Chain::connect(&chains[0]),
        &chains[0].genesis.validator_set(),
        Chain::connect(&chains[1]),
        &chains[1].genesis.validator_set(),
    )
    .await;
    let user_a = Wallet::genesis(&chains[0], "user1");
    let conn_a = open_init(&a.chain, &user_a, &a.client.client_id, &b.client.client_id).await;

    let dir = tempfile::tempdir().unwrap();
    let (config_path, key_files) = support::relayd::write(dir.path(), &chains, "channel-0");
    // No packet paths: the channel does not exist yet.
    let config = std::fs::read_to_string(&config_path).unwrap();
    let config = config.split("\n[[connections]]").next().unwrap().to_owned();
    std::fs::write(&config_path, config).unwrap();
    let data = dir.path().join("data");
    let keys = KeyStore::open(&data.join("keys")).unwrap();
    for (chain, file) in key_files {
        keys.add(&chain, "relayer", "cosmos", KeySource::KeyFile(&file))
            .unwrap();
    }
    Setup {
        chains,
        a,
        b,
        user_a,
        conn_a,
        _dir: dir,
        config_path,
        data,
    }
}

async fn both_connection_ends_open(s: &Setup) -> (String, ConnectionEnd) {
    eventually("both connection ends open", || async {
        let end_a = connection(&s.a.chain, &s.conn_a).await?;
        let cp = end_a.counterparty.clone()?;
        let end_b = connection(&s.b.chain, &cp.connection_id).await?;
        (end_a.state == ConnState::Open as i32 && end_b.state == ConnState::Open as i32)
            .then_some((cp.connection_id, end_b))
    })
    .await
}

/// ADR-002's config executor: a connection on a configured client, left at INIT before relayd started, is
/// found by the start-up scan and finished without any request or event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_scan_finishes_a_handshake_started_before_relayd_ran() {
    let s = setup().await;
    let relayd = Relayd::start(&s.config_path, &s.data);
    let (_, end_b) = both_connection_ends_open(&s).await;
    assert_eq!(end_b.counterparty.unwrap().connection_id, s.conn_a);
    relayd.stop().await;
    drop(s.chains);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_finish_connection_and_channel_handshakes_started_by_others() {
    let s = setup().await;
    let (a, b, user_a, conn_a) = (&s.a, &s.b, &s.user_a, s.conn_a.clone());
    let (config_path, data) = (&s.config_path, &s.data);
    let relayd = Relayd::start(config_path, data);

    let object = RelayObject::Connection {
        chain: ChainId::new(a.chain.id.clone()).unwrap(),
        connection: ConnectionId::new(conn_a.clone()).unwrap(),
    };
    let request = |object: RelayObject| RelayHandshake {
        correlation: CorrelationId::fresh(),
        object,
        state: HandshakeState::OpenInit,
    };
    // The chains' actors may still be starting: a request is refused (not lost) until the querier answers.
    eventually("the connection request is accepted", || async {
        relayd.request(request(object.clone())).await.ok()
    })
    .await;
    let (conn_b, end_b) = both_connection_ends_open(&s).await;
    let cp_b = end_b.counterparty.expect("counterparty");
    assert_eq!(cp_b.connection_id, conn_a, "the ends point at each other");
    assert_eq!(cp_b.client_id, a.client.client_id);
    assert_eq!(end_b.client_id, b.client.client_id);

    // A channel opened while relayd runs: the monitor's channel_open_init event starts its builder.
    let init = MsgChannelOpenInit {
        port_id: TRANSFER_PORT.to_owned(),
        channel: Some(Channel {
            state: ChanState::Init as i32,
            ordering: Order::Unordered as i32,
            counterparty: Some(ChanCounterparty {
                port_id: TRANSFER_PORT.to_owned(),
                channel_id: String::new(),
            }),
            connection_hops: vec![conn_a.clone()],
            version: ICS20_VERSION.to_owned(),
            upgrade_sequence: 0,
        }),
        signer: user_a.address.clone(),
    };
    let chan_a = a
        .chain
        .submit(
            user_a,
            &[any("/ibc.core.channel.v1.MsgChannelOpenInit", &init)],
        )
        .await
        .attr("channel_open_init", "channel_id")
        .expect("channel id");
    let (chan_b, end_b) = eventually("both channel ends open", || async {
        let end_a = channel(&a.chain, TRANSFER_PORT, &chan_a).await?;
        let cp = end_a.counterparty.clone()?;
        let end_b = channel(&b.chain, TRANSFER_PORT, &cp.channel_id).await?;
        (end_a.state == ChanState::Open as i32 && end_b.state == ChanState::Open as i32)
            .then_some((cp.channel_id, end_b))
    })
    .await;
    assert_eq!(end_b.connection_hops, vec![conn_b.clone()]);
    assert_eq!(end_b.counterparty.expect("counterparty").channel_id, chan_a);
    assert_eq!(end_b.version, ICS20_VERSION);
    assert!(!chan_b.is_empty());

    // Asking again for a finished handshake is harmless: the builder reads both ends open and stops.
    relayd
        .request(request(object))
        .await
        .expect("request for an open connection");
    relayd.stop().await;
}
