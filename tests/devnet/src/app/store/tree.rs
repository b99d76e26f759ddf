//! A versioned Jellyfish Merkle tree (Penumbra's `jmt`) held in memory: each commit writes only the nodes on the
//! paths of the keys it changed, every version shares the rest with its predecessors, and versions older than a
//! window are pruned. It serves values and ICS-23 existence and non-existence proofs at any version still held.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jmt::storage::{
    HasPreimage, LeafNode, Node, NodeKey, StaleNodeIndex, TreeReader, TreeUpdateBatch,
};
use jmt::{KeyHash, OwnedValue, Sha256Jmt, Version};

/// Why the tree could not serve or take a version.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The version was pruned or is not committed yet.
    #[error("version {version} is not held (held: {oldest}..={latest})")]
    NotHeld {
        /// The version asked for.
        version: Version,
        /// The oldest version held.
        oldest: Version,
        /// The latest committed version.
        latest: Version,
    },
    /// ICS-23 non-existence proofs compare key hashes, and the empty key has none to compare.
    #[error("the empty key cannot be proven")]
    EmptyKey,
    /// The tree library failed (a missing node would mean this store lost one: a bug).
    #[error("jellyfish merkle tree: {0}")]
    Jmt(String),
}

/// The nodes, values and key preimages of every version held.
#[derive(Debug, Clone, Default)]
pub struct VersionedTree {
    nodes: HashMap<NodeKey, Node>,
    /// Each key's values by the version that wrote them (`None` = deleted), for versions still readable.
    history: HashMap<KeyHash, BTreeMap<Version, Option<OwnedValue>>>,
    /// Non-existence proofs name their neighbours' keys, which the tree only knows by hash.
    preimages: HashMap<KeyHash, Vec<u8>>,
    /// Nodes replaced by a later version, to drop once no held version reaches them.
    stale: BTreeSet<StaleNodeIndex>,
    /// Keys written at each version, whose older values can go when that version becomes the oldest held.
    written: BTreeMap<Version, Vec<KeyHash>>,
    latest: Version,
    oldest: Version,
    root: [u8; 32],
}

/// The hash the tree files `key` under.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<sha2::Sha256>(key)
}

impl VersionedTree {
    /// An empty tree whose version 0 is the empty state.
    pub fn new() -> Result<Self, TreeError> {
        let mut t = Self::default();
        let (root, batch) = Sha256Jmt::new(&t)
            .put_value_set(Vec::new(), 0)
            .map_err(|e| TreeError::Jmt(e.to_string()))?;
        t.apply(batch);
        t.root = root.0;
        Ok(t)
    }

    /// The latest committed version.
    pub fn latest(&self) -> Version {
        self.latest
    }

    /// The root hash of the latest version.
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// Writes `changes` (key, new value or `None` to delete) as the next version and returns its number.
    pub fn commit(
        &mut self,
        changes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<Version, TreeError> {
        let version = self.latest + 1;
        let mut set = Vec::with_capacity(changes.len());
        let mut written = Vec::with_capacity(changes.len());
        for (key, value) in changes {
            let hash = key_hash(&key);
            if value.is_some() {
                self.preimages.entry(hash).or_insert(key);
            }
            written.push(hash);
            set.push((hash, value));
        }
        let (root, batch) = Sha256Jmt::new(&*self)
            .put_value_set(set, version)
            .map_err(|e| TreeError::Jmt(e.to_string()))?;
        self.apply(batch);
        self.written.insert(version, written);
        self.latest = version;
        self.root = root.0;
        Ok(version)
    }

    fn apply(&mut self, batch: TreeUpdateBatch) {
        let (nodes, values) = (batch.node_batch.nodes(), batch.node_batch.values());
        self.nodes
            .extend(nodes.iter().map(|(k, n)| (k.clone(), n.clone())));
        for ((version, hash), value) in values {
            self.history
                .entry(*hash)
                .or_default()
                .insert(*version, value.clone());
        }
        self.stale.extend(batch.stale_node_index_batch);
    }

    /// Makes `oldest` the oldest readable version: drops the nodes and values only older versions reached.
    pub fn prune_below(&mut self, oldest: Version) {
        let oldest = oldest.min(self.latest);
        if oldest <= self.oldest {
            return;
        }
        // A node made stale at version v is still part of every version before v.
        while let Some(first) = self.stale.first() {
            if first.stale_since_version > oldest {
                break;
            }
            if let Some(i) = self.stale.pop_first() {
                self.nodes.remove(&i.node_key);
            }
        }
        // A value written at version v hides every older value of its key from versions v and later.
        let later = self.written.split_off(&(oldest + 1));
        let done = std::mem::replace(&mut self.written, later);
        for (version, keys) in done {
            for hash in keys {
                let Some(h) = self.history.get_mut(&hash) else {
                    continue;
                };
                let kept = h.split_off(&version);
                *h = kept;
                // A deletion with nothing older left to hide reads the same as no entry.
                if matches!(h.first_key_value(), Some((v, None)) if *v == version) {
                    h.remove(&version);
                }
                if h.is_empty() {
                    self.history.remove(&hash);
                    self.preimages.remove(&hash);
                }
            }
        }
        self.oldest = oldest;
    }

    fn check_held(&self, version: Version) -> Result<(), TreeError> {
        if version < self.oldest || version > self.latest {
            return Err(TreeError::NotHeld {
                version,
                oldest: self.oldest,
                latest: self.latest,
            });
        }
        Ok(())
    }

    /// The value of `key` at `version`.
    pub fn get(&self, version: Version, key: &[u8]) -> Result<Option<Vec<u8>>, TreeError> {
        self.check_held(version)?;
        Ok(self.value_at(version, key_hash(key)))
    }

    fn value_at(&self, version: Version, hash: KeyHash) -> Option<Vec<u8>> {
        self.history
            .get(&hash)?
            .range(..=version)
            .next_back()
            .and_then(|(_, v)| v.clone())
    }

    /// The value of `key` at `version` with an ICS-23 proof of it, or of its absence, under that version's root.
    pub fn prove(
        &self,
        version: Version,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, ics23::CommitmentProof), TreeError> {
        self.check_held(version)?;
        if key.is_empty() {
            return Err(TreeError::EmptyKey);
        }
        Sha256Jmt::new(self)
            .get_with_ics23_proof(key.to_vec(), version)
            .map_err(|e| TreeError::Jmt(e.to_string()))
    }

    /// The root hash of `version`.
    #[cfg(test)]
    pub fn root_at(&self, version: Version) -> Result<[u8; 32], TreeError> {
        self.check_held(version)?;
        Sha256Jmt::new(self)
            .get_root_hash(version)
            .map(|r| r.0)
            .map_err(|e| TreeError::Jmt(e.to_string()))
    }

    /// How many tree nodes are held (all versions together).
    #[cfg(test)]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl TreeReader for VersionedTree {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(node_key).cloned())
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.value_at(max_version, key_hash))
    }

    // Only the tree's restore and migration paths ask for it; this store uses neither.
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(self
            .nodes
            .iter()
            .filter_map(|(k, n)| match n {
                Node::Leaf(l) => Some((k, l)),
                _ => None,
            })
            .max_by_key(|(_, l)| l.key_hash())
            .map(|(k, l)| (k.clone(), l.clone())))
    }
}

impl HasPreimage for VersionedTree {
    fn preimage(&self, key_hash: KeyHash) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.preimages.get(&key_hash).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ics23::HostFunctionsManager;

    fn exists(t: &VersionedTree, v: Version, key: &[u8], value: &[u8]) -> bool {
        let (got, proof) = t.prove(v, key).unwrap();
        got.as_deref() == Some(value)
            && ics23::verify_membership::<HostFunctionsManager>(
                &proof,
                &jmt::ics23_spec(),
                &t.root_at(v).unwrap().to_vec(),
                key,
                value,
            )
    }

    fn absent(t: &VersionedTree, v: Version, key: &[u8]) -> bool {
        let (got, proof) = t.prove(v, key).unwrap();
        got.is_none()
            && ics23::verify_non_membership::<HostFunctionsManager>(
                &proof,
                &jmt::ics23_spec(),
                &t.root_at(v).unwrap().to_vec(),
                key,
            )
    }

    fn put(t: &mut VersionedTree, kvs: &[(&str, Option<&str>)]) -> Version {
        t.commit(
            kvs.iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn old_versions_keep_their_values_and_proofs() {
        let mut t = VersionedTree::new().unwrap();
        let v1 = put(&mut t, &[("a", Some("1")), ("b", Some("2"))]);
        let v2 = put(&mut t, &[("a", Some("3")), ("b", None), ("c", Some("4"))]);
        let v3 = put(&mut t, &[]);
        assert!(exists(&t, v1, b"a", b"1"));
        assert!(exists(&t, v1, b"b", b"2"));
        assert!(absent(&t, v1, b"c"));
        assert!(exists(&t, v2, b"a", b"3"));
        assert!(absent(&t, v2, b"b"));
        assert!(exists(&t, v3, b"c", b"4"));
        assert_eq!(t.root_at(v2).unwrap(), t.root_at(v3).unwrap());
        assert_ne!(t.root_at(v1).unwrap(), t.root_at(v2).unwrap());
        // A proof of one version does not verify against another's root.
        let (_, p) = t.prove(v1, b"a").unwrap();
        assert!(!ics23::verify_membership::<HostFunctionsManager>(
            &p,
            &jmt::ics23_spec(),
            &t.root_at(v2).unwrap().to_vec(),
            b"a",
            b"1"
        ));
    }

    #[test]
    fn non_existence_is_proven_for_every_absent_key() {
        let mut t = VersionedTree::new().unwrap();
        let keys: Vec<String> = (0..200)
            .map(|i| format!("commitments/ports/transfer/channels/channel-0/sequences/{i}"))
            .collect();
        let v = t
            .commit(
                keys.iter()
                    .step_by(2)
                    .map(|k| (k.clone().into_bytes(), Some(b"x".to_vec())))
                    .collect(),
            )
            .unwrap();
        for (i, k) in keys.iter().enumerate() {
            if i % 2 == 0 {
                assert!(exists(&t, v, k.as_bytes(), b"x"), "{k}");
            } else {
                assert!(absent(&t, v, k.as_bytes()), "{k}");
            }
        }
        assert!(matches!(t.prove(v, b""), Err(TreeError::EmptyKey)));
    }

    #[test]
    fn pruning_drops_old_versions_and_what_only_they_reached() {
        let mut t = VersionedTree::new().unwrap();
        put(&mut t, &[("a", Some("1")), ("gone", Some("x"))]);
        for i in 0..20 {
            put(&mut t, &[("a", Some(&i.to_string()))]);
        }
        let v = put(&mut t, &[("gone", None)]);
        let before = t.node_count();
        t.prune_below(v);
        assert!(t.node_count() < before);
        assert!(matches!(t.get(v - 1, b"a"), Err(TreeError::NotHeld { .. })));
        assert!(exists(&t, v, b"a", b"19"));
        assert!(absent(&t, v, b"gone"));
        // The deleted key's history and preimage went with the versions that held it.
        assert!(!t.history.contains_key(&key_hash(b"gone")));
        assert!(!t.preimages.contains_key(&key_hash(b"gone")));
        let next = put(&mut t, &[("b", Some("2"))]);
        assert!(exists(&t, next, b"a", b"19"));
        assert!(exists(&t, next, b"b", b"2"));
    }
}
