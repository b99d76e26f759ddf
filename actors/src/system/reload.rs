//! Applying a re-read configuration to a running relay: the caps, channel filters and clearing intervals are
//! replaced at once, and the paths of the new file are resolved on the chains and compared with the routes
//! relayed now; added ones start (and are cleared), removed ones stop taking new packets while what is in flight
//! finishes. The caller has validated the file and checked that nothing else changed
//! (`relayd_config::reload::check_reload`). Every path is resolved before anything is applied, so a path the
//! chains contradict, or a node that does not answer, refuses the reload and nothing changes.

use relayd_config::{Config, ConfigError};
use relayd_messages::{AddRoutes, Route};
use serde::Serialize;
use tracing::warn;

use super::paths::{self, config_error, ConfigSource, PathError};
use super::RelayHandle;
use crate::chain::endpoint::{ChainEndpoint, ChainError};
use crate::coordinator::caps::Ics20Caps;
use crate::coordinator::policy::{ApplyPolicy, RemoveRoutes};
use crate::routes::Routes;

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Directions (`chain:port/channel`) that started.
    pub added: Vec<String>,
    /// Directions that stopped taking new packets.
    pub removed: Vec<String>,
    /// The ICS-20 caps now in force (bytes).
    pub ics20_max_memo_size: u64,
    /// Likewise for the receiver.
    pub ics20_max_receiver_size: u64,
}

/// Why a reload was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The chains contradict a path of the file, at its key.
    #[error("{0}")]
    Config(ConfigError),
    /// A path could not be resolved (a node did not answer).
    #[error("path {path} could not be resolved: {reason}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The coordinator is gone (the relay is stopping).
    #[error("the relay coordinator is not running")]
    Stopped,
}

fn name(r: &Route) -> String {
    format!("{}:{}/{}", r.src, r.src_port, r.src_channel)
}

impl RelayHandle {
    /// Applies `config` (validated, differing from the running one only in what a reload may change; its file
    /// and text in `source`, to name a path the chains contradict at its line).
    pub async fn reload(
        &mut self,
        config: &Config,
        source: ConfigSource,
    ) -> Result<ReloadReport, ReloadError> {
        let endpoints = &self.endpoints;
        let mut wanted = Routes::default();
        for plan in paths::plans(config, |id| endpoints.get(id).cloned()) {
            let within = config.global.timeout.get();
            let resolved = tokio::time::timeout(within, plan.resolve())
                .await
                .unwrap_or_else(|_| {
                    Err(PathError::Chain(ChainError::Rpc {
                        chain: plan.src.chain_id().to_owned(),
                        call: format!("resolve {}", plan.name),
                        reason: format!("no answer within {within:?}"),
                    }))
                });
            match resolved {
                Ok(routes) => routes.into_iter().for_each(|r| wanted.insert(r)),
                Err(PathError::Config { key, message }) => {
                    return Err(ReloadError::Config(config_error(
                        Some(&source),
                        &key,
                        message,
                    )))
                }
                Err(PathError::Chain(e)) => {
                    return Err(ReloadError::Path {
                        path: plan.name,
                        reason: e.to_string(),
                    })
                }
            }
        }
        let mut relayed = self.relayed.clone();
        for route in self.pending_paths.joined().all() {
            relayed.insert(route.clone());
        }
        let added: Vec<Route> = wanted
            .all()
            .filter(|r| relayed.all().all(|o| o != *r))
            .cloned()
            .collect();
        let removed: Vec<Route> = relayed
            .all()
            .filter(|r| wanted.all().all(|n| n != *r))
            .cloned()
            .collect();

        let caps = Ics20Caps::of(config);
        let policy = ApplyPolicy {
            filters: config
                .chains
                .iter()
                .map(|c| (c.id.clone(), c.packet_filter.clone()))
                .collect(),
            caps,
            clear_intervals: config
                .chains
                .iter()
                .map(|c| (c.id.clone(), c.clear_interval))
                .collect(),
        };
        let to = &self.coordinator;
        to.send(policy).await.map_err(|_| ReloadError::Stopped)?;
        if !removed.is_empty() {
            to.send(RemoveRoutes(removed.clone()))
                .await
                .map_err(|_| ReloadError::Stopped)?;
        }
        if !added.is_empty() {
            to.send(AddRoutes(added.clone()))
                .await
                .map_err(|_| ReloadError::Stopped)?;
        }
        self.relayed = wanted;
        self.pending_paths.set(Vec::new());
        self.pending_paths.reset_joined(&self.relayed);
        for route in &added {
            match to.send(route.clear_all()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    warn!(path = %name(route), error = %e, "clearing an added path failed")
                }
                Err(_) => return Err(ReloadError::Stopped),
            }
        }
        let report = ReloadReport {
            added: added.iter().map(name).collect(),
            removed: removed.iter().map(name).collect(),
            ics20_max_memo_size: caps.max_memo,
            ics20_max_receiver_size: caps.max_receiver,
        };
        Ok(report)
    }
}
