//! One module per command; each returns the process exit code.

pub mod balance;
pub mod clear;
pub mod config;
pub mod create;
#[cfg(feature = "demo")]
pub mod demo;
pub mod keys;
pub mod light;
pub mod query;
pub mod service;
pub mod start;
pub mod tx;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use relayd_config::Config;

/// The data directory: `[global] data_dir` (relative to the config file's folder) or `~/.relayd/data`.
pub fn data_dir(config: &Config, config_path: &Path) -> PathBuf {
    match &config.global.data_dir {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => config_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(dir),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".relayd")
            .join("data"),
    }
}

/// The configured chain `id`, or the configuration exit code after saying it is not configured.
pub fn configured_chain<'a>(
    config: &'a Config,
    id: &str,
) -> Result<&'a relayd_config::ChainConfig, ExitCode> {
    config
        .chains
        .iter()
        .find(|c| c.id.as_str() == id)
        .ok_or_else(|| {
            fail(
                &format!("{id} is not a configured chain"),
                crate::cli::EXIT_CONFIG,
            )
        })
}

/// Prints `relayd: <message>` to stderr and returns `code` as the exit code.
pub fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("relayd: {message}");
    ExitCode::from(code)
}

/// Forwards lifecycle changes out of the actor system into a channel.
struct Forward(tokio::sync::mpsc::UnboundedSender<relayd_messages::LifecycleChanged>);

impl actix::Actor for Forward {
    type Context = actix::Context<Self>;
}

impl actix::Handler<relayd_messages::LifecycleChanged> for Forward {
    type Result = ();

    fn handle(&mut self, msg: relayd_messages::LifecycleChanged, _: &mut Self::Context) {
        let _ = self.0.send(msg);
    }
}

/// A recipient for `SubscribeLifecycle` that hands every change to `tx` (one-off commands waiting on packets
/// or handshakes).
pub fn lifecycle_channel(
    tx: tokio::sync::mpsc::UnboundedSender<relayd_messages::LifecycleChanged>,
) -> actix::Recipient<relayd_messages::LifecycleChanged> {
    use actix::Actor;
    Forward(tx).start().recipient()
}

/// SIGINT and SIGTERM as one stream of stop requests (the service, the demo).
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; must run inside a tokio runtime.
    pub fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The next stop request's name, `SIGINT` or `SIGTERM`.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}
