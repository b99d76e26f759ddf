//! Transactions whose outcome has not reached the actor that asked for them yet, so a graceful stop can wait
//! until every confirmed transaction is written into the state database before it stops the Arbiters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts the outcomes awaited through one chain's link (shared by its clones).
#[derive(Clone, Default)]
pub struct Outcomes(Arc<AtomicUsize>);

impl Outcomes {
    /// Counts one outcome as awaited until the returned guard drops. A job holds it from before it submits to
    /// its end, so the count reaches zero only in the poll that hands the outcome to its actor: a stop that
    /// sees zero cannot cut between a confirmed transaction and the record it changes.
    pub fn awaited(&self) -> OutcomeAwaited {
        self.0.fetch_add(1, Ordering::SeqCst);
        OutcomeAwaited(self.0.clone())
    }

    /// How many outcomes are awaited now.
    pub fn pending(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// One awaited outcome; see [`Outcomes::awaited`].
pub struct OutcomeAwaited(Arc<AtomicUsize>);

impl Drop for OutcomeAwaited {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits until none of `outcomes` is awaited, or `bound` passes; returns how many were still awaited then.
pub async fn settled(outcomes: &[Outcomes], bound: Duration) -> usize {
    let pending = || outcomes.iter().map(Outcomes::pending).sum::<usize>();
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let left = pending();
        if left == 0 || tokio::time::Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settles_once_every_guard_is_dropped_and_gives_up_at_the_bound() {
        let outcomes = Outcomes::default();
        let first = outcomes.awaited();
        let second = outcomes.clone().awaited();
        assert_eq!(outcomes.pending(), 2);
        // Still awaited at the bound: reported, not waited on forever.
        assert_eq!(
            settled(std::slice::from_ref(&outcomes), Duration::from_millis(20)).await,
            2
        );
        drop(first);
        let waiter = tokio::spawn({
            let outcomes = outcomes.clone();
            async move { settled(&[outcomes], Duration::from_secs(60)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(second);
        assert_eq!(waiter.await.unwrap(), 0);
    }
}
