//! The handshake builders' bookkeeping: at most one builder per handshake, for the highest state seen, and
//! what its exit means (stale, finished, restart after a backoff, or left to the operator).

use std::time::Duration;

use relayd_messages::{HandshakeState, RelayObject};

use super::CoordinatorState;
use crate::coordinator::decisions::{HandshakeExit, HandshakeVerdict, LiveHandshake};
use crate::retry;

/// Restarts of one handshake builder before the handshake is left to the operator.
pub const MAX_HANDSHAKE_RESTARTS: u32 = 10;

impl<H, K> CoordinatorState<H, K> {
    /// A handshake event (or request) about `object` at `state`: at most one builder per handshake, for the
    /// highest state seen.
    pub fn observe_handshake(
        &self,
        object: &RelayObject,
        state: HandshakeState,
    ) -> HandshakeVerdict {
        match self.handshakes.get(object) {
            Some(live) if live.state >= state => HandshakeVerdict::Discard,
            Some(_) => HandshakeVerdict::Supersede,
            None => HandshakeVerdict::Start,
        }
    }

    /// A handshake builder runs for `object`.
    pub fn handshake_launched(&mut self, object: RelayObject, live: LiveHandshake<K>) {
        self.handshakes.insert(object, live);
    }

    /// A handshake builder of `generation` exited, `finished` or not.
    pub fn handshake_exited(
        &mut self,
        object: &RelayObject,
        generation: u64,
        finished: bool,
    ) -> HandshakeExit<K> {
        if self
            .handshakes
            .get(object)
            .is_none_or(|l| l.generation != generation)
        {
            return HandshakeExit::Stale;
        }
        let Some(live) = self.handshakes.remove(object) else {
            return HandshakeExit::Stale;
        };
        if finished {
            return HandshakeExit::Finished;
        }
        if live.restarts >= MAX_HANDSHAKE_RESTARTS {
            return HandshakeExit::GiveUp(live.restarts);
        }
        let delay = retry::delay(
            Duration::from_millis(100),
            Duration::from_millis(6_400),
            live.restarts,
        );
        HandshakeExit::Restart(delay, live)
    }
}
