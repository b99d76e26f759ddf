//! Stopped paths: the clients that are expired, frozen or missing and the chains whose node is inconsistent
//! stop every route through them until they are usable again, when those routes are returned for clearing.

use relayd_messages::{ChainId, ClientId, PacketKey, Route};

use super::CoordinatorState;

impl<H, K> CoordinatorState<H, K> {
    /// Why `route` is stopped, if a client it goes through is unusable: the destination's client of the source
    /// (receives) or the source's client of the destination (acks and timeouts).
    pub fn halt_of(&self, route: &Route) -> Option<&String> {
        // Asked for every packet started: no key is built while no client or chain is stopped.
        if self.halted.is_empty() && self.inconsistent.is_empty() {
            return None;
        }
        if let Some(reason) = self
            .inconsistent
            .get(&route.src)
            .or_else(|| self.inconsistent.get(&route.dst))
        {
            return Some(reason);
        }
        self.halted
            .get(&(route.dst.clone(), route.dst_client.clone()))
            .or_else(|| {
                self.halted
                    .get(&(route.src.clone(), route.src_client.clone()))
            })
    }

    /// The client `client` on `host` became unusable (expired or frozen): the paths through it stop. Returns
    /// the live builders of those paths, which stop where they are (their records keep the packets).
    pub fn client_unusable(
        &mut self,
        host: &ChainId,
        client: &ClientId,
        reason: &str,
    ) -> Vec<PacketKey> {
        self.halted
            .insert((host.clone(), client.clone()), reason.to_owned());
        self.builders
            .keys()
            .filter(|key| {
                self.routes
                    .of(key)
                    .is_some_and(|r| goes_through(r, host, client))
            })
            .cloned()
            .collect()
    }

    /// The client `client` on `host` is usable again: returns the paths through it that no other client stops,
    /// to be cleared (what waited meanwhile is found the way clearing finds anything pending). Nothing when the
    /// client was not stopped.
    pub fn client_usable(&mut self, host: &ChainId, client: &ClientId) -> Vec<Route> {
        if self
            .halted
            .remove(&(host.clone(), client.clone()))
            .is_none()
        {
            return Vec::new();
        }
        self.routes
            .all()
            .filter(|r| goes_through(r, host, client) && self.halt_of(r).is_none())
            .cloned()
            .collect()
    }

    /// `chain`'s node stopped being consistent with what relayd followed: every path to or from it stops.
    /// Returns the live builders of those paths, which stop where they are (their records keep the packets).
    pub fn chain_inconsistent(&mut self, chain: &ChainId, reason: &str) -> Vec<PacketKey> {
        self.inconsistent.insert(chain.clone(), reason.to_owned());
        self.builders
            .keys()
            .filter(|key| {
                self.routes
                    .of(key)
                    .is_some_and(|r| r.src == *chain || r.dst == *chain)
            })
            .cloned()
            .collect()
    }

    /// `chain`'s node is consistent again: returns the paths to or from it that nothing else stops, to be
    /// cleared. Nothing when the chain was not stopped.
    pub fn chain_consistent(&mut self, chain: &ChainId) -> Vec<Route> {
        if self.inconsistent.remove(chain).is_none() {
            return Vec::new();
        }
        self.routes
            .all()
            .filter(|r| (r.src == *chain || r.dst == *chain) && self.halt_of(r).is_none())
            .cloned()
            .collect()
    }

    /// The chains whose paths are stopped because their node is inconsistent, with why, sorted.
    pub fn inconsistent_chains(&self) -> Vec<(String, String)> {
        let mut chains: Vec<(String, String)> = self
            .inconsistent
            .iter()
            .map(|(c, r)| (c.to_string(), r.clone()))
            .collect();
        chains.sort();
        chains
    }

    /// The clients whose paths are stopped (host chain, client, why): expired, frozen or missing; sorted.
    pub fn halted_clients(&self) -> Vec<(String, String, String)> {
        let mut clients: Vec<(String, String, String)> = self
            .halted
            .iter()
            .map(|((h, c), r)| (h.to_string(), c.to_string(), r.clone()))
            .collect();
        clients.sort();
        clients
    }

    /// The number of routes to or from `chain`.
    pub fn paths_of(&self, chain: &ChainId) -> usize {
        self.routes
            .all()
            .filter(|r| r.src == *chain || r.dst == *chain)
            .count()
    }

    /// The number of routes through `client` on `host`.
    pub fn paths_through(&self, host: &ChainId, client: &ClientId) -> usize {
        self.routes
            .all()
            .filter(|r| goes_through(r, host, client))
            .count()
    }
}

fn goes_through(r: &Route, host: &ChainId, client: &ClientId) -> bool {
    (r.dst == *host && r.dst_client == *client) || (r.src == *host && r.src_client == *client)
}
