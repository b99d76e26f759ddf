//! The command tree, parsed with clap, and the mapping from outcomes to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List stored keys: chain, name and address (never key material).
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Remove a chain's key.
    Delete {
        /// The chain id.
        #[arg(long)]
        chain: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// `relayd config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check that the file parses and is semantically valid, and summarise it.
    Validate(OutputArgs),
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
    let cli = Cli::parse();
    match &cli.command {
        Command::Config(ConfigCommand::Validate(out)) => commands::config::validate(&cli, *out),
        Command::Start => commands::start::run(&cli),
        Command::Keys(keys) => commands::keys::run(&cli, keys),
        Command::Light(LightCommand::Init {
            chain,
            hash,
            height,
            out,
        }) => commands::light::init(&cli, chain, hash, *height, *out),
    }
}
