//! A chain's node stopped agreeing with what relayd followed, or agrees again: the coordinator stops every path to
//! or from that chain (so nothing is sent to, or proven from, a node that went back or serves another chain) and
//! resumes them, clearing what waited, once the monitor finds the node consistent again.

use actix::{AsyncContext, Handler};
use relayd_messages::{ChainConsistencyChanged, Halt};
use tracing::{error, info, warn};

use super::RelayCoordinator;

impl Handler<ChainConsistencyChanged> for RelayCoordinator {
    type Result = ();

    fn handle(&mut self, msg: ChainConsistencyChanged, ctx: &mut Self::Context) {
        self.meter.took();
        if let Some(reason) = msg.inconsistent {
            let paths = self.state.paths_of(&msg.chain);
            error!(chain = %msg.chain, reason = %reason, paths, "stopping every path to and from an inconsistent chain");
            // Running builders of those paths stop where they are; their records keep the packets for later.
            for key in self.state.chain_inconsistent(&msg.chain, &reason) {
                if let Some(live) = self.state.builder(&key) {
                    let _ = live.handle.try_send(Halt {
                        reason: reason.clone(),
                    });
                }
            }
            return;
        }
        let resumed = self.state.chain_consistent(&msg.chain);
        if resumed.is_empty() {
            return;
        }
        info!(chain = %msg.chain, paths = resumed.len(), "chain consistent again: resuming its paths");
        for route in resumed {
            let request = route.clear_all();
            let addr = ctx.address();
            actix::spawn(async move {
                if let Ok(Err(e)) = addr.send(request).await {
                    warn!(error = %e, "clearing a resumed path failed");
                }
            });
        }
    }
}
