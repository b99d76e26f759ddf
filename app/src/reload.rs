//! Reloading the configuration of a running service (`SIGHUP`, `POST /config/reload`): the file is re-read and
//! validated as `relayd config validate` does, compared with the running configuration, and applied by the relay
//! when only what a reload may change differs (see `relayd_config::reload`). A refused reload changes nothing
//! and names every problem by file, line and key.

use std::path::Path;

use relayd_actors::system::{ConfigSource, RelayHandle, ReloadError, ReloadReport};
use relayd_config::{Config, ConfigError, ConfigErrors};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

use crate::commands::config::checks;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The file is invalid, or differs in what needs a restart.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// The relay could not apply it (a path the chains contradict, a node that does not answer).
    #[error(transparent)]
    Relay(#[from] ReloadError),
}

impl Refused {
    /// The problems by file, line and key, as the admin API answers them.
    pub fn to_json(&self) -> Value {
        let one = |e: &ConfigError| {
            json!({
                "file": e.file.display().to_string(),
                "line": e.line,
                "key": e.key,
                "message": e.message,
                "text": e.to_string(),
            })
        };
        let errors: Vec<Value> = match self {
            Self::Invalid(errors) => errors.iter().map(one).collect(),
            Self::Relay(ReloadError::Config(e)) => vec![one(e)],
            Self::Relay(_) => Vec::new(),
        };
        json!({ "error": format!("configuration not reloaded: {self}"), "errors": errors })
    }

    /// Whether the file itself is at fault (the operator must edit it) rather than the chains or the relay.
    pub fn is_invalid(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Relay(ReloadError::Config(_)))
    }
}

/// A reload asked of the service loop, answered on the enclosed channel.
pub type ReloadRequest = oneshot::Sender<Result<ReloadReport, Refused>>;

/// Where the admin server sends reload requests.
pub type ReloadRequests = mpsc::Sender<ReloadRequest>;

/// Re-reads `path` and applies it to `relay` if valid and reloadable; on success `current` becomes the new
/// configuration. Every outcome is logged: a refusal with each problem at its file, line and key.
pub async fn reload(
    path: &Path,
    current: &mut Config,
    relay: &mut RelayHandle,
) -> Result<ReloadReport, Refused> {
    let outcome = apply(path, current, relay).await;
    match &outcome {
        Ok(report) => {
            info!(added = ?report.added, removed = ?report.removed, memo = report.ics20_max_memo_size, receiver = report.ics20_max_receiver_size, "configuration reloaded from {}", path.display())
        }
        Err(Refused::Invalid(errors)) => {
            for e in errors.iter() {
                error!("configuration not reloaded: {e}");
            }
        }
        Err(e) => error!(
            "{}",
            Refused::to_json(e)["error"].as_str().unwrap_or_default()
        ),
    }
    outcome
}

async fn apply(
    path: &Path,
    current: &mut Config,
    relay: &mut RelayHandle,
) -> Result<ReloadReport, Refused> {
    let (config, text) = Config::load_text(path).map_err(Refused::Invalid)?;
    let problems = checks::files(&config, path, &text);
    if !problems.is_empty() {
        return Err(Refused::Invalid(ConfigErrors(problems)));
    }
    relayd_config::reload::check_reload(current, &config, path, &text).map_err(Refused::Invalid)?;
    let report = relay
        .reload(
            &config,
            ConfigSource {
                file: path.to_owned(),
                text,
            },
        )
        .await?;
    *current = config;
    Ok(report)
}
