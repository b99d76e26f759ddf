//! Nonces of one NEAR access key when several `deliver` transactions are outstanding: each new transaction takes
//! the next nonce after the highest relayd used or the chain reported, so transactions admitted back to back carry
//! increasing nonces even before any of them executed. Pure: no IO.

/// The nonces relayd handed out for one access key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NonceBook {
    /// The highest nonce used with the key as far as relayd knows; `None` until the chain is read or after an
    /// answer that leaves it unknown whether a transaction was accepted.
    last: Option<u64>,
}

impl NonceBook {
    /// The nonce for the next transaction, given the access key's nonce as the chain's view reports it (which
    /// lags behind transactions relayd has outstanding).
    pub fn next(&self, chain_nonce: u64) -> u64 {
        self.last
            .map_or(chain_nonce, |n| n.max(chain_nonce))
            .saturating_add(1)
    }

    /// The node accepted a transaction carrying `nonce`.
    pub fn used(&mut self, nonce: u64) {
        self.last = Some(self.last.map_or(nonce, |n| n.max(nonce)));
    }

    /// The node refused a nonce as already used: the key is at `ak_nonce` (another sender may be using it).
    pub fn stale(&mut self, ak_nonce: u64) {
        self.used(ak_nonce);
    }

    /// Whether a transaction may have been accepted is unknown: read the key's nonce again before the next one.
    pub fn forget(&mut self) {
        self.last = None;
    }

    /// The highest nonce known used.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::NonceBook;

    #[test]
    fn outstanding_transactions_take_increasing_nonces_while_the_chain_view_lags() {
        let mut book = NonceBook::default();
        let mut sent = Vec::new();
        for _ in 0..3 {
            // The final view still says 5: nothing executed yet.
            let n = book.next(5);
            book.used(n);
            sent.push(n);
        }
        assert_eq!(sent, vec![6, 7, 8]);
        // The chain caught up past what relayd used (another sender): continue from there.
        assert_eq!(book.next(20), 21);
    }

    #[test]
    fn a_stale_nonce_moves_past_the_keys_nonce_and_never_back() {
        let mut book = NonceBook::default();
        book.used(6);
        book.stale(30);
        assert_eq!(book.next(5), 31);
        book.stale(12);
        assert_eq!(book.next(5), 31, "an older report does not move it back");
        book.used(9);
        assert_eq!(book.last(), Some(30));
    }

    #[test]
    fn an_unclear_answer_makes_the_chain_the_authority_again() {
        let mut book = NonceBook::default();
        book.used(40);
        book.forget();
        assert_eq!(book.last(), None);
        assert_eq!(book.next(35), 36);
    }
}
