//! `relayd start`: validate the configuration, open the data directory and run until told to stop. The first
//! SIGINT or SIGTERM stops gracefully (no new work, transactions in flight confirm or time out within the
//! relay's drain bound, state flushed, exit 0); a second one during that stop exits at once (130 after SIGINT,
//! 143 after SIGTERM) with the state database flushed, and the next start resumes what was unfinished. A failure
//! of the relay coordinator, which relaying cannot survive, stops the service the same way and exits with an error
//! so that the service manager starts it again. SIGHUP re-reads the configuration and applies what a running
//! service can change (see `crate::reload`).

use std::path::Path;
use std::process::ExitCode;

use relayd_actors::system::ConfigSource;
use relayd_config::Config;
use tracing::{error, info, warn};

use crate::cli::{Cli, EXIT_CONFIG, EXIT_RUNTIME};
use crate::commands::config::load_for_service;
use crate::commands::Signals;
use crate::datadir::{DataDir, DataDirError};
use crate::logging;
use crate::reload::{self, ReloadRequest};

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot flush the state database: {0}")]
    Flush(relayd_actors::store::StoreError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Relay(#[from] relayd_actors::system::StartError),
    #[error(transparent)]
    Metrics(#[from] relayd_actors::metrics::MetricsError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error("the relay coordinator failed ({0}); stopped so that the service manager starts relayd again, which resumes every unfinished packet from the state database")]
    CoordinatorFailed(String),
}

/// Runs the service; returns when a shutdown signal arrived and state is flushed.
pub fn run(cli: &Cli) -> ExitCode {
    let path = cli.config_path();
    let (config, text) = match load_for_service(&path, false) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    logging::init(cli, config.global.log_level, config.global.log_format);
    let source = ConfigSource {
        file: path.clone(),
        text,
    };
    match serve(&config, &path, source) {
        Ok(()) => ExitCode::SUCCESS,
        // The chains contradict the file: a configuration problem, named at its key like any other.
        Err(StartError::Relay(relayd_actors::system::StartError::Config(problem))) => {
            error!("{problem}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(err) => {
            error!("{err}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn serve(config: &Config, config_path: &Path, source: ConfigSource) -> Result<(), StartError> {
    let dir = crate::commands::data_dir(config, config_path);
    let state = DataDir::open(&dir)?;
    let system = actix_rt::System::new();
    let signal = system.block_on(async {
        let mut signals = Signals::new().map_err(StartError::Signals)?;
        // SIGHUP reloads the configuration (the service has no terminal whose hangup it should follow).
        let mut hangups =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(StartError::Signals)?;
        let registry = prometheus::Registry::new();
        let metrics = relayd_actors::metrics::Metrics::new(
            &registry,
            config.telemetry.latency_buckets.clone(),
        )?;
        // With telemetry off nothing is counted by the actors; the admin server still runs without /metrics.
        let counted = config.telemetry.enabled.then(|| metrics.clone());
        let mut relay = relayd_actors::system::start_with(
            config,
            state.store.clone(),
            dir.join("keys"),
            relayd_actors::system::StartOptions {
                metrics: counted,
                source: Some(source),
                ..Default::default()
            },
        )
        .await?;
        // Relaying does not depend on the admin server: one that cannot listen is reported, not fatal. A token
        // file that cannot be read is fatal, since the operator asked for protected endpoints.
        let admin = match crate::admin::start(
            config,
            config_path.parent().unwrap_or_else(|| Path::new(".")),
            &dir,
            &relay,
            state.store.clone(),
            registry,
            metrics,
        )
        .await
        {
            Ok(server) => Some(server),
            Err(e @ crate::admin::AdminError::Bind { .. }) => {
                error!("{e}; relaying without the admin server");
                None
            }
            Err(e) => {
                relay.shutdown().await;
                return Err(e.into());
            }
        };
        info!(
            chains = config.chains.len(),
            connections = config.connections.as_ref().map_or(0, Vec::len),
            data_dir = %dir.display(),
            "relayd started"
        );
        let failure = relay.take_failure();
        let failed = async {
            match failure {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        let (reload_tx, mut reloads) = tokio::sync::mpsc::channel::<ReloadRequest>(4);
        if let Some(admin) = &admin {
            admin.accept_reloads(reload_tx);
        }
        let mut current = config.clone();
        tokio::pin!(failed);
        // Relaying cannot go on without the coordinator: its failure stops the service like a signal, with an
        // error for the service manager to act on. Reloads run here, one at a time, between the two.
        let name = loop {
            tokio::select! {
                name = signals.next() => break name,
                _ = hangups.recv() => {
                    info!("SIGHUP: reloading the configuration");
                    let _ = reload::reload(config_path, &mut current, &mut relay).await;
                }
                Some(reply) = reloads.recv() => {
                    let outcome = reload::reload(config_path, &mut current, &mut relay).await;
                    let _ = reply.send(outcome);
                }
                reason = &mut failed => {
                    if let Some(admin) = admin {
                        admin.stop().await;
                    }
                    relay.shutdown().await;
                    return Err(StartError::CoordinatorFailed(reason));
                }
            }
        };
        info!(
            signal = name,
            drain_bound = ?relay.drain_bound(),
            "stopping: no new work, waiting for transactions in flight; a second SIGINT or SIGTERM exits at once"
        );
        let graceful = async {
            if let Some(admin) = admin {
                admin.stop().await;
            }
            relay.shutdown().await;
        };
        tokio::select! {
            _ = graceful => {}
            second = signals.next() => {
                warn!(signal = second, "stopping at once; unfinished packets resume at the next start");
                if let Err(e) = state.store.flush() {
                    error!("cannot flush the state database: {e}");
                }
                // Not a return: the runtime would wait for the chains' Arbiters, which is what the operator
                // asked not to do. The database is flushed and sled recovers its log at the next open.
                std::process::exit(exit_code_after(second).into());
            }
        }
        Ok::<_, StartError>(name)
    })?;
    info!(signal, "shutting down");
    state.store.flush().map_err(StartError::Flush)?;
    info!("relayd stopped");
    Ok(())
}

/// The exit code of a stop cut short by `signal`: 128 plus the signal's number, as shells report it.
fn exit_code_after(signal: &str) -> u8 {
    if signal == "SIGINT" {
        130
    } else {
        143
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code_after;

    #[test]
    fn a_stop_cut_short_exits_with_128_plus_the_signal_number() {
        assert_eq!(exit_code_after("SIGINT"), 130);
        assert_eq!(exit_code_after("SIGTERM"), 143);
    }
}
