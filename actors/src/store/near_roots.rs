//! What relayd's NEAR light client verified, by height, kept across restarts (only the head's block survives in
//! the head record):
//! - the state roots of the verified blocks: a `12-near` client names no chain, and relayd tells which NEAR chain it
//!   tracks by the root of the block at the client's latest height (`handshake_builder/tracked.rs`); without them a
//!   client updated before a restart could not be matched until it was updated again;
//! - the verified light-client blocks that open an epoch: a `12-near` client accepts headers of its own epoch or
//!   the next, so a client several epochs behind the head is updated through one verified block of each epoch
//!   between, and a restart must not forget them.

use near_primitives::views::LightClientBlockView;

use super::{decode, encode, StateStore, StoreError};

/// Roots kept per chain: the newest verified heights.
pub const NEAR_ROOTS_KEPT: usize = 4096;
/// Epoch-opening blocks kept per chain: a client this many epochs behind can still be brought up to date.
pub const NEAR_EPOCH_BLOCKS_KEPT: usize = 512;

fn key(chain: &str, height: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(chain.len() + 9);
    k.extend_from_slice(chain.as_bytes());
    k.push(0);
    k.extend_from_slice(&height.to_be_bytes());
    k
}

fn prefix(chain: &str) -> Vec<u8> {
    let mut k = chain.as_bytes().to_vec();
    k.push(0);
    k
}

impl StateStore {
    /// Records the state root (`prev_state_root`) of NEAR chain `chain`'s verified block at `height`, keeping
    /// the newest [`NEAR_ROOTS_KEPT`] heights of the chain.
    pub fn save_near_root(&self, chain: &str, height: u64, root: &[u8]) -> Result<(), StoreError> {
        self.save_near_root_keeping(chain, height, root, NEAR_ROOTS_KEPT)
    }

    fn save_near_root_keeping(
        &self,
        chain: &str,
        height: u64,
        root: &[u8],
        keep: usize,
    ) -> Result<(), StoreError> {
        insert_keeping(&self.trees().near_roots, chain, height, root, keep)
    }

    /// Records a verified light-client block of NEAR chain `chain` that opens an epoch (the first verified block
    /// of its epoch), keeping the newest [`NEAR_EPOCH_BLOCKS_KEPT`].
    pub fn save_near_epoch_block(
        &self,
        chain: &str,
        block: &LightClientBlockView,
    ) -> Result<(), StoreError> {
        let height = block.inner_lite.height;
        let bytes = encode(&format!("near_epoch_blocks/{chain}/{height}"), block)?;
        let tree = &self.trees().near_epoch_blocks;
        insert_keeping(tree, chain, height, &bytes, NEAR_EPOCH_BLOCKS_KEPT)
    }

    /// The recorded epoch-opening blocks of NEAR chain `chain`, lowest height first.
    pub fn near_epoch_blocks(&self, chain: &str) -> Result<Vec<LightClientBlockView>, StoreError> {
        scan(&self.trees().near_epoch_blocks, chain)?
            .into_iter()
            .map(|(height, bytes)| decode(&format!("near_epoch_blocks/{chain}/{height}"), &bytes))
            .collect()
    }

    /// The state root recorded for NEAR chain `chain`'s verified block at `height`.
    pub fn near_root(&self, chain: &str, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .trees()
            .near_roots
            .get(key(chain, height))?
            .map(|v| v.to_vec()))
    }

    /// Every recorded (height, root) of NEAR chain `chain`, lowest height first.
    pub fn near_roots(&self, chain: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        scan(&self.trees().near_roots, chain)
    }
}

/// Inserts `value` for (`chain`, `height`) into `tree`, then drops the chain's oldest heights beyond `keep`.
fn insert_keeping(
    tree: &sled::Tree,
    chain: &str,
    height: u64,
    value: &[u8],
    keep: usize,
) -> Result<(), StoreError> {
    tree.insert(key(chain, height), value)?;
    let p = prefix(chain);
    let excess = tree.scan_prefix(&p).count().saturating_sub(keep);
    let oldest: Vec<_> = tree
        .scan_prefix(&p)
        .keys()
        .take(excess)
        .collect::<Result<_, _>>()?;
    for k in oldest {
        tree.remove(k)?;
    }
    Ok(())
}

/// Every (height, value) of `chain` in `tree`, lowest height first.
fn scan(tree: &sled::Tree, chain: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let p = prefix(chain);
    let mut out = Vec::new();
    for entry in tree.scan_prefix(&p) {
        let (k, v) = entry?;
        let Some(height) = k
            .get(p.len()..)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        out.push((height, v.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_roots_per_chain_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("state")).unwrap();
        store.save_near_root("near-a", 7, &[7; 32]).unwrap();
        store.save_near_root("near-ab", 7, &[8; 32]).unwrap();
        assert_eq!(store.near_root("near-a", 7).unwrap(), Some(vec![7; 32]));
        assert_eq!(store.near_root("near-ab", 7).unwrap(), Some(vec![8; 32]));
        assert_eq!(store.near_root("near-a", 8).unwrap(), None);
        for h in 0..5 {
            store
                .save_near_root_keeping("near-a", 100 + h, &[1; 32], 3)
                .unwrap();
        }
        let roots = store.near_roots("near-a").unwrap();
        assert_eq!(
            roots.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![102, 103, 104]
        );
        assert_eq!(store.near_root("near-a", 7).unwrap(), None);
        assert_eq!(store.near_roots("near-ab").unwrap().len(), 1);
    }
}
