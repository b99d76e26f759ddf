//! `relayd create client|connection|channel`: start new IBC objects between two configured chains. A client is
//! created from a header relayd verified: a Tendermint client of a Cosmos chain on a Cosmos or NEAR chain, or a
//! `12-near` client of a NEAR chain on a Cosmos chain (`create/near.rs`). A connection or channel, between two
//! Cosmos chains or a Cosmos and a NEAR chain (initiated on either), is started with its INIT datagram (through
//! the NEAR contract's `deliver` on a NEAR end) and then finished by the same handshake builders the service runs
//! (in a short-lived actor system of the chains, so it works whether or not the service is running).

mod near;

use std::process::ExitCode;
use std::time::Duration;

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::channel::v1 as chan;
use ibc_proto::ibc::core::commitment::v1::MerklePrefix;
use ibc_proto::ibc::core::connection::v1 as conn;
use ibc_proto::ibc::lightclients::tendermint::v1::ClientState;
use prost::Message;
use relayd_actors::chain::cosmos::client::{create_client_msg, ClientParams};
use relayd_actors::chain::cosmos::endpoint::CosmosEndpoint;
use relayd_actors::chain::cosmos::light_client::{refresh, verify_signed_header, TrustOptions};
use relayd_actors::chain::cosmos::rpc::CosmosRpc;
use relayd_actors::chain::cosmos::tx::{TxOutcome, TxSubmitter};
use relayd_actors::chain::endpoint::{path, ChainEndpoint, QueryHeight};
use relayd_actors::chain::near::header::NEAR_CLIENT_STATE_TYPE_URL;
use relayd_actors::chain::proof::spec_for;
use relayd_actors::keys::KeyStore;
use relayd_actors::store::StateStore;
use relayd_config::{ChainConfig, Config, ProofSpecName};
use relayd_messages::{
    ChainId, ChannelId, ConnectionId, CorrelationId, HandshakeState, PortId, RelayHandshake,
    RelayObject, SubscribeLifecycle,
};
use serde_json::json;
use tendermint_light_client_verifier::types::TrustThreshold;
use tokio::sync::mpsc;

use crate::cli::{
    Cli, CreateChannelArgs, CreateClientArgs, CreateConnectionArgs, EXIT_CONFIG, EXIT_RUNTIME,
};
use crate::commands::config::load;
use crate::commands::tx::tx_config;
use crate::commands::{configured_chain, data_dir, fail};

pub(crate) type BoxError = Box<dyn std::error::Error>;

/// What the create commands share: the configuration and where its keys and state live.
pub(crate) struct Env {
    config: Config,
    dir: std::path::PathBuf,
}

impl Env {
    /// An environment over a configuration already loaded, with `dir` as its data directory (the demo's).
    #[cfg(feature = "demo")]
    pub(crate) fn new(config: Config, dir: std::path::PathBuf) -> Self {
        Self { config, dir }
    }

    /// The configuration.
    #[cfg(feature = "demo")]
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    fn load(cli: &Cli, json: bool) -> Result<Self, ExitCode> {
        let path = cli.config_path();
        let config = load(&path, json)?;
        let dir = data_dir(&config, &path);
        Ok(Self { config, dir })
    }

    /// A configured chain of any type (the ends of a client).
    fn any_chain(&self, id: &str) -> Result<&ChainConfig, ExitCode> {
        let chain = configured_chain(&self.config, id)?;
        if chain.cosmos().is_none() && chain.near().is_none() {
            return Err(fail(
                &format!("{id}: incomplete chain entry (run `relayd config validate`)"),
                EXIT_CONFIG,
            ));
        }
        Ok(chain)
    }

    async fn submitter(&self, chain: &ChainConfig) -> Result<(TxSubmitter, String), BoxError> {
        let cosmos = chain.cosmos().ok_or("not a cosmos chain")?;
        let keys = KeyStore::open(&self.dir.join("keys"))?;
        let (info, key) = keys.signing_key(chain.id.as_str())?;
        let rpc = CosmosRpc::connect_configured(chain).await?;
        let tx = TxSubmitter::new(
            rpc,
            tx_config(&self.config, chain, &cosmos),
            key,
            info.address.clone(),
        );
        Ok((tx, info.address))
    }

    async fn submit(&self, chain: &ChainConfig, msg: Any) -> Result<TxOutcome, BoxError> {
        let (mut tx, _) = self.submitter(chain).await?;
        Ok(tx.submit_batch(&[msg]).await?)
    }

    async fn signer(&self, chain: &ChainConfig) -> Result<String, BoxError> {
        if let Some(near) = chain.near() {
            return Ok(near.signer_account);
        }
        let keys = KeyStore::open(&self.dir.join("keys"))?;
        Ok(keys.signing_key(chain.id.as_str())?.0.address)
    }
}

fn attr(outcome: &TxOutcome, kind: &str, key: &str) -> Option<String> {
    outcome
        .events
        .iter()
        .filter(|e| e.kind == kind)
        .flat_map(|e| e.attributes.iter())
        .find(|a| a.key_bytes() == key.as_bytes())
        .and_then(|a| a.value_str().ok().map(str::to_owned))
}

/// Creates a client of `reference` on `host`; returns its id. A NEAR chain hosts Tendermint clients of Cosmos
/// chains; a Cosmos chain hosts clients of either.
pub(crate) async fn create_client(
    env: &Env,
    host: &ChainConfig,
    reference: &ChainConfig,
) -> Result<String, BoxError> {
    if reference.near().is_some() {
        if host.cosmos().is_none() {
            return Err(format!(
                "{}: a client of NEAR chain {} can be hosted on a Cosmos chain only",
                host.id, reference.id
            )
            .into());
        }
        return near::create_near_client(env, host, reference).await;
    }
    let signer = env.signer(host).await?;
    let msg = tendermint_client_msg(env, host, reference, &signer).await?;
    if host.near().is_some() {
        return near::deliver_create_client(host, msg).await;
    }
    let outcome = env.submit(host, msg).await?;
    attr(&outcome, "create_client", "client_id")
        .ok_or_else(|| format!("{}: create_client event without a client id", host.id).into())
}

/// `MsgCreateClient` of a Tendermint client of Cosmos chain `reference` for `host`, signed by `signer`.
async fn tendermint_client_msg(
    env: &Env,
    host: &ChainConfig,
    reference: &ChainConfig,
    signer: &str,
) -> Result<Any, BoxError> {
    let id = reference.id.as_str();
    let rpc = CosmosRpc::connect_configured(reference).await?;
    // The root of trust: relayd's own trusted state moved to the latest block by skipping verification when
    // `light init` was run and the data directory is free; otherwise the latest block, checked against its own
    // commit (trust on first use, said so on stderr).
    let trusted = match StateStore::open(&env.dir.join("state")) {
        Ok(store) if store.trusted(id)?.is_some() => {
            let trust = TrustOptions {
                trust_threshold: TrustThreshold::new(
                    reference.trust_threshold.numerator,
                    reference.trust_threshold.denominator,
                )?,
                trusting_period: reference.trusting_period.get(),
                clock_drift: reference.clock_drift.0,
            };
            Some(refresh(&rpc, &store, &trust).await?)
        }
        _ => None,
    };
    let root = match trusted {
        Some(block) => block,
        None => {
            let (_, latest) = rpc.status().await?;
            let block = rpc
                .fetch_light_block(latest.saturating_sub(1).max(1))
                .await?;
            verify_signed_header(id, &block)?;
            eprintln!(
                "relayd: {id}: no trusted state (`relayd light init`); the client's root of trust is block {} as the node serves it",
                block.signed_header.header.height
            );
            block
        }
    };
    let unbonding = rpc.unbonding_period().await?;
    let trusting = reference.trusting_period.get();
    if trusting >= unbonding {
        return Err(format!(
            "{id}: trusting_period {trusting:?} must be below the chain's unbonding period {unbonding:?}"
        )
        .into());
    }
    let specs = reference
        .cosmos()
        .and_then(|c| c.proof_specs)
        .unwrap_or_else(|| vec![ProofSpecName::Iavl, ProofSpecName::Tendermint]);
    let params = ClientParams {
        trust_level: (
            reference.trust_threshold.numerator,
            reference.trust_threshold.denominator,
        ),
        trusting_period: trusting,
        unbonding_period: unbonding,
        max_clock_drift: reference.clock_drift.0 + host.max_block_time.get(),
        proof_specs: specs.into_iter().map(spec_for).collect(),
    };
    Ok(create_client_msg(&root, &params, signer))
}

/// Runs the chains' actors until the handshake of `object` (its initiating end) is finished; returns the
/// counterparty's chain and id. `chains` holds the initiating chain and the candidates for its counterparty (the
/// handshake builder finds which one it is).
async fn finish_handshake(
    env: &Env,
    chains: &[&ChainConfig],
    object: RelayObject,
) -> Result<(String, String), BoxError> {
    let mut config = env.config.clone();
    config
        .chains
        .retain(|c| chains.iter().any(|k| k.id == c.id));
    config.connections = None;
    // A scratch state database: the handshake needs no history, and the service may hold the real one.
    let scratch = tempfile::tempdir()?;
    let store = StateStore::open(&scratch.path().join("state"))?;
    let near_state = near::near_state(&env.dir, chains)?;
    if let Some(real) = &near_state {
        near::copy_near_state(real, &store, chains)?;
    }
    let relay = relayd_actors::system::start(&config, store.clone(), env.dir.join("keys")).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    relay
        .coordinator
        .send(SubscribeLifecycle(crate::commands::lifecycle_channel(tx)))
        .await?;
    let bound = config.global.timeout.get().max(Duration::from_secs(30)) * 4;
    let outcome = tokio::time::timeout(bound, async {
        // The chains' actors start in the background; a request is refused until their queriers answer.
        let mut attempts = 0;
        loop {
            let request = RelayHandshake {
                correlation: CorrelationId::fresh(),
                object: object.clone(),
                state: HandshakeState::OpenInit,
            };
            match relay.coordinator.send(request).await? {
                Ok(()) => break,
                Err(e) if attempts < 50 && e.is_retryable() => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err::<(String, String), BoxError>(e.into()),
            }
        }
        while let Some(change) = rx.recv().await {
            if change.object != object || !change.is_final {
                continue;
            }
            return match change.error {
                Some(e) => Err(e.into()),
                // "<state>:<counterparty chain>/<counterparty id>"
                None => change
                    .state
                    .split_once(':')
                    .and_then(|(_, end)| end.rsplit_once('/'))
                    .map(|(chain, id)| (chain.to_owned(), id.to_owned()))
                    .ok_or_else(|| format!("unexpected final state {}", change.state).into()),
            };
        }
        Err("the relay system stopped".into())
    })
    .await;
    relay.shutdown().await;
    if let Some(real) = &near_state {
        near::copy_near_state(&store, real, chains)?;
        real.flush()?;
    }
    match outcome {
        Ok(result) => result,
        Err(_) => Err(format!("the handshake did not finish within {bound:?}").into()),
    }
}

fn run<T>(f: impl std::future::Future<Output = Result<T, BoxError>>) -> Result<T, ExitCode> {
    actix_rt::System::new()
        .block_on(f)
        .map_err(|e| fail(&e.to_string(), EXIT_RUNTIME))
}

/// `relayd create client`.
pub fn client(cli: &Cli, args: &CreateClientArgs) -> ExitCode {
    let go = || -> Result<ExitCode, ExitCode> {
        let env = Env::load(cli, args.out.json)?;
        let host = env.any_chain(&args.host_chain)?;
        let reference = env.any_chain(&args.reference_chain)?;
        let id = run(create_client(&env, host, reference))?;
        if args.out.json {
            println!(
                "{}",
                json!({"host_chain": host.id.as_str(), "reference_chain": reference.id.as_str(), "client_id": id})
            );
        } else {
            println!("{}: created {id}, a client of {}", host.id, reference.id);
        }
        Ok(ExitCode::SUCCESS)
    };
    go().unwrap_or_else(|code| code)
}

/// A connection opened on both ends, and the clients it runs over.
pub(crate) struct OpenedConnection {
    /// The client of b on a.
    pub a_client: String,
    /// The client of a on b.
    pub b_client: String,
    /// The connection on a.
    pub a_connection: String,
    /// The connection on b.
    pub b_connection: String,
}

/// Opens a connection from `a` to `b` (creating the clients not given) and finishes its handshake.
pub(crate) async fn open_connection(
    env: &Env,
    a: &ChainConfig,
    b: &ChainConfig,
    clients: (Option<String>, Option<String>),
    delay_period_secs: u64,
) -> Result<OpenedConnection, BoxError> {
    let a_client = match clients.0 {
        Some(c) => c,
        None => create_client(env, a, b).await?,
    };
    let b_client = match clients.1 {
        Some(c) => c,
        None => create_client(env, b, a).await?,
    };
    let b_prefix = match b.cosmos() {
        Some(c) => c.store_prefix.into_bytes(),
        None => near::commitment_prefix(b).ok_or("incomplete chain entry")?,
    };
    let init = conn::MsgConnectionOpenInit {
        client_id: a_client.clone(),
        counterparty: Some(conn::Counterparty {
            client_id: b_client.clone(),
            connection_id: String::new(),
            prefix: Some(MerklePrefix {
                key_prefix: b_prefix,
            }),
        }),
        version: None,
        delay_period: delay_period_secs * 1_000_000_000,
        signer: env.signer(a).await?,
    };
    let any = Any {
        type_url: "/ibc.core.connection.v1.MsgConnectionOpenInit".into(),
        value: init.encode_to_vec(),
    };
    let a_conn = if a.near().is_some() {
        near::deliver_connection_init(a, any).await?
    } else {
        let outcome = env.submit(a, any).await?;
        attr(&outcome, "connection_open_init", "connection_id")
            .ok_or("connection_open_init event without a connection id")?
    };
    eprintln!(
        "relayd: {}: {a_conn} initialised; finishing the handshake",
        a.id
    );
    let object = RelayObject::Connection {
        chain: a.id.clone(),
        connection: ConnectionId::new(a_conn.clone())?,
    };
    let (_, b_conn) = finish_handshake(env, &[a, b], object).await?;
    Ok(OpenedConnection {
        a_client,
        b_client,
        a_connection: a_conn,
        b_connection: b_conn,
    })
}

/// `relayd create connection`.
pub fn connection(cli: &Cli, args: &CreateConnectionArgs) -> ExitCode {
    let go = || -> Result<ExitCode, ExitCode> {
        let env = Env::load(cli, args.out.json)?;
        let a = env.any_chain(&args.a_chain)?;
        let b = env.any_chain(&args.b_chain)?;
        let opened = run(open_connection(
            &env,
            a,
            b,
            (args.a_client.clone(), args.b_client.clone()),
            args.delay_period_secs,
        ))?;
        let OpenedConnection {
            a_client,
            b_client,
            a_connection: a_conn,
            b_connection: b_conn,
        } = opened;
        if args.out.json {
            println!(
                "{}",
                json!({"a": {"chain": a.id.as_str(), "client_id": a_client, "connection_id": a_conn},
                       "b": {"chain": b.id.as_str(), "client_id": b_client, "connection_id": b_conn}})
            );
        } else {
            println!(
                "open: {}/{a_conn} (client {a_client}) <-> {}/{b_conn} (client {b_client})",
                a.id, b.id
            );
        }
        Ok(ExitCode::SUCCESS)
    };
    go().unwrap_or_else(|code| code)
}

/// The chain a connection's client tracks, when the client names it (a Tendermint client); `None` for a `12-near`
/// client, whose chain the handshake builder finds among the configured NEAR chains.
async fn counterparty_chain(
    a: &ChainConfig,
    connection: &str,
) -> Result<Option<ChainId>, BoxError> {
    let raw = match a.cosmos() {
        Some(cosmos) => {
            let rpc = CosmosRpc::connect_configured(a).await?;
            let endpoint = CosmosEndpoint::new(rpc, &cosmos.store_prefix);
            let client = endpoint.connection_client(connection).await?;
            endpoint
                .query_ibc(&path::client_state(&client), QueryHeight::Latest, false)
                .await?
                .value
        }
        None => near::connection_client_state(a, connection).await?,
    };
    let any = Any::decode(raw.as_slice())?;
    if any.type_url == NEAR_CLIENT_STATE_TYPE_URL {
        return Ok(None);
    }
    let state = ClientState::decode(any.value.as_slice())?;
    Ok(Some(ChainId::new(state.chain_id)?))
}

/// A channel to open: its initiating end on a, and what it asks of the counterparty.
pub(crate) struct ChannelSpec<'a> {
    /// The open connection on a.
    pub a_connection: &'a str,
    /// The port on a.
    pub a_port: &'a str,
    /// The port on b.
    pub b_port: &'a str,
    /// The application version.
    pub version: &'a str,
    /// Ordered or unordered.
    pub ordering: chan::Order,
}

/// Opens a channel from `a` to one of `candidates` (the one its connection's client tracks) and finishes its
/// handshake; returns (channel on a, counterparty chain, channel there).
pub(crate) async fn open_channel(
    env: &Env,
    a: &ChainConfig,
    candidates: &[&ChainConfig],
    spec: &ChannelSpec<'_>,
) -> Result<(String, String, String), BoxError> {
    let init = chan::MsgChannelOpenInit {
        port_id: spec.a_port.to_owned(),
        channel: Some(chan::Channel {
            state: chan::State::Init as i32,
            ordering: spec.ordering as i32,
            counterparty: Some(chan::Counterparty {
                port_id: spec.b_port.to_owned(),
                channel_id: String::new(),
            }),
            connection_hops: vec![spec.a_connection.to_owned()],
            version: spec.version.to_owned(),
            upgrade_sequence: 0,
        }),
        signer: env.signer(a).await?,
    };
    let any = Any {
        type_url: "/ibc.core.channel.v1.MsgChannelOpenInit".into(),
        value: init.encode_to_vec(),
    };
    let a_chan = if a.near().is_some() {
        near::deliver_channel_init(a, any).await?
    } else {
        let outcome = env.submit(a, any).await?;
        attr(&outcome, "channel_open_init", "channel_id")
            .ok_or("channel_open_init event without a channel id")?
    };
    eprintln!(
        "relayd: {}: {}/{a_chan} initialised; finishing the handshake",
        a.id, spec.a_port
    );
    let object = RelayObject::Channel {
        chain: a.id.clone(),
        port: PortId::new(spec.a_port.to_owned())?,
        channel: ChannelId::new(a_chan.clone())?,
    };
    let mut chains = vec![a];
    chains.extend(candidates.iter().copied().filter(|c| c.id != a.id));
    let (b_chain, b_chan) = finish_handshake(env, &chains, object).await?;
    Ok((a_chan, b_chain, b_chan))
}

/// `relayd create channel`.
pub fn channel(cli: &Cli, args: &CreateChannelArgs) -> ExitCode {
    let go = || -> Result<ExitCode, ExitCode> {
        let env = Env::load(cli, args.out.json)?;
        let a = env.any_chain(&args.a_chain)?;
        let candidates: Vec<&ChainConfig> = match run(counterparty_chain(a, &args.a_connection))? {
            Some(b) => vec![env.any_chain(b.as_str())?],
            // A NEAR client: the handshake builder checks which configured NEAR chain it tracks.
            None => env
                .config
                .chains
                .iter()
                .filter(|c| c.near().is_some())
                .collect(),
        };
        let b_port = args.b_port.clone().unwrap_or_else(|| args.a_port.clone());
        let version = match (&args.channel_version, args.a_port.as_str()) {
            (Some(v), _) => v.clone(),
            (None, "transfer") => "ics20-1".to_owned(),
            (None, port) => {
                return Err(fail(
                    &format!("--channel-version is needed for port {port}"),
                    EXIT_CONFIG,
                ))
            }
        };
        let ordering = if args.ordered {
            chan::Order::Ordered
        } else {
            chan::Order::Unordered
        };
        let spec = ChannelSpec {
            a_connection: &args.a_connection,
            a_port: &args.a_port,
            b_port: &b_port,
            version: &version,
            ordering,
        };
        let (a_chan, b_chain, b_chan) = run(open_channel(&env, a, &candidates, &spec))?;
        if args.out.json {
            println!(
                "{}",
                json!({"a": {"chain": a.id.as_str(), "port": args.a_port, "channel_id": a_chan},
                       "b": {"chain": b_chain, "port": b_port, "channel_id": b_chan},
                       "version": version, "ordered": args.ordered})
            );
        } else {
            println!(
                "open: {}/{}/{a_chan} <-> {b_chain}/{b_port}/{b_chan} ({version})",
                a.id, args.a_port
            );
        }
        Ok(ExitCode::SUCCESS)
    };
    go().unwrap_or_else(|code| code)
}
