//! The command tree, parsed with clap, and the mapping from outcomes to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use relayd_config::values::PositiveDuration;

use crate::commands;

mod ibc;
mod query;

pub use ibc::*;
pub use query::*;

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
    /// Start two local devnet chains (two Cosmos chains, or with --near a Cosmos chain and a NEAR chain), open a
    /// transfer channel between them with relayd and relay continuous ICS-20 traffic both ways, with a live summary
    /// and the admin API; needs no configuration or network.
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
    /// Relay between a Cosmos devnet chain and a NEAR devnet instead of two Cosmos chains. The NEAR chain's
    /// light client trusts the devnet's first head unverified (`trust_on_first_use`, for development only).
    #[arg(long)]
    pub near: bool,
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
        /// Which of the chain's `key_names` this key is; the first one (the chain's `key_name`) by default.
        #[arg(long)]
        name: Option<String>,
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
        Command::Query(group) => commands::query::run(&cli, group),
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
