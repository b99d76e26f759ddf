//! A basecoin `InMemoryStore` with an undo journal, so a failed transaction is rolled back in O(its writes)
//! instead of the O(whole state) copy that `InMemoryStore::apply`/`reset` make on every transaction.

use core::convert::Infallible;
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use basecoin_store::context::{ProvableStore, Store};
use basecoin_store::impls::{InMemoryStore, SharedStore};
use basecoin_store::types::{Height, Path, RawHeight};
use ics23::CommitmentProof;

/// A versioned AVL store whose pending (uncommitted) state is changed in place, with every overwritten value
/// remembered so any suffix of the block's writes can be undone.
///
/// `apply()` is a no-op (changes already live in the pending state) and `reset()` undoes everything since the
/// last commit; finer rollback goes through [`checkpoint`]/[`revert_to`]. Undoing a write re-inserts or deletes
/// keys, which may leave the AVL tree in a different (equally valid) shape than before, so the root after a
/// rollback is a deterministic function of the operation history rather than of the key set alone. A single
/// devnet node replays nothing, and two nodes given the same blocks make the same operations, so this is fine.
#[derive(Clone, Debug, Default)]
pub struct JournaledStore {
    inner: InMemoryStore,
    journal: Vec<(Path, Option<Vec<u8>>)>,
    writes: u64,
    written_bytes: u64,
}

impl JournaledStore {
    fn undo_to(&mut self, len: usize) {
        while self.journal.len() > len {
            let Some((path, old)) = self.journal.pop() else {
                break;
            };
            // InMemoryStore's set/delete are infallible (Error = Infallible).
            match old {
                Some(v) => {
                    let _ = self.inner.set(path, v);
                }
                None => self.inner.delete(&path),
            }
        }
    }
}

impl Store for JournaledStore {
    type Error = Infallible;

    fn set(&mut self, path: Path, value: Vec<u8>) -> Result<Option<Vec<u8>>, Self::Error> {
        self.writes += 1;
        self.written_bytes += (path.to_string().len() + value.len()) as u64;
        let old = self.inner.set(path.clone(), value)?;
        self.journal.push((path, old.clone()));
        Ok(old)
    }

    fn get(&self, height: Height, path: &Path) -> Option<Vec<u8>> {
        self.inner.get(height, path)
    }

    fn delete(&mut self, path: &Path) {
        if let Some(old) = self.inner.get(Height::Pending, path) {
            self.writes += 1;
            self.written_bytes += path.to_string().len() as u64;
            self.inner.delete(path);
            self.journal.push((path.clone(), Some(old)));
        }
    }

    fn commit(&mut self) -> Result<Vec<u8>, Self::Error> {
        self.journal.clear();
        self.inner.commit()
    }

    fn apply(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn reset(&mut self) {
        self.undo_to(0);
    }

    fn prune(&mut self, height: RawHeight) -> Result<RawHeight, Self::Error> {
        self.inner.prune(height)
    }

    fn current_height(&self) -> RawHeight {
        self.inner.current_height()
    }

    fn get_keys(&self, key_prefix: &Path) -> Vec<Path> {
        self.inner.get_keys(key_prefix)
    }
}

impl ProvableStore for JournaledStore {
    fn root_hash(&self) -> Vec<u8> {
        self.inner.root_hash()
    }

    fn get_proof(&self, height: Height, key: &Path) -> Option<CommitmentProof> {
        self.inner.get_proof(height, key)
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
        .filter(|(p, _)| seen.insert(p.to_string()))
        .map(|(p, _)| p.clone())
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
