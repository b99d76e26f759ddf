//! A complete relaying setup on one machine, with nothing to install or configure: two devnet chains running
//! in-process on loopback ports, relayd's configuration, keys and data directory for them, and an ICS-20 channel
//! opened by relayd's own `create` code. `relayd demo` runs on it; embedding hosts and their tests start from it.
//! The same with a NEAR devnet as the second chain is in [`near`].

pub mod near;
pub mod stats;
pub mod traffic;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use devnet::{ChainOptions, RunningChain};
use relayd_actors::keys::{KeyError, KeySource, KeyStore};
use relayd_config::{ChainConfig, Config};

use crate::commands::create::{self, ChannelSpec, Env};

/// The port both ends of the demo's channel are bound to.
pub const TRANSFER_PORT: &str = "transfer";
/// The ICS-20 application version.
pub const ICS20_VERSION: &str = "ics20-1";
/// The fee and transfer denomination of every devnet chain.
pub const DENOM: &str = "stake";

/// Why the demo setup could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The chains did not start.
    #[error("cannot start the devnet chains: {0}")]
    Devnet(String),
    /// A file or folder of the data directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data directory holds another setup's state, which would not match the new chains.
    #[error("{0} already holds relayd state; choose a new or empty --data-dir")]
    NotEmpty(PathBuf),
    /// A relayer key could not be imported.
    #[error("relayer key: {0}")]
    Keys(#[from] KeyError),
    /// The generated configuration was refused.
    #[error("configuration {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A chain has no account of this name in its genesis.
    #[error("{chain} has no genesis account {name}")]
    Account {
        /// The chain.
        chain: String,
        /// The account name.
        name: String,
    },
    /// Clients, connection or channel could not be created.
    #[error("cannot open the transfer channel: {0}")]
    Channel(String),
    /// A transfer could not be sent.
    #[error("{chain}: transfer failed: {reason}")]
    Transfer {
        /// The sending chain.
        chain: String,
        /// Why.
        reason: String,
    },
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Two devnet chains, `ibc-0` and `ibc-1` (or `ibc-0` and a NEAR devnet, see [`Devnet::start_near`]), on a tokio
/// runtime of their own so that block production and their RPC servers never wait on the host's actors (or the
/// other way round).
pub struct Devnet {
    runtime: Option<tokio::runtime::Runtime>,
    chains: Vec<RunningChain>,
    near: Option<devnet::near::RunningNear>,
}

/// The runtime the devnet chains run on.
fn devnet_runtime() -> Result<tokio::runtime::Runtime, DemoError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("devnet")
        .enable_all()
        .build()
        .map_err(|e| DemoError::Devnet(e.to_string()))
}

impl Devnet {
    /// Starts both chains on free loopback ports, producing a block every `block_time` (100 ms or more). Each
    /// chain's home (`chain.json` and its genesis accounts' key files) is written under `home/<chain id>`.
    pub async fn start(block_time: Duration, home: &Path) -> Result<Self, DemoError> {
        let runtime = devnet_runtime()?;
        let mut template = ChainOptions::local("ibc-0", block_time);
        template.home = Some(home.to_owned());
        let started = runtime
            .spawn(async move {
                let chains = devnet::start_chains(2, &template).await?;
                // Clients are created from a committed block and its successor's commit.
                for chain in &chains {
                    chain.wait_for_height(3).await;
                }
                Ok::<_, devnet::DevnetError>(chains)
            })
            .await
            .map_err(|e| DemoError::Devnet(e.to_string()))?
            .map_err(|e| DemoError::Devnet(e.to_string()))?;
        Ok(Self {
            runtime: Some(runtime),
            chains: started,
            near: None,
        })
    }

    /// The running Cosmos chains, `ibc-0` first.
    pub fn chains(&self) -> &[RunningChain] {
        &self.chains
    }

    /// The running chain `id`.
    pub fn chain(&self, id: &str) -> Option<&RunningChain> {
        self.chains.iter().find(|c| c.chain_id() == id)
    }

    /// Stops one chain (its blocks, RPC and gRPC), as a node that goes away; false when it is not running.
    pub async fn stop_chain(&mut self, id: &str) -> bool {
        let Some(index) = self.chains.iter().position(|c| c.chain_id() == id) else {
            return false;
        };
        let chain = self.chains.remove(index);
        self.on_runtime(async move { chain.shutdown().await }).await;
        true
    }

    async fn on_runtime<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(runtime) = &self.runtime {
            // A chain's servers run on this runtime; they are stopped from it.
            let _ = runtime.spawn(work).await;
        }
    }

    /// Stops every chain and the runtime they ran on.
    pub async fn shutdown(mut self) {
        let chains = std::mem::take(&mut self.chains);
        let near = self.near.take();
        self.on_runtime(async move {
            for chain in chains {
                chain.shutdown().await;
            }
            if let Some(near) = near {
                near.shutdown().await;
            }
        })
        .await;
        if let Some(runtime) = self.runtime.take() {
            // Callable from inside another runtime (the host's), unlike dropping it.
            runtime.shutdown_background();
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One end of the demo's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEnd {
    /// The chain.
    pub chain: String,
    /// The client of the other chain on this one.
    pub client: String,
    /// The connection on this chain.
    pub connection: String,
    /// The transfer channel on this chain.
    pub channel: String,
}

/// A transfer channel between the two devnet chains, and the files relayd runs from.
pub struct Testbed {
    /// The configuration, relaying the channel both ways.
    pub config: Config,
    /// Where the configuration was written (`<data dir>/relayd.toml`).
    pub config_path: PathBuf,
    /// The data directory: keys, state database, chain homes.
    pub data_dir: PathBuf,
    /// The end on `ibc-0` (the handshake's initiating end).
    pub a: ChannelEnd,
    /// The end on `ibc-1`.
    pub b: ChannelEnd,
}

/// What the configuration says about one chain.
struct ChainEntry {
    id: String,
    rpc: String,
    client: Option<String>,
}

/// The configuration text of a demo: both chains, the admin address, and once a channel exists, the path that
/// relays it both ways. `[global] data_dir = "."` keeps everything next to the file.
fn config_text(
    chains: &[ChainEntry],
    admin: Option<SocketAddr>,
    path: Option<(&ChannelEnd, &ChannelEnd)>,
) -> String {
    let mut text = String::from(
        "# Written by `relayd demo` for its two devnet chains; usable with any relayd command (-c this file).\n\
         [global]\ntimeout = \"10s\"\ndata_dir = \".\"\n\n\
         [supervision]\nrestart_intensity = 10\nrestart_period = \"30s\"\nbackoff_base = \"50ms\"\nbackoff_cap = \"2s\"\n",
    );
    if let Some(addr) = admin {
        text.push_str(&format!("\n[admin]\nlisten_addr = \"{addr}\"\n"));
    }
    for chain in chains {
        text.push_str(&format!(
            "\n[[chains]]\nid = \"{}\"\nrpc_addr = \"{}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\n\
             gas_price = \"0.001{DENOM}\"\nstore_prefix = \"ibc\"\nmax_gas = 50000000\nmax_msg_num = 100\n\
             max_block_time = \"5s\"\nclear_interval = 50\n\
             # The devnet stores IBC state in Jellyfish Merkle trees; clients of it carry these proof specs.\n\
             proof_specs = [\"jmt\", \"jmt\"]\n",
            chain.id, chain.rpc
        ));
        if let Some(client) = &chain.client {
            text.push_str(&format!("client_ids = [\"{client}\"]\n"));
        }
    }
    if let Some((a, b)) = path {
        text.push_str(&path_text(a, b));
    }
    text
}

/// The `[[connections]]` entry relaying the channel between `a` and `b` both ways.
fn path_text(a: &ChannelEnd, b: &ChannelEnd) -> String {
    format!(
        "\n[[connections]]\nsrc = {{ chain_id = \"{}\", client_id = \"{}\" }}\n\
         dest = {{ chain_id = \"{}\", client_id = \"{}\" }}\n\
         paths = [{{ src_port = \"{TRANSFER_PORT}\", src_channel = \"{}\", dest_port = \"{TRANSFER_PORT}\" }}]\n",
        a.chain, a.client, b.chain, b.client, a.channel
    )
}

fn write_config(path: &Path, text: &str) -> Result<Config, DemoError> {
    std::fs::write(path, text).map_err(write_err(path))?;
    Config::load(path).map_err(|e| DemoError::Config {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn chain_config<'a>(config: &'a Config, id: &str) -> Result<&'a ChainConfig, DemoError> {
    config
        .chains
        .iter()
        .find(|c| c.id.as_str() == id)
        .ok_or_else(|| DemoError::Config {
            path: PathBuf::from("relayd.toml"),
            reason: format!("no chain {id}"),
        })
}

/// Prepares `data_dir` for `devnet` and opens a transfer channel between its chains as an operator would: the
/// relayer keys imported from the chains' key files, then `create connection` and `create channel` (clients from
/// light blocks relayd verified, handshakes finished by relayd's handshake builders). Must run inside an actix
/// System. `admin` goes into the configuration's `[admin] listen_addr`.
pub async fn connect(
    devnet: &Devnet,
    data_dir: &Path,
    admin: Option<SocketAddr>,
) -> Result<Testbed, DemoError> {
    prepare_data_dir(data_dir)?;
    let keys = KeyStore::open(&data_dir.join("keys"))?;
    let mut entries = Vec::new();
    for chain in devnet.chains() {
        let id = chain.chain_id();
        let key_file = data_dir
            .join("chains")
            .join(&id)
            .join("keys")
            .join("relayer.json");
        keys.add(&id, "relayer", "cosmos", KeySource::KeyFile(&key_file))?;
        entries.push(ChainEntry {
            id,
            rpc: chain.rpc_url(),
            client: None,
        });
    }
    let config_path = data_dir.join("relayd.toml");
    let config = write_config(&config_path, &config_text(&entries, admin, None))?;
    let (a_end, b_end) =
        open_transfer_channel(config, data_dir, &entries[0].id, &entries[1].id).await?;
    entries[0].client = Some(a_end.client.clone());
    entries[1].client = Some(b_end.client.clone());
    let config = write_config(
        &config_path,
        &config_text(&entries, admin, Some((&a_end, &b_end))),
    )?;
    Ok(Testbed {
        config,
        config_path,
        data_dir: data_dir.to_owned(),
        a: a_end,
        b: b_end,
    })
}

/// Refuses a data directory holding an earlier setup's state, and creates it.
fn prepare_data_dir(data_dir: &Path) -> Result<(), DemoError> {
    if data_dir.join("state").exists() || data_dir.join("relayd.toml").exists() {
        return Err(DemoError::NotEmpty(data_dir.to_owned()));
    }
    std::fs::create_dir_all(data_dir).map_err(write_err(data_dir))
}

/// Creates clients of each chain on the other, a connection from `a_id` to `b_id` and a transfer channel on it,
/// with relayd's `create` code under `config` (whose data directory is `data_dir`); returns both channel ends.
async fn open_transfer_channel(
    config: Config,
    data_dir: &Path,
    a_id: &str,
    b_id: &str,
) -> Result<(ChannelEnd, ChannelEnd), DemoError> {
    let env = Env::new(config, data_dir.to_owned());
    let a = chain_config(env.config(), a_id)?;
    let b = chain_config(env.config(), b_id)?;
    let channel_err = |e: create::BoxError| DemoError::Channel(e.to_string());
    let connection = create::open_connection(&env, a, b, (None, None), 0)
        .await
        .map_err(channel_err)?;
    let spec = ChannelSpec {
        a_connection: &connection.a_connection,
        a_port: TRANSFER_PORT,
        b_port: TRANSFER_PORT,
        version: ICS20_VERSION,
        ordering: ibc_proto::ibc::core::channel::v1::Order::Unordered,
    };
    let (a_channel, _, b_channel) = create::open_channel(&env, a, &[b], &spec)
        .await
        .map_err(channel_err)?;
    let a_end = ChannelEnd {
        chain: a_id.to_owned(),
        client: connection.a_client,
        connection: connection.a_connection,
        channel: a_channel,
    };
    let b_end = ChannelEnd {
        chain: b_id.to_owned(),
        client: connection.b_client,
        connection: connection.b_connection,
        channel: b_channel,
    };
    Ok((a_end, b_end))
}

/// The genesis account `name` of `chain` (`user1`, `user2`; `relayer` signs relayd's transactions).
pub fn account<'a>(
    chain: &'a RunningChain,
    name: &str,
) -> Result<&'a devnet::genesis::GenesisAccount, DemoError> {
    chain
        .genesis
        .account(name)
        .ok_or_else(|| DemoError::Account {
            chain: chain.chain_id(),
            name: name.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<ChainEntry> {
        ["ibc-0", "ibc-1"]
            .iter()
            .enumerate()
            .map(|(i, id)| ChainEntry {
                id: (*id).to_owned(),
                rpc: format!("http://127.0.0.1:{}", 26657 + 2 * i),
                client: Some("07-tendermint-0".into()),
            })
            .collect()
    }

    fn end(chain: &str, channel: &str) -> ChannelEnd {
        ChannelEnd {
            chain: chain.into(),
            client: "07-tendermint-0".into(),
            connection: "connection-0".into(),
            channel: channel.into(),
        }
    }

    #[test]
    fn the_generated_configuration_is_valid_and_relays_the_channel_both_ways() {
        let admin: SocketAddr = "127.0.0.1:3999".parse().unwrap();
        let (a, b) = (end("ibc-0", "channel-0"), end("ibc-1", "channel-0"));
        let text = config_text(&entries(), Some(admin), Some((&a, &b)));
        let config = Config::parse(&text, Path::new("relayd.toml")).unwrap();
        assert_eq!(config.admin.listen_addr, admin);
        assert_eq!(config.chains.len(), 2);
        assert_eq!(config.path_count(), 1);
        let conn = &config.connections.as_ref().unwrap()[0];
        let path = &conn.paths.as_ref().unwrap()[0];
        assert_eq!(path.direction, relayd_config::Direction::Bidirectional);
        assert_eq!(
            path.src_channel.as_ref().map(|c| c.as_str()),
            Some("channel-0")
        );
        assert_eq!(
            config.global.data_dir.as_deref(),
            Some(Path::new(".")),
            "state and keys live next to the file"
        );
    }

    #[test]
    fn without_a_channel_or_admin_address_the_configuration_still_parses() {
        let mut chains = entries();
        for c in &mut chains {
            c.client = None;
        }
        let config =
            Config::parse(&config_text(&chains, None, None), Path::new("relayd.toml")).unwrap();
        assert!(config.connections.is_none());
        assert!(config.chains.iter().all(|c| c.client_ids.is_empty()));
    }
}
