//! The demo between a Cosmos chain and NEAR: a Cosmos devnet chain (`ibc-0`) and a NEAR devnet in the process,
//! relayd's configuration of both (the NEAR chain with `trust_on_first_use`, a development-only shortcut the demo
//! announces loudly), a transfer channel opened by relayd's `create` code, and ICS-20 traffic from a NEAR user
//! account through the IBC contract's `deliver`, as `relayd tx transfer` sends it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use devnet::near::{NearAccount, NearOptions, RunningNear};
use devnet::ChainOptions;
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::applications::transfer::v1::MsgTransfer;
use prost::Message;
use relayd_actors::keys::{KeySource, KeyStore};
use relayd_config::{ChainConfig, Config};

use super::{
    chain_config, config_text, devnet_runtime, open_transfer_channel, path_text, prepare_data_dir,
    write_config, write_err, ChainEntry, ChannelEnd, DemoError, Devnet, Testbed, TRANSFER_PORT,
};

/// Blocks per NEAR epoch: long enough that relayd's NEAR light client verifies several blocks of each epoch, short
/// enough that the demo crosses epoch changes within minutes.
const NEAR_EPOCH_LENGTH: u64 = 20;
/// The height both devnets reach before the demo goes on: clients are created from a block and its successors.
const FIRST_HEIGHT: u64 = 3;
/// The NEAR-native token the demo's NEAR account sends (funded at the devnet's genesis).
pub const NEAR_DENOM: &str = "usdc.devnet";
/// The genesis account that sends and receives the demo's transfers on each chain (relayd signs with `relayer`).
pub const USER: &str = "user1";
/// Tokens per NEAR transfer.
const AMOUNT: u128 = 1;
/// How long a demo packet may wait for relaying before it times out on its destination.
const PACKET_TIMEOUT: Duration = Duration::from_secs(600);

/// What `relayd demo --near` says, on the terminal and in the log, about the trust it gives the NEAR devnet.
pub const TRUST_ON_FIRST_USE_WARNING: &str = "TRUST ON FIRST USE: this demo sets trust_on_first_use = true on the \
NEAR chain, so relayd trusts the NEAR devnet's first light-client head WITHOUT verifying it (no `relayd light \
init`). That is for development only: never set it for a real NEAR network.";

impl Devnet {
    /// Starts a Cosmos devnet chain (`ibc-0`) and a NEAR devnet on free loopback ports, both producing a block every
    /// `block_time` (100 ms or more). Their homes (`chain.json` or `near.json`, and their genesis accounts' key
    /// files) are written under `home/ibc-0` and `home/<NEAR chain id>`.
    pub async fn start_near(block_time: Duration, home: &Path) -> Result<Self, DemoError> {
        Self::start_near_keys(block_time, home, 1).await
    }

    /// [`Devnet::start_near`] with `relayer_keys` full-access keys on the NEAR relayer account (the further ones'
    /// files are `keys/relayer.devnet.keyI.json` beside the account's own).
    pub async fn start_near_keys(
        block_time: Duration,
        home: &Path,
        relayer_keys: usize,
    ) -> Result<Self, DemoError> {
        let runtime = devnet_runtime()?;
        let mut template = ChainOptions::local("ibc-0", block_time);
        template.home = Some(home.to_owned());
        let home = home.to_owned();
        let (chains, near) = runtime
            .spawn(async move {
                let chains = devnet::start_chains(1, &template)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut options = NearOptions::local(block_time);
                options.genesis.epoch_length = NEAR_EPOCH_LENGTH;
                options.genesis.relayer_keys = relayer_keys;
                options.home = Some(home.join(&options.genesis.chain_id));
                let near = devnet::near::start(options)
                    .await
                    .map_err(|e| e.to_string())?;
                for chain in &chains {
                    chain.wait_for_height(FIRST_HEIGHT).await;
                }
                near.wait_for_height(FIRST_HEIGHT).await;
                Ok::<_, String>((chains, near))
            })
            .await
            .map_err(|e| DemoError::Devnet(e.to_string()))?
            .map_err(DemoError::Devnet)?;
        Ok(Self {
            runtime: Some(runtime),
            chains,
            near: Some(near),
        })
    }

    /// The NEAR devnet, when started with [`Devnet::start_near`].
    pub fn near(&self) -> Option<&RunningNear> {
        self.near.as_ref()
    }
}

/// The key file (near-cli credentials) the NEAR devnet wrote for `account` under `data_dir/chains`, as an absolute
/// path: the configuration names it and relayd may run from another directory.
fn near_key_file(data_dir: &Path, near: &RunningNear, account: &str) -> Result<PathBuf, DemoError> {
    let file = data_dir
        .join("chains")
        .join(near.chain_id())
        .join("keys")
        .join(format!("{account}.json"));
    std::fs::canonicalize(&file).map_err(write_err(&file))
}

/// A TOML literal string of `path`; a path a literal string cannot hold is refused rather than escaped.
fn toml_path(path: &Path) -> Result<String, DemoError> {
    let text = path.display().to_string();
    if text.contains('\'') || text.contains('\n') || text.contains('\r') {
        return Err(DemoError::Config {
            path: path.to_owned(),
            reason: "the demo cannot name a key file whose path holds a quote or a line break"
                .into(),
        });
    }
    Ok(format!("'{text}'"))
}

/// What the configuration says about the NEAR devnet.
struct NearEntry {
    id: String,
    rpc: String,
    contract: String,
    signer: String,
    /// A TOML string already (see [`toml_path`]).
    key_file: String,
}

impl NearEntry {
    fn of(near: &RunningNear, key_file: String) -> Self {
        Self {
            id: near.chain_id().to_owned(),
            rpc: near.rpc_url(),
            contract: near.genesis.ibc.account_id.to_string(),
            signer: near.genesis.relayer.account_id.to_string(),
            key_file,
        }
    }

    /// The `[[chains]]` entry, with the client relayd relays through once there is one.
    fn text(&self, client: Option<&str>) -> String {
        let mut text = format!(
            "\n[[chains]]\nid = \"{}\"\ntype = \"near\"\nrpc_addr = \"{}\"\ncontract_account = \"{}\"\n\
             signer_account = \"{}\"\nkey_file = {}\nmax_block_time = \"5s\"\ntrusting_period = \"1h\"\n\
             # DEVELOPMENT ONLY: the NEAR devnet's first light-client head is trusted unverified (no `relayd light init`).\n\
             trust_on_first_use = true\n",
            self.id, self.rpc, self.contract, self.signer, self.key_file
        );
        if let Some(client) = client {
            text.push_str(&format!("client_ids = [\"{client}\"]\n"));
        }
        text
    }
}

/// The configuration text of the demo between `cosmos` and `near`, relaying the channel between `a` (on the
/// Cosmos chain) and `b` (on NEAR) once there is one.
fn near_config_text(
    cosmos: &ChainEntry,
    near: &NearEntry,
    admin: Option<SocketAddr>,
    path: Option<(&ChannelEnd, &ChannelEnd)>,
) -> String {
    let mut text = config_text(std::slice::from_ref(cosmos), admin, None);
    text.push_str(&near.text(path.map(|(_, b)| b.client.as_str())));
    if let Some((a, b)) = path {
        text.push_str(&path_text(a, b));
    }
    text
}

/// Prepares `data_dir` for `devnet` (started with [`Devnet::start_near`]) and opens a transfer channel between
/// `ibc-0` and NEAR as an operator would: ibc-0's relayer key imported, the NEAR relayer's key file named in the
/// configuration, then `create connection` and `create channel` initiated on ibc-0. The NEAR chain's light client
/// trusts the devnet's first head (`trust_on_first_use`). Must run inside an actix System.
pub async fn connect_near(
    devnet: &Devnet,
    data_dir: &Path,
    admin: Option<SocketAddr>,
) -> Result<Testbed, DemoError> {
    let (Some(cosmos), Some(near)) = (devnet.chains().first(), devnet.near()) else {
        return Err(DemoError::Devnet(
            "the Cosmos chain or the NEAR devnet is not running".into(),
        ));
    };
    prepare_data_dir(data_dir)?;
    let keys = KeyStore::open(&data_dir.join("keys"))?;
    let cosmos_id = cosmos.chain_id();
    let key_file = data_dir
        .join("chains")
        .join(&cosmos_id)
        .join("keys")
        .join("relayer.json");
    keys.add(
        &cosmos_id,
        "relayer",
        "cosmos",
        KeySource::KeyFile(&key_file),
    )?;
    let near_key = toml_path(&near_key_file(
        data_dir,
        near,
        near.genesis.relayer.account_id.as_str(),
    )?)?;
    let near_entry = NearEntry::of(near, near_key);
    let mut cosmos_entry = ChainEntry {
        id: cosmos_id,
        rpc: cosmos.rpc_url(),
        client: None,
    };
    let config_path = data_dir.join("relayd.toml");
    let config = write_config(
        &config_path,
        &near_config_text(&cosmos_entry, &near_entry, admin, None),
    )?;
    let (a_end, b_end) =
        open_transfer_channel(config, data_dir, &cosmos_entry.id, &near_entry.id).await?;
    cosmos_entry.client = Some(a_end.client.clone());
    let config = write_config(
        &config_path,
        &near_config_text(&cosmos_entry, &near_entry, admin, Some((&a_end, &b_end))),
    )?;
    Ok(Testbed {
        config,
        config_path,
        data_dir: data_dir.to_owned(),
        a: a_end,
        b: b_end,
    })
}

/// The NEAR devnet's genesis user account `name` (`user1` is `user1.devnet`).
pub fn near_account<'a>(near: &'a RunningNear, name: &str) -> Result<&'a NearAccount, DemoError> {
    near.genesis
        .accounts
        .iter()
        .find(|a| {
            a.account_id
                .as_str()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('.'))
        })
        .ok_or_else(|| DemoError::Account {
            chain: near.chain_id().to_owned(),
            name: name.to_owned(),
        })
}

/// Sends transfers of [`NEAR_DENOM`] from a NEAR account over one channel, through the IBC contract's `deliver`,
/// by the code `relayd tx transfer` sends with from a NEAR chain.
pub struct NearSender {
    chain: ChainConfig,
    channel: String,
    sender: String,
    receiver: String,
}

impl NearSender {
    /// A sender signing as the NEAR devnet's genesis account `account` (`user1` is `user1.devnet`; its key file is
    /// under `data_dir/chains`) on the configured NEAR chain, to `receiver` over `channel`.
    pub fn new(
        config: &Config,
        data_dir: &Path,
        near: &RunningNear,
        account: &str,
        channel: &str,
        receiver: &str,
    ) -> Result<Self, DemoError> {
        let mut chain = chain_config(config, near.chain_id())?.clone();
        let sender = near_account(near, account)?.account_id.to_string();
        // The demo's account signs instead of relayd's, so the two never compete for one access key's nonces.
        chain.signer_account = Some(sender.clone());
        chain.key_file = Some(near_key_file(data_dir, near, &sender)?);
        chain.key_files = None;
        // Checked now (the key file, its account), so a bad setup fails before traffic starts.
        relayd_actors::chain::near::from_config(&chain).map_err(|e| DemoError::Transfer {
            chain: near.chain_id().to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            chain,
            channel: channel.to_owned(),
            sender,
            receiver: receiver.to_owned(),
        })
    }

    /// The sending chain.
    pub fn chain(&self) -> &str {
        self.chain.id.as_str()
    }

    /// The sending channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Sends `count` transfers (in as few `deliver` calls as gas and the chain's limits allow) and waits for their
    /// outcomes; returns the packets' sequences. A failed send reports no sequences: the packets of calls that did
    /// execute are then relayed all the same, but not counted.
    pub async fn send(&mut self, count: usize) -> Result<Vec<u64>, (Vec<u64>, DemoError)> {
        let msg = MsgTransfer {
            source_port: TRANSFER_PORT.to_owned(),
            source_channel: self.channel.clone(),
            token: Some(ibc_proto::cosmos::base::v1beta1::Coin {
                denom: NEAR_DENOM.to_owned(),
                amount: AMOUNT.to_string(),
            }),
            sender: self.sender.clone(),
            receiver: self.receiver.clone(),
            timeout_height: None,
            timeout_timestamp: super::traffic::now_ns() + PACKET_TIMEOUT.as_nanos() as u64,
            memo: String::new(),
        };
        let any = Any {
            type_url: "/ibc.applications.transfer.v1.MsgTransfer".into(),
            value: msg.encode_to_vec(),
        };
        crate::commands::tx::near::transfer(
            &self.chain,
            vec![any; count],
            TRANSFER_PORT,
            &self.channel,
        )
        .await
        .map(|sent| sent.sequences)
        .map_err(|e| {
            (
                Vec::new(),
                DemoError::Transfer {
                    chain: self.chain.id.to_string(),
                    reason: e.to_string(),
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> (ChainEntry, NearEntry) {
        (
            ChainEntry {
                id: "ibc-0".into(),
                rpc: "http://127.0.0.1:26657".into(),
                client: Some("12-near-0".into()),
            },
            NearEntry {
                id: "near-devnet".into(),
                rpc: "http://127.0.0.1:3030".into(),
                contract: "ibc.devnet".into(),
                signer: "relayer.devnet".into(),
                key_file: toml_path(Path::new(
                    "/tmp/demo/chains/near-devnet/keys/relayer.devnet.json",
                ))
                .unwrap(),
            },
        )
    }

    fn end(chain: &str, client: &str) -> ChannelEnd {
        ChannelEnd {
            chain: chain.into(),
            client: client.into(),
            connection: "connection-0".into(),
            channel: "channel-0".into(),
        }
    }

    #[test]
    fn the_near_configuration_is_valid_trusts_on_first_use_and_relays_the_channel_both_ways() {
        let (cosmos, near) = entries();
        let (a, b) = (
            end("ibc-0", "12-near-0"),
            end("near-devnet", "07-tendermint-0"),
        );
        let text = near_config_text(&cosmos, &near, None, Some((&a, &b)));
        let config = Config::parse(&text, Path::new("relayd.toml")).unwrap();
        assert_eq!(config.chains.len(), 2);
        assert_eq!(config.path_count(), 1);
        let chain = chain_config(&config, "near-devnet").unwrap();
        let settings = chain.near().unwrap();
        assert!(settings.trust_on_first_use);
        assert_eq!(settings.signer_account, "relayer.devnet");
        assert_eq!(
            settings.key_file,
            Path::new("/tmp/demo/chains/near-devnet/keys/relayer.devnet.json")
        );
        assert_eq!(
            chain
                .client_ids
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            ["07-tendermint-0"]
        );
        // Before the channel exists: no clients, no path, still valid.
        let cosmos = ChainEntry {
            client: None,
            ..cosmos
        };
        let config = Config::parse(
            &near_config_text(&cosmos, &near, None, None),
            Path::new("relayd.toml"),
        )
        .unwrap();
        assert!(config.connections.is_none());
        assert!(config.chains.iter().all(|c| c.client_ids.is_empty()));
    }

    #[test]
    fn key_file_paths_are_toml_literal_strings_or_refused() {
        assert_eq!(
            toml_path(Path::new("/tmp/a b/keys/relayer.devnet.json")).unwrap(),
            "'/tmp/a b/keys/relayer.devnet.json'"
        );
        assert!(toml_path(Path::new("/tmp/it's/k.json")).is_err());
    }
}
