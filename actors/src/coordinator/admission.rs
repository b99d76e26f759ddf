//! The actor's side of the bounded builder window (`window`): packets waiting for a slot start, oldest first, as
//! running builders exit, from their records in the store (which stay the truth while they wait).

use tracing::warn;

use super::RelayCoordinator;

impl RelayCoordinator {
    /// Lets at most `max` packet builders run at once (`[global] max_builders`); the rest wait for a slot.
    pub fn with_max_builders(mut self, max: usize) -> Self {
        self.state.set_max_builders(max);
        self
    }

    /// Starts waiting packets while the window has free slots. A packet finished or halted meanwhile takes no
    /// slot: the next one is tried.
    pub(super) fn admit_waiting(&mut self) {
        while let Some((key, restarts)) = self.state.admit() {
            match self.store.packet(&key) {
                Ok(Some(record)) if !record.is_final() => self.spawn(record, restarts),
                Ok(_) => {}
                Err(e) => {
                    warn!(packet = %key, error = %e, "cannot read a waiting packet's record; it is found again by clearing")
                }
            }
        }
    }
}
