//! Producing a block again from a log, for a NEAR devnet kept under its home (`near::persist`): the same
//! transactions at the same time must give the same block.

use near_primitives::hash::CryptoHash;
use near_primitives::transaction::SignedTransaction;

use super::NearChain;

impl NearChain {
    /// Produces a block from a log again: `txs` at the header time `timestamp_ns` it had. It must come out with
    /// hash `recorded`; when it does not, nothing is applied and the hash it got is returned.
    pub fn replay_block(
        &mut self,
        timestamp_ns: u64,
        txs: Vec<SignedTransaction>,
        recorded: &CryptoHash,
    ) -> Result<(), CryptoHash> {
        let waiting = std::mem::replace(&mut self.mempool, txs);
        let replayed = self
            .produce_block_with(timestamp_ns, |header, _| {
                if header.hash() == recorded {
                    Ok(())
                } else {
                    Err(*header.hash())
                }
            })
            .map(|_| ());
        self.mempool = waiting;
        replayed
    }
}
