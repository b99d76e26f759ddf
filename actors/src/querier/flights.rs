//! One read shared by everyone who asks while it is on its way or fresh: hundreds of builders ask for the same
//! latest height or client state within one block, and the node should answer that once, not once per builder.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::{FutureExt, LocalBoxFuture, Shared};
use relayd_messages::RelayError;

/// A read's answer, shared by its askers.
type Answer<T> = LocalBoxFuture<'static, Result<T, RelayError>>;

enum Flight<T> {
    /// Answered at this instant.
    Answered(Instant, T),
    /// On its way; every asker awaits the same read.
    Asking(Shared<Answer<T>>),
}

/// Reads keyed by `K`: a key asked while its read is on its way joins that read; an answer is reused for
/// `fresh`; a failed read is forgotten, so the next asker reads again.
pub struct Flights<K, T> {
    map: Rc<RefCell<HashMap<K, Flight<T>>>>,
    fresh: Duration,
}

/// Clones share the flights.
impl<K, T> Clone for Flights<K, T> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
            fresh: self.fresh,
        }
    }
}

impl<K, T> Flights<K, T>
where
    K: Eq + Hash + Clone + 'static,
    T: Clone + 'static,
{
    /// Flights whose answers are reused for `fresh`.
    pub fn new(fresh: Duration) -> Self {
        Self {
            map: Rc::new(RefCell::new(HashMap::new())),
            fresh,
        }
    }

    /// The answer for `key`: a fresh one, the one on its way, or a new read `read()`.
    pub fn get(&self, key: K, read: impl FnOnce() -> Answer<T>) -> Answer<T> {
        match self.map.borrow().get(&key) {
            Some(Flight::Answered(at, value)) if at.elapsed() < self.fresh => {
                let value = value.clone();
                return async move { Ok(value) }.boxed_local();
            }
            Some(Flight::Asking(on_its_way)) => return on_its_way.clone().boxed_local(),
            _ => {}
        }
        let map = self.map.clone();
        let at = key.clone();
        let flight = read()
            .map(move |answer| {
                let mut map = map.borrow_mut();
                match &answer {
                    Ok(value) => {
                        map.insert(at, Flight::Answered(Instant::now(), value.clone()));
                    }
                    Err(_) => {
                        map.remove(&at);
                    }
                }
                answer
            })
            .boxed_local()
            .shared();
        self.map
            .borrow_mut()
            .insert(key, Flight::Asking(flight.clone()));
        flight.boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use relayd_messages::ErrorKind;

    use super::*;

    fn counting(reads: &Rc<Cell<u32>>, answer: Result<u64, RelayError>) -> Answer<u64> {
        let reads = reads.clone();
        async move {
            reads.set(reads.get() + 1);
            tokio::task::yield_now().await;
            answer
        }
        .boxed_local()
    }

    #[tokio::test]
    async fn askers_while_a_read_is_on_its_way_share_it() {
        let flights = Flights::new(Duration::from_secs(60));
        let reads = Rc::new(Cell::new(0));
        let askers: Vec<_> = (0..20)
            .map(|_| flights.get("client", || counting(&reads, Ok(7))))
            .collect();
        let answers = futures::future::join_all(askers).await;
        assert!(answers.iter().all(|a| *a == Ok(7)));
        assert_eq!(reads.get(), 1);
        // Fresh: answered without reading again.
        assert_eq!(
            flights.get("client", || counting(&reads, Ok(8))).await,
            Ok(7)
        );
        assert_eq!(reads.get(), 1);
        // Another key is its own read.
        assert_eq!(
            flights.get("other", || counting(&reads, Ok(9))).await,
            Ok(9)
        );
        assert_eq!(reads.get(), 2);
    }

    #[tokio::test]
    async fn a_stale_answer_is_read_again() {
        let flights = Flights::new(Duration::ZERO);
        let reads = Rc::new(Cell::new(0));
        assert_eq!(flights.get((), || counting(&reads, Ok(1))).await, Ok(1));
        assert_eq!(flights.get((), || counting(&reads, Ok(2))).await, Ok(2));
        assert_eq!(reads.get(), 2);
    }

    #[tokio::test]
    async fn a_failed_read_is_forgotten() {
        let flights = Flights::new(Duration::from_secs(60));
        let reads = Rc::new(Cell::new(0));
        let failed = RelayError::new(ErrorKind::Unavailable, "node down");
        let both = futures::future::join(
            flights.get((), || counting(&reads, Err(failed.clone()))),
            flights.get((), || counting(&reads, Ok(5))),
        )
        .await;
        // Both askers see the one read's failure ...
        assert_eq!(both, (Err(failed.clone()), Err(failed)));
        assert_eq!(reads.get(), 1);
        // ... and the next asker reads again.
        assert_eq!(flights.get((), || counting(&reads, Ok(5))).await, Ok(5));
        assert_eq!(reads.get(), 2);
    }
}
