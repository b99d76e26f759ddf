//! `relayd start`: validate the configuration, open the data directory and run until told to stop.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use relayd_config::Config;
use tracing::{error, info};

use crate::cli::{Cli, EXIT_RUNTIME};
use crate::commands::config::load;
use crate::logging;

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("cannot create data dir {path}: {source}")]
    CreateDataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data dir {path} is in use by another relayd process")]
    DataDirLocked { path: PathBuf },
    #[error("cannot open the state database in {path}: {source}")]
    OpenDb { path: PathBuf, source: sled::Error },
    #[error("cannot flush the state database: {0}")]
    Flush(sled::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
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

/// The service's hold on its data directory: an exclusive lock on `LOCK` and the sled database. Taking the
/// lock first lets a second relayd fail with a clear message instead of a storage error.
struct State {
    _lock: std::fs::File,
    db: sled::Db,
}

fn open_state(dir: &Path) -> Result<State, StartError> {
    let create_err = |source| StartError::CreateDataDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(create_err)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(create_err)?;
    lock.try_lock().map_err(|err| match err {
        std::fs::TryLockError::WouldBlock => StartError::DataDirLocked {
            path: dir.to_owned(),
        },
        std::fs::TryLockError::Error(source) => create_err(source),
    })?;
    let db_path = dir.join("state");
    let db = sled::Config::new()
        .path(&db_path)
        .open()
        .map_err(|source| StartError::OpenDb {
            path: db_path.clone(),
            source,
        })?;
    Ok(State { _lock: lock, db })
}

fn serve(config: &Config, config_path: &Path) -> Result<(), StartError> {
    let dir = crate::commands::data_dir(config, config_path);
    let state = open_state(&dir)?;
    let system = actix_rt::System::new();
    let signal = system.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(StartError::Signals)?;
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
        Ok::<_, StartError>(name)
    })?;
    info!(signal, "shutting down");
    state.db.flush().map_err(StartError::Flush)?;
    info!("relayd stopped");
    Ok(())
}
