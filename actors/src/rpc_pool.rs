//! The RPC endpoints of one chain shared by everything that talks to it: a handle on the pure [`PoolState`]
//! that requests report to and ask which endpoint to use, with the clock read here and nowhere in the state.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub mod state;

pub use state::{EndpointView, Health, PoolSettings, PoolState};

use crate::metrics::Metrics;

/// One chain's endpoints and the choice among them. Cheap to clone; clones share the state.
#[derive(Clone, Debug)]
pub struct RpcPool {
    chain: String,
    state: Arc<Mutex<PoolState>>,
    /// The highest height any reader has seen the chain at (see [`RpcPool::tip`]).
    tip: Arc<tokio::sync::watch::Sender<u64>>,
}

impl RpcPool {
    /// A pool of `urls` for `chain`, the first one current.
    pub fn new(chain: &str, urls: &[String], settings: PoolSettings) -> Self {
        Self {
            chain: chain.to_owned(),
            state: Arc::new(Mutex::new(PoolState::new(urls, settings))),
            tip: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Every update leaves the state whole, so a panic elsewhere while holding the lock cannot corrupt it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The chain.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// How many endpoints there are.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Always false: a pool has at least one endpoint.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The address of endpoint `i`.
    pub fn url(&self, i: usize) -> String {
        self.lock().url(i).unwrap_or_default().to_owned()
    }

    /// The endpoints a request tries, best first; see [`PoolState::order`].
    pub fn order(&self) -> Vec<usize> {
        self.lock().order(Instant::now())
    }

    /// The endpoint reads and the subscription use now, re-decided.
    pub fn current(&self) -> usize {
        self.lock().choose(Instant::now())
    }

    /// Endpoint `i`'s standing now.
    pub fn health(&self, i: usize) -> Health {
        self.lock().health(i, Instant::now())
    }

    /// A request to endpoint `i` got an answer.
    pub fn succeeded(&self, i: usize) {
        self.lock().succeeded(i);
    }

    /// A request to endpoint `i` got no usable answer.
    pub fn failed(&self, i: usize, error: &str) {
        self.lock().failed(i, error);
    }

    /// Endpoint `i` reported `height` within `latency`.
    pub fn probed(&self, i: usize, height: u64, latency: Duration) {
        self.lock().probed(i, height, latency);
        self.saw_height(height);
    }

    /// Some endpoint of the chain was seen at `height` (a probe, a `status` answer, a new-block event).
    pub fn saw_height(&self, height: u64) {
        self.tip.send_if_modified(|tip| {
            let higher = height > *tip;
            if higher {
                *tip = height;
            }
            higher
        });
    }

    /// The highest height any reader of the chain has seen so far (0 before the first), changing as new blocks
    /// are seen: what waits for a block watches this instead of asking a node again and again. It is what nodes
    /// claimed, unverified, so it only says when asking is worth it; the answer still comes from a node.
    pub fn tip(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tip.subscribe()
    }

    /// Endpoint `i` served data the light client refused; it is left out for the pool's quarantine period.
    pub fn quarantine(&self, i: usize, reason: &str) {
        let url = self.url(i);
        tracing::warn!(chain = %self.chain, endpoint = %url, reason, "RPC endpoint quarantined: it served data the light client refused");
        self.lock().quarantine(i, reason, Instant::now());
    }

    /// Every endpoint as operators see it, the current one re-decided first.
    pub fn view(&self) -> Vec<EndpointView> {
        let mut state = self.lock();
        let now = Instant::now();
        state.choose(now);
        state.view(now)
    }

    /// Sets the per-endpoint gauges (`relayd_rpc_endpoint_*{chain,endpoint}`) from [`RpcPool::view`].
    pub fn export(&self, metrics: &Metrics) {
        let f = metrics.families();
        for e in self.view() {
            let labels = [self.chain.as_str(), e.url.as_str()];
            f.rpc_endpoint_up
                .with_label_values(&labels)
                .set(i64::from(e.state == Health::Healthy));
            f.rpc_endpoint_quarantined
                .with_label_values(&labels)
                .set(i64::from(e.state == Health::Quarantined));
            f.rpc_endpoint_current
                .with_label_values(&labels)
                .set(i64::from(e.current));
            if let Some(h) = e.height {
                f.rpc_endpoint_height
                    .with_label_values(&labels)
                    .set(i64::try_from(h).unwrap_or(i64::MAX));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tip_only_rises_and_wakes_its_watchers() {
        let urls = ["http://a".to_owned(), "http://b".to_owned()];
        let pool = RpcPool::new("ibc-0", &urls, PoolSettings::default());
        let mut tip = pool.tip();
        assert_eq!(*tip.borrow_and_update(), 0);
        let waiter = tokio::spawn({
            let mut tip = pool.tip();
            async move { *tip.wait_for(|t| *t >= 12).await.expect("tip") }
        });
        // A probe and a new block raise it; a lower height from a lagging endpoint does not lower it.
        pool.probed(0, 10, Duration::from_millis(5));
        pool.saw_height(12);
        pool.probed(1, 7, Duration::from_millis(5));
        assert_eq!(*tip.borrow_and_update(), 12);
        assert_eq!(waiter.await.expect("waiter"), 12);
        // Clones share it.
        pool.clone().saw_height(13);
        assert_eq!(*tip.borrow(), 13);
    }
}
