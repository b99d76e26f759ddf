//! The devnet's provable store: a versioned Jellyfish Merkle tree ([`tree`]) under basecoin-store's `Store`
//! traits, so ibc-testkit's `MockIbcStore` and the app's bank and auth run on it, with an undo journal so a failed
//! transaction is rolled back in O(its writes). A commit writes only the keys the block changed (O(changes ·
//! depth)); versions share every untouched node, and those older than a window are pruned.

mod tree;

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use basecoin_store::context::{ProvableStore, Store};
use basecoin_store::impls::SharedStore;
use basecoin_store::types::{Height, Path, RawHeight};
use ics23::CommitmentProof;

pub use tree::TreeError;
use tree::VersionedTree;

/// A versioned store whose pending (uncommitted) state is a sorted map changed in place, with every overwritten
/// value remembered so any suffix of the block's writes can be undone; `commit` writes the keys whose value
/// differs from the last committed version into the tree as the next version.
///
/// `apply()` is a no-op (changes already live in the pending state) and `reset()` undoes everything since the
/// last commit; finer rollback goes through [`checkpoint`]/[`revert_to`]. The tree's root depends on the key set
/// alone, so a rolled-back write leaves no trace in it.
#[derive(Clone, Debug)]
pub struct JournaledStore {
    tree: VersionedTree,
    /// The latest state, pending writes included, by ICS-24 path: reads at `Pending` and key listings.
    pending: BTreeMap<String, Vec<u8>>,
    journal: Vec<(String, Option<Vec<u8>>)>,
    writes: u64,
    written_bytes: u64,
}

impl Default for JournaledStore {
    fn default() -> Self {
        Self::new()
    }
}

impl JournaledStore {
    /// An empty store with no version committed.
    pub fn new() -> Self {
        Self {
            // Writing the empty version 0 of an empty tree touches no stored node, so it cannot fail.
            tree: VersionedTree::new().unwrap_or_default(),
            pending: BTreeMap::new(),
            journal: Vec::new(),
            writes: 0,
            written_bytes: 0,
        }
    }

    fn undo_to(&mut self, len: usize) {
        while self.journal.len() > len {
            let Some((path, old)) = self.journal.pop() else {
                break;
            };
            match old {
                Some(v) => self.pending.insert(path, v),
                None => self.pending.remove(&path),
            };
        }
    }

    /// The tree version `height` names: `Stable(n)` is the state after the n-th commit, `Latest` the last one.
    fn version(&self, height: Height) -> Option<u64> {
        match height {
            Height::Pending => None,
            Height::Latest => Some(self.tree.latest()),
            Height::Stable(0) => None,
            Height::Stable(n) => Some(n),
        }
    }

    /// The value at `path` in `height`'s state with an ICS-23 proof of it (or of its absence) under that state's
    /// root; a clear error for a version pruned or not committed yet.
    pub fn prove(
        &self,
        height: u64,
        path: &Path,
    ) -> Result<(Option<Vec<u8>>, CommitmentProof), TreeError> {
        self.tree.prove(height, path.to_string().as_bytes())
    }
}

impl Store for JournaledStore {
    type Error = TreeError;

    fn set(&mut self, path: Path, value: Vec<u8>) -> Result<Option<Vec<u8>>, Self::Error> {
        let key = path.to_string();
        self.writes += 1;
        self.written_bytes += (key.len() + value.len()) as u64;
        let old = self.pending.insert(key.clone(), value);
        self.journal.push((key, old.clone()));
        Ok(old)
    }

    fn get(&self, height: Height, path: &Path) -> Option<Vec<u8>> {
        let key = path.to_string();
        match self.version(height) {
            None if height == Height::Pending => self.pending.get(&key).cloned(),
            None => None,
            Some(v) => self.tree.get(v, key.as_bytes()).ok().flatten(),
        }
    }

    fn delete(&mut self, path: &Path) {
        let key = path.to_string();
        if let Some(old) = self.pending.remove(&key) {
            self.writes += 1;
            self.written_bytes += key.len() as u64;
            self.journal.push((key, Some(old)));
        }
    }

    fn commit(&mut self) -> Result<Vec<u8>, Self::Error> {
        let latest = self.tree.latest();
        // Each path once, as it stands now, and only where it differs from the last committed version.
        let mut touched: HashMap<&str, ()> = HashMap::with_capacity(self.journal.len());
        let mut changes = Vec::new();
        for (path, _) in &self.journal {
            if touched.insert(path.as_str(), ()).is_some() {
                continue;
            }
            let now = self.pending.get(path);
            let before = self.tree.get(latest, path.as_bytes())?;
            if now != before.as_ref() {
                changes.push((path.clone().into_bytes(), now.cloned()));
            }
        }
        self.tree.commit(changes)?;
        self.journal.clear();
        Ok(self.root_hash())
    }

    fn apply(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn reset(&mut self) {
        self.undo_to(0);
    }

    /// Drops versions `1..=height`: `Stable(height + 1)` becomes the oldest readable.
    fn prune(&mut self, height: RawHeight) -> Result<RawHeight, Self::Error> {
        self.tree.prune_below(height + 1);
        Ok(height)
    }

    fn current_height(&self) -> RawHeight {
        self.tree.latest()
    }

    fn get_keys(&self, key_prefix: &Path) -> Vec<Path> {
        let prefix = key_prefix.to_string();
        self.pending
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| Path::from(k.clone()))
            .collect()
    }
}

impl ProvableStore for JournaledStore {
    /// The root of the last committed version.
    fn root_hash(&self) -> Vec<u8> {
        self.tree.root().to_vec()
    }

    fn get_proof(&self, height: Height, key: &Path) -> Option<CommitmentProof> {
        let v = self.version(height)?;
        self.prove(v, key).ok().map(|(_, p)| p)
    }
}

/// The store type every part of the app shares.
pub type Shared = SharedStore<JournaledStore>;

/// A new, empty shared store.
pub fn new_shared() -> Shared {
    SharedStore::new(JournaledStore::default())
}

// A poisoned lock means a panic happened while writing; the devnet process is going down anyway, and the data
// is still structurally valid, so keep serving rather than cascading panics.
fn read(s: &Shared) -> RwLockReadGuard<'_, JournaledStore> {
    s.read().unwrap_or_else(|e| e.into_inner())
}

fn write(s: &Shared) -> RwLockWriteGuard<'_, JournaledStore> {
    s.write().unwrap_or_else(|e| e.into_inner())
}

/// `JournaledStore::prove` through the shared handle.
pub fn prove(
    s: &Shared,
    height: u64,
    path: &Path,
) -> Result<(Option<Vec<u8>>, CommitmentProof), TreeError> {
    read(s).prove(height, path)
}

/// A position in the pending writes to come back to.
pub fn checkpoint(s: &Shared) -> usize {
    read(s).journal.len()
}

/// Undoes every write made after `checkpoint`.
pub fn revert_to(s: &Shared, checkpoint: usize) {
    write(s).undo_to(checkpoint);
}

/// Every path written (set or deleted) since the last commit, each once, in first-write order; a host that
/// mirrors the store elsewhere copies exactly these at commit.
pub fn pending_paths(s: &Shared) -> Vec<Path> {
    let g = read(s);
    let mut seen = std::collections::HashSet::new();
    g.journal
        .iter()
        .filter(|(p, _)| seen.insert(p.as_str()))
        .map(|(p, _)| Path::from(p.clone()))
        .collect()
}

/// `(writes, bytes written)` since the store was created; differences of two readings price a message's writes.
pub fn write_counters(s: &Shared) -> (u64, u64) {
    let g = read(s);
    (g.writes, g.written_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_restores_values_and_root() {
        let mut s = new_shared();
        s.set("a/b".to_owned().into(), b"1".to_vec()).unwrap();
        s.commit().unwrap();
        let root = s.root_hash();
        let cp = checkpoint(&s);
        s.set("a/b".to_owned().into(), b"2".to_vec()).unwrap();
        s.set("a/c".to_owned().into(), b"3".to_vec()).unwrap();
        s.delete(&"a/b".to_owned().into());
        assert_eq!(s.get(Height::Pending, &"a/b".to_owned().into()), None);
        revert_to(&s, cp);
        assert_eq!(
            s.get(Height::Pending, &"a/b".to_owned().into()),
            Some(b"1".to_vec())
        );
        assert_eq!(s.get(Height::Pending, &"a/c".to_owned().into()), None);
        s.commit().unwrap();
        assert_eq!(s.root_hash(), root);
        assert_eq!(s.current_height(), 2);
    }
}
