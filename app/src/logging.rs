//! Tracing set-up: level and format come from the config file, overridden by command-line flags.

use std::io::IsTerminal;

use relayd_config::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, LogFormatArg, LogLevelArg};

/// Installs the global subscriber writing to stderr. `RUST_LOG`, when set, refines the level per module.
pub fn init(cli: &Cli, level: LogLevel, format: LogFormat) {
    let level = match cli.log_level {
        Some(LogLevelArg::Trace) => "trace",
        Some(LogLevelArg::Debug) => "debug",
        Some(LogLevelArg::Info) => "info",
        Some(LogLevelArg::Warn) => "warn",
        Some(LogLevelArg::Error) => "error",
        None => level.as_str(),
    };
    let json = match cli.log_format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Text) => false,
        None => format == LogFormat::Json,
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (only possible in tests that call commands in-process) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
