//! Tracing set-up: level and format come from the config file, overridden by command-line flags.

use std::io::IsTerminal;

use relayd_config::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, LogFormatArg, LogLevelArg};

/// The level to log at: `--log-level`, else `level`.
fn level_name(cli: &Cli, level: LogLevel) -> &'static str {
    match cli.log_level {
        Some(LogLevelArg::Trace) => "trace",
        Some(LogLevelArg::Debug) => "debug",
        Some(LogLevelArg::Info) => "info",
        Some(LogLevelArg::Warn) => "warn",
        Some(LogLevelArg::Error) => "error",
        None => level.as_str(),
    }
}

/// Installs the global subscriber writing to stderr. `RUST_LOG`, when set, refines the level per module.
pub fn init(cli: &Cli, level: LogLevel, format: LogFormat) {
    let level = level_name(cli, level);
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

/// Installs the global subscriber writing plain text lines to the file at `path` (created or truncated), for
/// commands whose terminal output is a live view that log lines would break up. `--log-level` overrides `level`.
#[cfg(feature = "demo")]
pub fn init_file(cli: &Cli, level: LogLevel, path: &std::path::Path) -> std::io::Result<()> {
    let level = level_name(cli, level);
    let file = std::fs::File::create(path)?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false);
    let _ = if matches!(cli.log_format, Some(LogFormatArg::Json)) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}
