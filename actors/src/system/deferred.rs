//! Paths whose nodes did not answer at start: named for readiness reports, resolved with backoff and handed to
//! the coordinator once they answer, so one unreachable chain never holds up the others.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use relayd_messages::{AddRoutes, Route};
use tracing::{debug, error, info, warn};

use super::paths::{config_error, ConfigSource, PathError, PathPlan};
use crate::coordinator::RelayCoordinator;
use crate::routes::Routes;

/// The names (`chain:port/channel`) of configured paths waiting for a node to answer, and the routes of those
/// that joined since the start, shared with whoever reports readiness or checks what is relayed.
#[derive(Debug, Clone, Default)]
pub struct PendingPaths(Arc<std::sync::Mutex<(Vec<String>, Routes)>>);

impl PendingPaths {
    /// The configured paths not relayed: those waiting for a node, and those the chains contradict the
    /// configuration on (reported at their key in the log).
    pub fn list(&self) -> Vec<String> {
        self.with(|(names, _)| names.clone())
    }

    /// The routes of the paths that joined after the start (not in [`RelayHandle::routes`]).
    pub fn joined(&self) -> Routes {
        self.with(|(_, routes)| routes.clone())
    }

    fn with<T>(&self, f: impl FnOnce(&mut (Vec<String>, Routes)) -> T) -> T {
        match self.0.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub(super) fn set(&self, names: Vec<String>) {
        self.with(|(waiting, _)| *waiting = names);
    }

    /// After a reload: the routes relayed now replace those that joined since the start.
    pub(super) fn reset_joined(&self, relayed: &Routes) {
        self.with(|(_, joined)| *joined = relayed.clone());
    }

    fn join(&self, routes: &[Route]) {
        self.with(|(_, joined)| {
            for route in routes {
                joined.insert(route.clone());
            }
        });
    }
}

/// Resolves the paths left unresolved at start, retrying each with doubling delays from `backoff.0` up to
/// `backoff.1`, and hands each to the coordinator (clearing its pending packets when `clear`) as it resolves.
/// A path the chains contradict the configuration on is not asked again: it is reported at its key (file and
/// line from `source`) and stays listed as not relayed.
pub(super) async fn join_deferred(
    mut waiting: Vec<PathPlan>,
    source: Option<ConfigSource>,
    pending: PendingPaths,
    coordinator: Addr<RelayCoordinator>,
    clear: bool,
    backoff: (Duration, Duration),
) {
    let mut delay = backoff.0;
    let mut refused = Vec::new();
    while !waiting.is_empty() {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(backoff.1);
        let mut still = Vec::new();
        for path in waiting {
            match path.resolve().await {
                Ok(resolved) => {
                    info!(path = %path.name, "path resolved; its node answers again");
                    if coordinator.send(AddRoutes(resolved.clone())).await.is_err() {
                        return;
                    }
                    pending.join(&resolved);
                    for route in resolved.iter().filter(|_| clear) {
                        if let Ok(Err(e)) = coordinator.send(route.clear_all()).await {
                            warn!(chain = %route.src, error = %e, "clearing a joined path failed");
                        }
                    }
                }
                Err(PathError::Config { key, message }) => {
                    let problem = config_error(source.as_ref(), &key, message);
                    error!(path = %path.name, "{problem}; this path is not relayed until the configuration is fixed and relayd restarted");
                    refused.push(path.name);
                }
                Err(PathError::Chain(e)) => {
                    debug!(path = %path.name, error = %e, "path still not resolved");
                    still.push(path);
                }
            }
        }
        waiting = still;
        let names = waiting.iter().map(|p| p.name.clone());
        pending.set(names.chain(refused.iter().cloned()).collect());
    }
}
