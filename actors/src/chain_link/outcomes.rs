//! Transactions whose outcome has not reached the actor that asked for them yet, so a graceful stop can wait
//! until every confirmed transaction is written into the state database before it stops the Arbiters.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Counts {
    awaited: AtomicUsize,
    /// Set once the chain's TxSubmitter has stopped taking requests: nothing submitted later can be sent, so
    /// there is no outcome to wait for.
    closed: AtomicBool,
}

/// Counts the outcomes awaited through one chain's link (shared by its clones).
#[derive(Clone, Default)]
pub struct Outcomes(Arc<Counts>);

impl Outcomes {
    /// Counts one outcome as awaited until the returned guard drops. A job holds it from before it submits to
    /// its end, so the count reaches zero only in the poll that hands the outcome to its actor: a stop that
    /// sees zero cannot cut between a confirmed transaction and the record it changes.
    pub fn awaited(&self) -> OutcomeAwaited {
        if self.0.closed.load(Ordering::SeqCst) {
            return OutcomeAwaited(None);
        }
        self.0.awaited.fetch_add(1, Ordering::SeqCst);
        OutcomeAwaited(Some(self.0.clone()))
    }

    /// How many outcomes are awaited now.
    pub fn pending(&self) -> usize {
        self.0.awaited.load(Ordering::SeqCst)
    }

    /// The chain's submitter takes nothing new any more (it has quiesced): later submissions are not counted,
    /// so builders retrying while relayd stops cannot hold the stop up.
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::SeqCst);
    }
}

/// One awaited outcome; see [`Outcomes::awaited`].
pub struct OutcomeAwaited(Option<Arc<Counts>>);

impl Drop for OutcomeAwaited {
    fn drop(&mut self) {
        if let Some(counts) = &self.0 {
            counts.awaited.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Closes `outcomes` (their submitters have quiesced) and waits until none of them is awaited, or `bound`
/// passes; returns how many were still awaited then.
pub async fn settled(outcomes: &[Outcomes], bound: Duration) -> usize {
    for o in outcomes {
        o.close();
    }
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
        // Closed: a submission from now on has no outcome to wait for.
        let late = outcomes.awaited();
        assert_eq!(outcomes.pending(), 2);
        drop(first);
        let waiter = tokio::spawn({
            let outcomes = outcomes.clone();
            async move { settled(&[outcomes], Duration::from_secs(60)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(second);
        assert_eq!(waiter.await.unwrap(), 0);
        drop(late);
        assert_eq!(outcomes.pending(), 0);
    }
}
