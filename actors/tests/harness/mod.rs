//! relayd running in its own thread with its own actix System, as the service runs it, driven from a test
//! through commands; shared by the end-to-end actor tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use relayd_actors::keys::{KeySource, KeyStore};
use relayd_actors::store::{PacketRecord, StateStore};
use relayd_actors::system::StartOptions;
use relayd_messages::{
    ActorKind, CheckClients, ClientReport, InjectPanic, MisbehaviourStatus, PanicAnyBuilder,
    PanicChild, QueryChainStatus, QueryClientHealth, QueryCoordinator, QueryMisbehaviour,
};
use tokio::sync::{mpsc, oneshot};

use crate::support;

/// Commands to the relayd thread.
pub enum Cmd {
    Panic(usize, ActorKind),
    PanicBuilder,
    Restarts(oneshot::Sender<u64>),
    Builders(oneshot::Sender<usize>),
    /// A client as the Querier of chain `.0` reads it.
    QueryClient(
        String,
        String,
        oneshot::Sender<Result<relayd_messages::ClientSummary, relayd_messages::RelayError>>,
    ),
    /// The builder window: (running, waiting, max).
    Window(oneshot::Sender<(usize, usize, usize)>),
    /// How many chains the coordinator has seen a block of.
    Following(oneshot::Sender<usize>),
    /// The ClientKeeper's reports, after a check of every client.
    Clients(oneshot::Sender<Vec<ClientReport>>),
    /// Every packet lifecycle record.
    Records(oneshot::Sender<Vec<PacketRecord>>),
    /// What the MisbehaviourWatcher judged and submitted.
    Misbehaviour(oneshot::Sender<MisbehaviourStatus>),
    /// Makes the coordinator panic; answers with the failure relayd escalates.
    PanicCoordinator(oneshot::Sender<String>),
    Stop(oneshot::Sender<()>),
}

/// relayd running in its own thread with its own actix System, as the service runs it.
pub struct Relayd {
    pub cmds: mpsc::UnboundedSender<Cmd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relayd {
    pub fn start(config_path: &Path, data: &Path) -> Self {
        Self::start_with(config_path, data, StartOptions::default())
    }

    pub fn start_with(config_path: &Path, data: &Path, options: StartOptions) -> Self {
        // RUST_LOG shows relayd's logs in a test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let config = relayd_config::Config::load(config_path).expect("config");
        let data = data.to_owned();
        let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
        let thread = std::thread::spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let data = data.join("data");
                let store = StateStore::open(&data.join("state")).expect("store");
                let mut handle =
                    relayd_actors::system::start_with(&config, store, data.join("keys"), options)
                        .await
                        .expect("relayd starts");
                let mut failure = handle.take_failure();
                while let Some(cmd) = rx.recv().await {
                    match cmd {
                        Cmd::Panic(chain, kind) => {
                            let _ = handle.supervisors[chain].1.send(PanicChild(kind)).await;
                        }
                        Cmd::PanicBuilder => {
                            let _ = handle.coordinator.send(PanicAnyBuilder).await;
                        }
                        Cmd::Restarts(reply) => {
                            let mut total = 0;
                            for (_, sup) in &handle.supervisors {
                                let status = sup.send(QueryChainStatus).await.expect("status");
                                total += status.children.iter().map(|c| c.restarts).sum::<u64>();
                            }
                            let _ = reply.send(total);
                        }
                        Cmd::Builders(reply) => {
                            let s = handle
                                .coordinator
                                .send(QueryCoordinator)
                                .await
                                .expect("status");
                            let _ = reply.send(s.builders);
                        }
                        Cmd::QueryClient(chain, client, reply) => {
                            let link = handle
                                .links
                                .iter()
                                .find(|(id, _)| id.as_str() == chain)
                                .map(|(_, l)| l.clone())
                                .expect("a link of the chain");
                            let answer = link
                                .query_client(relayd_messages::QueryClient {
                                    correlation: relayd_messages::CorrelationId::fresh(),
                                    client_id: relayd_messages::ClientId::new(client)
                                        .expect("a client id"),
                                })
                                .await;
                            let _ = reply.send(answer);
                        }
                        Cmd::Window(reply) => {
                            let s = handle
                                .coordinator
                                .send(QueryCoordinator)
                                .await
                                .expect("status");
                            let _ = reply.send((s.builders, s.waiting_builders, s.max_builders));
                        }
                        Cmd::Following(reply) => {
                            let s = handle
                                .coordinator
                                .send(QueryCoordinator)
                                .await
                                .expect("status");
                            let _ = reply.send(s.heights.len());
                        }
                        Cmd::Clients(reply) => {
                            let _ = handle.check_clients.send(CheckClients).await;
                            let reports = handle.clients.send(QueryClientHealth).await;
                            let _ = reply.send(reports.unwrap_or_default());
                        }
                        Cmd::Records(reply) => {
                            let records = handle.store().packets().filter_map(Result::ok).collect();
                            let _ = reply.send(records);
                        }
                        Cmd::Misbehaviour(reply) => {
                            let status = handle.misbehaviour.send(QueryMisbehaviour).await;
                            let _ = reply.send(status.unwrap_or_default());
                        }
                        Cmd::PanicCoordinator(reply) => {
                            handle.coordinator.do_send(InjectPanic);
                            if let Some(failed) = failure.take() {
                                let _ = reply.send(failed.await);
                            }
                        }
                        Cmd::Stop(reply) => {
                            handle.shutdown().await;
                            let _ = reply.send(());
                            break;
                        }
                    }
                }
            });
        });
        Self {
            cmds: tx,
            thread: Some(thread),
        }
    }

    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> T {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(make(tx));
        rx.await.expect("relayd thread answers")
    }

    pub async fn stop(mut self) {
        self.ask(Cmd::Stop).await;
        if let Some(t) = self.thread.take() {
            tokio::task::spawn_blocking(move || t.join())
                .await
                .unwrap()
                .unwrap();
        }
    }
}

pub fn write_config(
    dir: &Path,
    chains: &[devnet::RunningChain],
    a: &support::handshake::End,
) -> PathBuf {
    let (path, files) = support::relayd::write(dir, chains, &a.channel_id);
    let keys = KeyStore::open(&dir.join("data/keys")).unwrap();
    for (chain, file) in files {
        keys.add(&chain, "relayer", "cosmos", KeySource::KeyFile(&file))
            .unwrap();
    }
    path
}

pub fn far_timeout() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    now + 3_600_000_000_000
}

/// Waits until `check` holds, failing after a generous bound (a hang guard, not a timing assertion).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1800 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen");
}
