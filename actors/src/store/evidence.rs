//! Misbehaviour evidence relayd found, kept across restarts: an operator must still see, after relayd or its
//! watcher restarted, that a chain's validators signed two histories and what relayd did about it.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{decode, encode, StateStore, StoreError};

impl StateStore {
    /// Appends one report to the evidence list, keeping the newest `keep`, and writes it to disk before
    /// returning (evidence is rare and must not be lost to a crash).
    pub fn put_evidence<T: Serialize>(&self, report: &T, keep: usize) -> Result<(), StoreError> {
        let t = self.trees();
        let id = t.db.generate_id()?;
        t.evidence
            .insert(id.to_be_bytes(), encode("misbehaviour", report)?)?;
        while t.evidence.len() > keep {
            let Some((oldest, _)) = t.evidence.first()? else {
                break;
            };
            t.evidence.remove(oldest)?;
        }
        t.evidence.flush()?;
        Ok(())
    }

    /// The evidence list, oldest first.
    pub fn evidence<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.trees()
            .evidence
            .iter()
            .map(|item| {
                let (k, v) = item?;
                decode(&format!("misbehaviour/{}", hex::encode(&k)), &v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::StateStore;

    #[test]
    fn evidence_is_kept_newest_last_and_read_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        {
            let store = StateStore::open(&path).unwrap();
            for n in 0..5u32 {
                store.put_evidence(&n, 3).unwrap();
            }
            assert_eq!(store.evidence::<u32>().unwrap(), vec![2, 3, 4]);
        }
        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.evidence::<u32>().unwrap(), vec![2, 3, 4]);
    }
}
