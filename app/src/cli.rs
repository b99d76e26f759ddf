//! The command tree, parsed with clap, and the mapping from outcomes to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use relayd_config::values::PositiveDuration;

use crate::commands;

/// Exit code for a configuration that cannot be read or is invalid; distinct from runtime failures so
/// service managers and scripts can tell "fix the file" from "try again".
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while running.
pub const EXIT_RUNTIME: u8 = 1;

/// An IBC relayer between Cosmos SDK / CometBFT chains and NEAR.
#[derive(Debug, Parser)]
#[command(name = "relayd", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ~/.relayd/config.toml]
    #[arg(short, long, global = true, env = "RELAYD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Minimum log level; overrides `[global] log_level`
    #[arg(long, global = true, value_enum)]
    pub log_level: Option<LogLevelArg>,

    /// Log line format; overrides `[global] log_format`
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the relayer service until SIGINT or SIGTERM.
    Start,
    /// Manage the signing keys of the configured chains.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the light clients relayd runs for each chain.
    #[command(subcommand)]
    Light(LightCommand),
    /// Query IBC state on a chain.
    #[command(subcommand)]
    Query(QueryGroup),
    /// Send transactions.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Create clients, connections and channels between configured chains.
    #[command(subcommand)]
    Create(CreateCommand),
    /// Follow packets.
    #[command(subcommand)]
    Packet(PacketCommand),
    /// Relay pending work now.
    #[command(subcommand)]
    Clear(ClearCommand),
    /// Start two local devnet chains, open a transfer channel between them with relayd and relay continuous
    /// ICS-20 traffic both ways, with a live summary and the admin API; needs no configuration or network.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Print a shell completion script, e.g. `relayd completions bash > /etc/bash_completion.d/relayd`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

/// `relayd demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to send traffic, e.g. `30s` or `5m` (default: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<PositiveDuration>,
    /// Transfers per second in each direction.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Time between the devnet chains' blocks (100ms or more).
    #[arg(long, default_value = "500ms")]
    pub block_time: PositiveDuration,
    /// Where the admin API listens, or `off`.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub admin: AdminListen,
    /// Where keys, configuration, state and the log are written; must not hold an earlier setup's state
    /// (default: a new temporary directory, removed on exit).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Longest wait, once traffic stops, for the packets in flight to be acknowledged.
    #[arg(long, default_value = "60s")]
    pub drain_timeout: PositiveDuration,
}

/// `--admin ADDR|off`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminListen(pub Option<std::net::SocketAddr>);

impl std::str::FromStr for AdminListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        s.parse()
            .map(|addr| Self(Some(addr)))
            .map_err(|_| format!("{s:?} is neither `off` nor an address such as 127.0.0.1:3000"))
    }
}

/// `relayd packet ...`
#[derive(Debug, Subcommand)]
pub enum PacketCommand {
    /// A packet's lifecycle timeline: every state change, transaction, error and attempt (from the running
    /// service, or from the data directory when none is up).
    Trace(TraceArgs),
}

/// `relayd packet trace <chain> <port> <channel> <sequence>`
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The source chain.
    pub chain: String,
    /// The source port.
    pub port: String,
    /// The source channel.
    pub channel: String,
    /// The packet's sequence.
    pub sequence: u64,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd clear ...`
#[derive(Debug, Subcommand)]
pub enum ClearCommand {
    /// Relay the pending packets of one channel (unreceived, or received and not acknowledged) and wait until
    /// each is finished: through the running service's admin server when one answers, else with a progress bar
    /// by running the relay actors here.
    Packets(ClearPacketsArgs),
}

/// `relayd clear packets`
#[derive(Debug, Args)]
pub struct ClearPacketsArgs {
    /// The chain the packets were sent from.
    #[arg(long)]
    pub chain: String,
    /// The sending port.
    #[arg(long)]
    pub port: String,
    /// The sending channel.
    #[arg(long)]
    pub channel: String,
    /// Only these sequences, e.g. `1,5..10` (default: every pending one).
    #[arg(long)]
    pub sequences: Option<String>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd create ...`
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// A Tendermint client of one chain, hosted on another.
    Client(CreateClientArgs),
    /// A connection (and the clients it needs), handshake finished on both chains.
    Connection(CreateConnectionArgs),
    /// A channel over an open connection, handshake finished on both chains.
    Channel(CreateChannelArgs),
}

/// `relayd create client`
#[derive(Debug, Args)]
pub struct CreateClientArgs {
    /// The chain that will host the client.
    #[arg(long)]
    pub host_chain: String,
    /// The chain the client tracks.
    #[arg(long)]
    pub reference_chain: String,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd create connection`
#[derive(Debug, Args)]
pub struct CreateConnectionArgs {
    /// The chain where the handshake starts.
    #[arg(long)]
    pub a_chain: String,
    /// The counterparty chain.
    #[arg(long)]
    pub b_chain: String,
    /// An existing client of b on a (default: create one).
    #[arg(long)]
    pub a_client: Option<String>,
    /// An existing client of a on b (default: create one).
    #[arg(long)]
    pub b_client: Option<String>,
    /// The connection's delay period in seconds.
    #[arg(long, default_value_t = 0)]
    pub delay_period_secs: u64,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd create channel`
#[derive(Debug, Args)]
pub struct CreateChannelArgs {
    /// The chain where the handshake starts.
    #[arg(long)]
    pub a_chain: String,
    /// The open connection on a the channel runs over; the counterparty chain is the one its client tracks.
    #[arg(long)]
    pub a_connection: String,
    /// The port on a.
    #[arg(long)]
    pub a_port: String,
    /// The port on the counterparty (default: the same as on a).
    #[arg(long)]
    pub b_port: Option<String>,
    /// The application version (default `ics20-1` on the transfer port).
    #[arg(long)]
    pub channel_version: Option<String>,
    /// An ordered channel (default: unordered).
    #[arg(long)]
    pub ordered: bool,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd tx ...`
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Send ICS-20 transfers from the source chain's relayer key.
    Transfer(TransferArgs),
    /// Start closing a channel (MsgChannelCloseInit) from the relayer's key on its chain; a running
    /// `relayd start` relays the close confirmation to the counterparty and times out the packets in flight.
    ChanClose(ChanCloseArgs),
}

/// `relayd tx chan-close`
#[derive(Debug, Args)]
pub struct ChanCloseArgs {
    /// Chain of the channel end to close.
    #[arg(long)]
    pub chain: String,
    /// Its port.
    #[arg(long)]
    pub port: String,
    /// Its channel.
    #[arg(long)]
    pub channel: String,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd tx transfer`
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Chain the tokens leave from.
    #[arg(long)]
    pub src_chain: String,
    /// Chain the tokens go to.
    #[arg(long)]
    pub dst_chain: String,
    /// Source port.
    #[arg(long, default_value = "transfer")]
    pub port: String,
    /// Source channel.
    #[arg(long)]
    pub channel: String,
    /// Amount per transfer, `<integer><denom>`.
    #[arg(long)]
    pub amount: String,
    /// Receiver on the destination chain (default: relayd's key for it).
    #[arg(long)]
    pub receiver: Option<String>,
    /// Number of transfers.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Time out this many blocks after the destination's current height.
    #[arg(long)]
    pub timeout_height_offset: Option<u64>,
    /// Time out this many seconds from now (default 600 when no height offset is given).
    #[arg(long)]
    pub timeout_seconds: Option<u64>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd query ...`, grouped as ADR-002 writes them.
#[derive(Debug, Subcommand)]
pub enum QueryGroup {
    /// Client state and consensus states.
    #[command(subcommand)]
    Client(ClientQuery),
    /// One connection end, with its proof.
    Connection(ConnectionArgs),
    /// All connections, or those of one client.
    Connections(ConnectionsArgs),
    /// One channel end, with its proof.
    Channel(ChannelArgs),
    /// All channels, or those over one connection.
    Channels(ChannelsArgs),
    /// Packet state.
    #[command(subcommand)]
    Packet(PacketQuery),
    /// Token balances of an account (the relayer's by default): the bank on Cosmos chains, the IBC contract's
    /// `ft_balances_of` / `ft_balance_of` view on NEAR chains.
    Balance(BalanceArgs),
}

/// `query balance --chain C [--address A] [--denom D]`
#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// The chain.
    #[arg(long)]
    pub chain: String,
    /// The account (default: the relayer's: its key's address on Cosmos, `signer_account` on NEAR).
    #[arg(long)]
    pub address: Option<String>,
    /// Only this denomination (full trace for NEAR vouchers, e.g. `transfer/channel-0/stake`).
    #[arg(long)]
    pub denom: Option<String>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `relayd query client ...`
#[derive(Debug, Subcommand)]
pub enum ClientQuery {
    /// A client's state.
    State(ClientStateArgs),
    /// A client's consensus state at a height.
    Consensus(ClientConsensusArgs),
}

/// `relayd query packet ...`
#[derive(Debug, Subcommand)]
pub enum PacketQuery {
    /// Sequences with a packet commitment on a channel.
    Commitments(PacketArgs),
    /// Packets sent on a channel that the counterparty has not received, and acknowledgements not yet relayed
    /// back. The counterparty chain is found through the channel's connection and client.
    Pending(PacketArgs),
}

/// Height and proof options, as ADR-002 spells them (`-h` is the height, so help is `--help` only).
#[derive(Debug, Clone, Copy, Args)]
pub struct AtHeight {
    /// Query the state after this block (default: latest).
    #[arg(short = 'h', long)]
    pub height: Option<u64>,
    /// Return a proof (default: true).
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub proof: bool,
}

/// `query client state <chain> <client>`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ClientStateArgs {
    /// The chain.
    pub chain: String,
    /// The client id.
    pub client: String,
    /// The height to read at, and whether to print the proof.
    #[command(flatten)]
    pub at: AtHeight,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `query client consensus <chain> <client> <consensus_height>`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ClientConsensusArgs {
    /// The chain.
    pub chain: String,
    /// The client id.
    pub client: String,
    /// The consensus state's height, `<revision>-<height>`.
    pub consensus_height: String,
    /// The height to read at, and whether to print the proof.
    #[command(flatten)]
    pub at: AtHeight,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `query connection <chain> <connection>`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ConnectionArgs {
    /// The chain.
    pub chain: String,
    /// The connection id.
    pub connection: String,
    /// The height to read at, and whether to print the proof.
    #[command(flatten)]
    pub at: AtHeight,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `query connections <chain> [--client ID]`
#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    /// The chain.
    pub chain: String,
    /// Only connections on this client.
    #[arg(long)]
    pub client: Option<String>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `query channel <chain> <port> <channel>`
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ChannelArgs {
    /// The chain.
    pub chain: String,
    /// The port id.
    pub port: String,
    /// The channel id.
    pub channel: String,
    /// The height to read at, and whether to print the proof.
    #[command(flatten)]
    pub at: AtHeight,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `query channels <chain> [--connection ID]`
#[derive(Debug, Args)]
pub struct ChannelsArgs {
    /// The chain.
    pub chain: String,
    /// Only channels over this connection.
    #[arg(long)]
    pub connection: Option<String>,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `query packet commitments <chain> <port> <channel>`
#[derive(Debug, Args)]
pub struct PacketArgs {
    /// The chain.
    pub chain: String,
    /// The port id.
    pub port: String,
    /// The channel id.
    pub channel: String,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// A query, flattened for execution.
#[derive(Debug)]
#[allow(
    missing_docs,
    reason = "each field is the argument of the same name documented in the clap structs"
)]
pub enum QueryCommand {
    /// See [`ClientStateArgs`].
    ClientState {
        chain: String,
        client: String,
        height: Option<u64>,
        proof: bool,
        json: bool,
    },
    /// See [`ClientConsensusArgs`].
    ClientConsensus {
        chain: String,
        client: String,
        consensus_height: String,
        height: Option<u64>,
        proof: bool,
        json: bool,
    },
    /// See [`ConnectionArgs`].
    Connection {
        chain: String,
        connection: String,
        height: Option<u64>,
        proof: bool,
        json: bool,
    },
    /// See [`ConnectionsArgs`].
    Connections {
        chain: String,
        client: Option<String>,
        json: bool,
    },
    /// See [`ChannelArgs`].
    Channel {
        chain: String,
        port: String,
        channel: String,
        height: Option<u64>,
        proof: bool,
        json: bool,
    },
    /// See [`ChannelsArgs`].
    Channels {
        chain: String,
        connection: Option<String>,
        json: bool,
    },
    /// See [`PacketArgs`].
    PacketCommitments {
        chain: String,
        port: String,
        channel: String,
        json: bool,
    },
    /// See [`PacketArgs`].
    PacketPending {
        chain: String,
        port: String,
        channel: String,
        json: bool,
    },
    /// See [`BalanceArgs`].
    Balance {
        chain: String,
        address: Option<String>,
        denom: Option<String>,
        json: bool,
    },
}

impl QueryCommand {
    /// The chain queried.
    pub fn chain(&self) -> &str {
        match self {
            Self::ClientState { chain, .. }
            | Self::ClientConsensus { chain, .. }
            | Self::Connection { chain, .. }
            | Self::Connections { chain, .. }
            | Self::Channel { chain, .. }
            | Self::Channels { chain, .. }
            | Self::PacketCommitments { chain, .. }
            | Self::PacketPending { chain, .. }
            | Self::Balance { chain, .. } => chain,
        }
    }

    /// Whether JSON output was asked for.
    pub fn json(&self) -> bool {
        match self {
            Self::ClientState { json, .. }
            | Self::ClientConsensus { json, .. }
            | Self::Connection { json, .. }
            | Self::Connections { json, .. }
            | Self::Channel { json, .. }
            | Self::Channels { json, .. }
            | Self::PacketCommitments { json, .. }
            | Self::PacketPending { json, .. }
            | Self::Balance { json, .. } => *json,
        }
    }
}

impl From<&QueryGroup> for QueryCommand {
    fn from(group: &QueryGroup) -> Self {
        match group {
            QueryGroup::Client(ClientQuery::State(a)) => Self::ClientState {
                chain: a.chain.clone(),
                client: a.client.clone(),
                height: a.at.height,
                proof: a.at.proof,
                json: a.out.json,
            },
            QueryGroup::Client(ClientQuery::Consensus(a)) => Self::ClientConsensus {
                chain: a.chain.clone(),
                client: a.client.clone(),
                consensus_height: a.consensus_height.clone(),
                height: a.at.height,
                proof: a.at.proof,
                json: a.out.json,
            },
            QueryGroup::Connection(a) => Self::Connection {
                chain: a.chain.clone(),
                connection: a.connection.clone(),
                height: a.at.height,
                proof: a.at.proof,
                json: a.out.json,
            },
            QueryGroup::Connections(a) => Self::Connections {
                chain: a.chain.clone(),
                client: a.client.clone(),
                json: a.out.json,
            },
            QueryGroup::Channel(a) => Self::Channel {
                chain: a.chain.clone(),
                port: a.port.clone(),
                channel: a.channel.clone(),
                height: a.at.height,
                proof: a.at.proof,
                json: a.out.json,
            },
            QueryGroup::Channels(a) => Self::Channels {
                chain: a.chain.clone(),
                connection: a.connection.clone(),
                json: a.out.json,
            },
            QueryGroup::Packet(PacketQuery::Commitments(a)) => Self::PacketCommitments {
                chain: a.chain.clone(),
                port: a.port.clone(),
                channel: a.channel.clone(),
                json: a.out.json,
            },
            QueryGroup::Packet(PacketQuery::Pending(a)) => Self::PacketPending {
                chain: a.chain.clone(),
                port: a.port.clone(),
                channel: a.channel.clone(),
                json: a.out.json,
            },
            QueryGroup::Balance(a) => Self::Balance {
                chain: a.chain.clone(),
                address: a.address.clone(),
                denom: a.denom.clone(),
                json: a.out.json,
            },
        }
    }
}

/// `relayd light ...`
#[derive(Debug, Subcommand)]
pub enum LightCommand {
    /// Trust the chain's header at HEIGHT, whose hash you know from a source you trust.
    Init {
        /// The chain id, as in the config.
        #[arg(long)]
        chain: String,
        /// The header hash (hex) at --height.
        #[arg(long, short = 'x')]
        hash: String,
        /// The height to trust.
        #[arg(long)]
        height: u64,
        /// How to print the result.
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// `relayd keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Import the key a chain's `key_name` refers to, from a mnemonic file or a JSON key file.
    Add {
        /// The chain id, as in the config.
        #[arg(long)]
        chain: String,
        /// File holding a BIP-39 mnemonic.
        #[arg(long, value_name = "FILE", conflicts_with = "key_file")]
        mnemonic_file: Option<PathBuf>,
        /// HD derivation path for --mnemonic-file.
        #[arg(long, default_value = relayd_actors::keys::DEFAULT_HD_PATH)]
        hd_path: String,
        /// JSON file with `private_key` (hex) or `mnemonic`.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// How to print the result.
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List stored keys: chain, name and address (never key material).
    List {
        /// How to print the result.
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Remove a chain's key.
    Delete {
        /// The chain id.
        #[arg(long)]
        chain: String,
        /// How to print the result.
        #[command(flatten)]
        out: OutputArgs,
    },
    /// The relayer account's token balances on a chain (`query balance` for the chain's own key).
    Balance {
        /// The chain id.
        #[arg(long)]
        chain: String,
        /// Only this denomination.
        #[arg(long)]
        denom: Option<String>,
        /// How to print the result.
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// `relayd config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check that the file parses and is semantically valid, and that what it names is usable (key files and
    /// the token file present and private, each chain's signing key present), as `start` checks before it
    /// contacts any node; and summarise it.
    Validate(ValidateArgs),
}

/// `relayd config validate`
#[derive(Debug, Clone, Copy, Args)]
pub struct ValidateArgs {
    /// Check the file alone, not the files and keys it names (for a file meant for another machine).
    #[arg(long)]
    pub file_only: bool,
    /// How to print the result.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// Options of commands that print results.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--log-level` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevelArg {
    /// Everything.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Problems relayd works around.
    Warn,
    /// Problems that stop work.
    Error,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// The configuration file to use: `--config`, then `RELAYD_CONFIG`, then `~/.relayd/config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.config.clone().unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".relayd").join("config.toml")
        })
    }
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    // `RELAYD_CONFIG=` (set, empty) names no file: read as unset, so `--config` and the default still work
    // instead of clap refusing the empty value for every command.
    if std::env::var_os("RELAYD_CONFIG").is_some_and(|v| v.is_empty()) {
        std::env::remove_var("RELAYD_CONFIG");
    }
    let cli = Cli::parse();
    match &cli.command {
        Command::Config(ConfigCommand::Validate(args)) => {
            commands::config::validate(&cli, args.out, args.file_only)
        }
        Command::Start => commands::start::run(&cli),
        Command::Keys(keys) => commands::keys::run(&cli, keys),
        Command::Tx(TxCommand::Transfer(args)) => commands::tx::transfer(&cli, args),
        Command::Tx(TxCommand::ChanClose(args)) => commands::tx::chan_close(&cli, args),
        Command::Create(CreateCommand::Client(args)) => commands::create::client(&cli, args),
        Command::Clear(ClearCommand::Packets(args)) => commands::clear::packets(&cli, args),
        Command::Packet(PacketCommand::Trace(args)) => commands::service::trace(&cli, args),
        Command::Create(CreateCommand::Connection(args)) => {
            commands::create::connection(&cli, args)
        }
        Command::Create(CreateCommand::Channel(args)) => commands::create::channel(&cli, args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => commands::demo::run(&cli, args),
        Command::Query(group) => commands::query::run(&cli, &QueryCommand::from(group)),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "relayd",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Light(LightCommand::Init {
            chain,
            hash,
            height,
            out,
        }) => commands::light::init(&cli, chain, hash, *height, *out),
    }
}
