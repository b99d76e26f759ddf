//! `relayd start`: validate the configuration, open the data directory and run until told to stop.

use std::path::Path;
use std::process::ExitCode;

use relayd_config::Config;
use tracing::{error, info};

use crate::cli::{Cli, EXIT_RUNTIME};
use crate::commands::config::load;
use crate::datadir::{DataDir, DataDirError};
use crate::logging;

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
}

/// Runs the service; returns when a shutdown signal arrived and state is flushed.
pub fn run(cli: &Cli) -> ExitCode {
    let path = cli.config_path();
    let config = match load(&path, false) {
        Ok(config) => config,
        Err(code) => return code,
    };
    logging::init(cli, config.global.log_level, config.global.log_format);
    match serve(&config, &path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn serve(config: &Config, config_path: &Path) -> Result<(), StartError> {
    let dir = crate::commands::data_dir(config, config_path);
    let state = DataDir::open(&dir)?;
    let system = actix_rt::System::new();
    let signal = system.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(StartError::Signals)?;
        let registry = prometheus::Registry::new();
        let metrics = relayd_actors::metrics::Metrics::new(
            &registry,
            config.telemetry.latency_buckets.clone(),
        )?;
        // With telemetry off nothing is counted by the actors; the admin server still runs without /metrics.
        let counted = config.telemetry.enabled.then(|| metrics.clone());
        let relay = relayd_actors::system::start_with(
            config,
            state.store.clone(),
            dir.join("keys"),
            relayd_actors::system::StartOptions {
                metrics: counted,
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
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            res = tokio::signal::ctrl_c() => {
                res.map_err(StartError::Signals)?;
                "SIGINT"
            }
        };
        info!(signal = name, "stopping the actors");
        if let Some(admin) = admin {
            admin.stop().await;
        }
        relay.shutdown().await;
        Ok::<_, StartError>(name)
    })?;
    info!(signal, "shutting down");
    state.store.flush().map_err(StartError::Flush)?;
    info!("relayd stopped");
    Ok(())
}
