//! Checks NEAR state proofs (`query view_state` with `include_proof`): that a contract storage key holds a value,
//! or nothing, under a shard state root. This is how relayd trusts IBC state read from a NEAR node.
//!
//! Format facts from nearcore `core/store/src/trie/raw_node.rs` and `nibble_slice.rs`: a node is the borsh of
//! `RawTrieNodeWithSize { node: RawTrieNode, memory_usage: u64 }` and is named by the sha256 of those bytes;
//! `RawTrieNode` is `Leaf(key, ValueRef)` (tag 0), `BranchNoValue(Children)` (1), `BranchWithValue(ValueRef,
//! Children)` (2) or `Extension(key, child)` (3); `ValueRef` is `{ length: u32, hash: sha256(value) }`;
//! `Children` is a u16 bitmap of present children followed by their hashes; leaf and extension keys are
//! hex-prefix nibble encodings. The trie key of contract data is `[9] ++ account_id ++ [b','] ++ storage key`
//! (nearcore `TrieKey::ContractData`).

use std::collections::HashMap;

use near_primitives::hash::CryptoHash;

use super::light_client::sha256;

/// nearcore `col::CONTRACT_DATA`: the first byte of every contract storage trie key.
pub const CONTRACT_DATA: u8 = 9;
/// nearcore `ACCOUNT_DATA_SEPARATOR`: between the account id and the contract's own key.
pub const ACCOUNT_DATA_SEPARATOR: u8 = b',';

/// The trie key of `key` in the storage of contract `account`.
pub fn contract_data_key(account: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(account.len() + key.len() + 2);
    out.push(CONTRACT_DATA);
    out.extend_from_slice(account.as_bytes());
    out.push(ACCOUNT_DATA_SEPARATOR);
    out.extend_from_slice(key);
    out
}

/// A value reference in a trie node: the value's length and sha256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueRef {
    /// Length in bytes.
    pub length: u32,
    /// sha256 of the value.
    pub hash: CryptoHash,
}

/// One decoded trie node (nearcore `RawTrieNode`); `memory_usage` is only hashed, never interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrieNode {
    /// The rest of a key (nibble encoded) and its value.
    Leaf(Vec<u8>, ValueRef),
    /// Up to 16 children and, where a key ends here, its value.
    Branch(Option<ValueRef>, Box<[Option<CryptoHash>; 16]>),
    /// A shared run of nibbles (encoded) and the node below it.
    Extension(Vec<u8>, CryptoHash),
}

/// Why a state proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrieProofError {
    /// The walk needs a node the proof does not hold.
    #[error("the proof lacks trie node {hash} at nibble {depth} of the key")]
    MissingNode {
        /// The node's hash.
        hash: CryptoHash,
        /// How many nibbles of the key were consumed when it was needed.
        depth: usize,
    },
    /// A proof item named on the walk is not a trie node.
    #[error("trie node {hash} does not decode: {reason}")]
    BadNode {
        /// The item's hash.
        hash: CryptoHash,
        /// What is wrong with it.
        reason: String,
    },
    /// The trie holds a value at the key, and it is not the one claimed.
    #[error("the trie holds a value of {length} bytes with hash {hash} at the key, not the claimed value")]
    ValueMismatch {
        /// Length in the trie.
        length: u32,
        /// Hash in the trie.
        hash: CryptoHash,
    },
    /// A value was claimed and the trie proves the key absent.
    #[error("the proof shows the key is absent")]
    Absent,
    /// Absence was claimed and the trie holds a value at the key.
    #[error("absence was claimed, the trie holds a value of {length} bytes at the key")]
    Present {
        /// Length in the trie.
        length: u32,
    },
}

/// Decodes a trie node from its borsh bytes; the trailing `memory_usage` must be there and nothing after it.
pub fn decode_node(bytes: &[u8]) -> Result<TrieNode, String> {
    let mut r = Reader { bytes, at: 0 };
    let node = match r.u8()? {
        0 => {
            let key = r.vec()?;
            TrieNode::Leaf(key, r.value_ref()?)
        }
        1 => TrieNode::Branch(None, r.children()?),
        2 => {
            let value = r.value_ref()?;
            TrieNode::Branch(Some(value), r.children()?)
        }
        3 => {
            let key = r.vec()?;
            TrieNode::Extension(key, r.hash()?)
        }
        tag => return Err(format!("unknown node tag {tag}")),
    };
    r.take(8)?;
    if r.at != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - r.at));
    }
    Ok(node)
}

/// A bounds-checked borsh reader for the few shapes trie nodes use.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn hash(&mut self) -> Result<CryptoHash, String> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(CryptoHash(out))
    }

    fn vec(&mut self) -> Result<Vec<u8>, String> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    fn value_ref(&mut self) -> Result<ValueRef, String> {
        let length = self.u32()?;
        Ok(ValueRef {
            length,
            hash: self.hash()?,
        })
    }

    fn children(&mut self) -> Result<Box<[Option<CryptoHash>; 16]>, String> {
        let bitmap = self.u16()?;
        let mut children: Box<[Option<CryptoHash>; 16]> = Box::new([None; 16]);
        for (i, child) in children.iter_mut().enumerate() {
            if bitmap & (1 << i) != 0 {
                *child = Some(self.hash()?);
            }
        }
        Ok(children)
    }
}

/// The nibbles of a byte string, high nibble first.
pub fn nibbles(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect()
}

/// Decodes a hex-prefix key: `(nibbles, is_leaf)`. An odd length puts the first nibble in the prefix byte.
pub fn decode_key(encoded: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let (&first, rest) = encoded.split_first().ok_or("empty node key")?;
    let is_leaf = first & 0x20 != 0;
    let mut out = Vec::with_capacity(rest.len() * 2 + 1);
    if first & 0x10 != 0 {
        out.push(first & 0x0f);
    }
    out.extend(nibbles(rest));
    Ok((out, is_leaf))
}

/// Encodes nibbles as a hex-prefix key (nearcore `NibbleSlice::encode_nibbles`).
pub fn encode_key(nibbles: &[u8], is_leaf: bool) -> Vec<u8> {
    let odd = nibbles.len() % 2 == 1;
    let mut out = Vec::with_capacity(nibbles.len() / 2 + 1);
    let flag = if is_leaf { 0x20 } else { 0 };
    out.push(if odd { 0x10 + nibbles[0] } else { 0 } + flag);
    let rest = if odd { &nibbles[1..] } else { nibbles };
    out.extend(rest.chunks(2).map(|pair| pair[0] * 16 + pair[1]));
    out
}

/// Looks `key` up in the trie under `root` using only the proof's items: `Ok(Some(value_ref))` where the key holds
/// a value, `Ok(None)` where the proof shows it holds none.
pub fn lookup(
    root: &CryptoHash,
    key: &[u8],
    proof: &[Vec<u8>],
) -> Result<Option<ValueRef>, TrieProofError> {
    let items: HashMap<CryptoHash, &[u8]> = proof
        .iter()
        .map(|item| (sha256(item), item.as_slice()))
        .collect();
    let key = nibbles(key);
    let mut at = 0usize;
    let mut hash = *root;
    loop {
        // nearcore's empty trie has the all-zero root and no node.
        if hash == CryptoHash::default() {
            return Ok(None);
        }
        let bytes = items
            .get(&hash)
            .ok_or(TrieProofError::MissingNode { hash, depth: at })?;
        let node = decode_node(bytes).map_err(|reason| TrieProofError::BadNode { hash, reason })?;
        let bad = |reason: String| TrieProofError::BadNode { hash, reason };
        match node {
            TrieNode::Leaf(encoded, value) => {
                let (rest, is_leaf) = decode_key(&encoded).map_err(bad)?;
                if !is_leaf {
                    return Err(bad("leaf key without the leaf flag".to_owned()));
                }
                return Ok((key[at..] == rest[..]).then_some(value));
            }
            TrieNode::Extension(encoded, child) => {
                let (run, is_leaf) = decode_key(&encoded).map_err(bad)?;
                if is_leaf || run.is_empty() {
                    return Err(bad("extension key is empty or flagged as a leaf".to_owned()));
                }
                if !key[at..].starts_with(&run) {
                    return Ok(None);
                }
                at += run.len();
                hash = child;
            }
            TrieNode::Branch(value, children) => {
                let Some(&nibble) = key.get(at) else {
                    return Ok(value);
                };
                match children[usize::from(nibble)] {
                    Some(child) => {
                        at += 1;
                        hash = child;
                    }
                    None => return Ok(None),
                }
            }
        }
    }
}

/// Checks that contract `account`'s storage `key` holds `value` (`Some`) or nothing (`None`) in the shard state
/// under `state_root`, using the nodes of a `view_state` proof.
pub fn verify_contract_state(
    state_root: &CryptoHash,
    account: &str,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &[Vec<u8>],
) -> Result<(), TrieProofError> {
    let found = lookup(state_root, &contract_data_key(account, key), proof)?;
    match (found, value) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(TrieProofError::Absent),
        (Some(found), None) => Err(TrieProofError::Present {
            length: found.length,
        }),
        (Some(found), Some(value)) => {
            if u32::try_from(value.len()).ok() == Some(found.length) && sha256(value) == found.hash
            {
                Ok(())
            } else {
                Err(TrieProofError::ValueMismatch {
                    length: found.length,
                    hash: found.hash,
                })
            }
        }
    }
}

/// Encodes a trie node the way nearcore stores it; used to build tries in tests and by anything that must
/// produce nodes relayd can check.
pub fn encode_node(node: &TrieNode, memory_usage: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let value_ref = |out: &mut Vec<u8>, v: &ValueRef| {
        out.extend_from_slice(&v.length.to_le_bytes());
        out.extend_from_slice(&v.hash.0);
    };
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    match node {
        TrieNode::Leaf(key, value) => {
            out.push(0);
            bytes(&mut out, key);
            value_ref(&mut out, value);
        }
        TrieNode::Branch(value, children) => {
            match value {
                None => out.push(1),
                Some(v) => {
                    out.push(2);
                    value_ref(&mut out, v);
                }
            }
            let bitmap = children
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_some())
                .fold(0u16, |m, (i, _)| m | (1 << i));
            out.extend_from_slice(&bitmap.to_le_bytes());
            for child in children.iter().flatten() {
                out.extend_from_slice(&child.0);
            }
        }
        TrieNode::Extension(key, child) => {
            out.push(3);
            bytes(&mut out, key);
            out.extend_from_slice(&child.0);
        }
    }
    out.extend_from_slice(&memory_usage.to_le_bytes());
    out
}

/// Builds tries the way nearcore shapes them, for tests of code that checks proofs.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use std::collections::BTreeMap;

    /// Key nibbles and value.
    pub(crate) type Entry = (Vec<u8>, Vec<u8>);

    /// Builds a trie the way nearcore shapes one (a leaf for a lone key, an extension for a shared run of
    /// nibbles, a branch where keys fork or one ends) and returns its root; every node lands in `store`.
    pub(crate) fn build(
        entries: &[(Vec<u8>, Vec<u8>)],
        store: &mut HashMap<CryptoHash, Vec<u8>>,
    ) -> CryptoHash {
        let value_ref = |v: &[u8]| ValueRef {
            length: v.len() as u32,
            hash: sha256(v),
        };
        if let [(key, value)] = entries {
            return store_node(
                store,
                TrieNode::Leaf(encode_key(key, true), value_ref(value)),
            );
        }
        let first = &entries[0].0;
        let common = entries.iter().fold(first.len(), |n, (k, _)| {
            n.min(k.iter().zip(first).take_while(|(a, b)| a == b).count())
        });
        if common > 0 {
            let rest: Vec<_> = entries
                .iter()
                .map(|(k, v)| (k[common..].to_vec(), v.clone()))
                .collect();
            let child = build(&rest, store);
            return store_node(
                store,
                TrieNode::Extension(encode_key(&first[..common], false), child),
            );
        }
        let mut value = None;
        let mut groups: BTreeMap<u8, Vec<Entry>> = BTreeMap::new();
        for (k, v) in entries {
            match k.split_first() {
                None => value = Some(value_ref(v)),
                Some((n, rest)) => groups
                    .entry(*n)
                    .or_default()
                    .push((rest.to_vec(), v.clone())),
            }
        }
        let mut children: Box<[Option<CryptoHash>; 16]> = Box::new([None; 16]);
        for (n, group) in groups {
            children[usize::from(n)] = Some(build(&group, store));
        }
        store_node(store, TrieNode::Branch(value, children))
    }

    pub(crate) fn store_node(
        store: &mut HashMap<CryptoHash, Vec<u8>>,
        node: TrieNode,
    ) -> CryptoHash {
        let bytes = encode_node(&node, 100);
        let hash = sha256(&bytes);
        store.insert(hash, bytes);
        hash
    }
}

#[cfg(test)]
mod tests;
