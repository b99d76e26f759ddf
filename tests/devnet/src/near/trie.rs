//! NEAR's state trie, rebuilt from a key→value map, so state roots and `view_state` proofs have the byte format
//! nearcore uses and a NEAR proof verifier can walk them.
//!
//! Facts taken from nearcore (`core/store/src/trie/raw_node.rs`, `nibble_slice.rs`, `mem/node/view.rs`,
//! `trie/mod.rs`):
//! - a node is stored as borsh `RawTrieNodeWithSize { node: RawTrieNode, memory_usage: u64 }` with
//!   `RawTrieNode = Leaf(Vec<u8>, ValueRef) = 0 | BranchNoValue(Children) = 1 |
//!   BranchWithValue(ValueRef, Children) = 2 | Extension(Vec<u8>, CryptoHash) = 3`;
//! - `Children` is a little-endian u16 bitmap (bit i = child i present) followed by the present children's
//!   hashes in index order; `ValueRef` is `{ length: u32, hash: sha256(value) }`;
//! - a node's hash is sha256 of its borsh bytes; the empty trie's root is 32 zero bytes;
//! - keys are split into nibbles, high nibble first; leaf and extension keys are hex-prefix encoded: first byte
//!   `(odd ? 0x10 | first_nibble : 0) | (leaf ? 0x20 : 0)`, then the remaining nibbles two per byte;
//! - memory usage (part of the hash), with key byte 2, value byte 1, node 50: leaf `50 + 2·|encoded key| +
//!   |value| + 50`; branch `50 + (|value| + 50 if it has one) + Σ children`; extension `50 + 2·|encoded key| +
//!   child`.
//!
//! The trie is canonical (one shape per key set), so rebuilding it from the map gives the root nearcore would.

use std::collections::BTreeMap;

use borsh::BorshSerialize;
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::state::ValueRef;

const BYTE_OF_KEY: u64 = 2;
const BYTE_OF_VALUE: u64 = 1;
const NODE_COST: u64 = 50;

/// The root of an empty trie.
pub const EMPTY_ROOT: CryptoHash = CryptoHash([0; 32]);

/// A node's children by nibble.
#[derive(Clone, Default)]
struct Children([Option<CryptoHash>; 16]);

impl BorshSerialize for Children {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        let mut bitmap: u16 = 0;
        for (i, c) in self.0.iter().enumerate() {
            if c.is_some() {
                bitmap |= 1 << i;
            }
        }
        bitmap.serialize(w)?;
        for c in self.0.iter().flatten() {
            c.serialize(w)?;
        }
        Ok(())
    }
}

/// nearcore's `RawTrieNode`; variant order gives the borsh tags.
#[derive(BorshSerialize)]
enum RawTrieNode {
    Leaf(Vec<u8>, ValueRef),
    BranchNoValue(Children),
    BranchWithValue(ValueRef, Children),
    Extension(Vec<u8>, CryptoHash),
}

/// nearcore's `RawTrieNodeWithSize`.
#[derive(BorshSerialize)]
struct RawTrieNodeWithSize {
    node: RawTrieNode,
    memory_usage: u64,
}

/// Splits a key into nibbles, high nibble first.
pub fn nibbles(key: &[u8]) -> Vec<u8> {
    key.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect()
}

/// Hex-prefix encodes a nibble path as nearcore stores leaf and extension keys.
pub fn encode_nibbles(path: &[u8], is_leaf: bool) -> Vec<u8> {
    let flag = if is_leaf { 0x20 } else { 0 };
    let mut out = Vec::with_capacity(path.len() / 2 + 1);
    let rest = if path.len() % 2 == 1 {
        out.push(flag | 0x10 | path[0]);
        &path[1..]
    } else {
        out.push(flag);
        path
    };
    for pair in rest.chunks(2) {
        out.push((pair[0] << 4) | pair[1]);
    }
    out
}

fn value_ref(value: &[u8]) -> ValueRef {
    ValueRef {
        // State values are far below 4 GiB; saturating keeps this total.
        length: u32::try_from(value.len()).unwrap_or(u32::MAX),
        hash: hash(value),
    }
}

/// A built node: its encoding, hash, memory usage and (for walking) its children.
struct Node {
    raw: Vec<u8>,
    hash: CryptoHash,
    memory_usage: u64,
    kind: Kind,
}

enum Kind {
    Leaf,
    Extension { path: Vec<u8>, child: Box<Node> },
    Branch { children: Vec<(u8, Node)> },
}

impl Node {
    fn new(node: RawTrieNode, memory_usage: u64, kind: Kind) -> Self {
        let raw = borsh::to_vec(&RawTrieNodeWithSize { node, memory_usage })
            // Writing into a Vec cannot fail.
            .unwrap_or_default();
        Self {
            hash: hash(&raw),
            raw,
            memory_usage,
            kind,
        }
    }
}

/// `entries` are sorted by key, non-empty, and all share the first `depth` nibbles.
fn build(entries: &[(Vec<u8>, &[u8])], depth: usize) -> Node {
    if let [(key, value)] = entries {
        let path = key[depth..].to_vec();
        let encoded = encode_nibbles(&path, true);
        let mem = NODE_COST
            + encoded.len() as u64 * BYTE_OF_KEY
            + value.len() as u64 * BYTE_OF_VALUE
            + NODE_COST;
        return Node::new(
            RawTrieNode::Leaf(encoded, value_ref(value)),
            mem,
            Kind::Leaf,
        );
    }
    // Longest common prefix below `depth`; sorted keys make first/last enough.
    let first = &entries[0].0[depth..];
    let last = &entries[entries.len() - 1].0[depth..];
    let common = first.iter().zip(last).take_while(|(a, b)| a == b).count();
    if common > 0 {
        let path = first[..common].to_vec();
        let child = build(entries, depth + common);
        let encoded = encode_nibbles(&path, false);
        let mem = NODE_COST + encoded.len() as u64 * BYTE_OF_KEY + child.memory_usage;
        return Node::new(
            RawTrieNode::Extension(encoded, child.hash),
            mem,
            Kind::Extension {
                path,
                child: Box::new(child),
            },
        );
    }
    let (value, rest) = match entries.first() {
        Some((key, value)) if key.len() == depth => (Some(*value), &entries[1..]),
        _ => (None, entries),
    };
    let mut children = Vec::new();
    let mut hashes = Children::default();
    let mut mem = NODE_COST;
    let mut start = 0;
    while start < rest.len() {
        let nibble = rest[start].0[depth];
        let end = start
            + rest[start..]
                .iter()
                .take_while(|(k, _)| k[depth] == nibble)
                .count();
        let child = build(&rest[start..end], depth + 1);
        hashes.0[usize::from(nibble)] = Some(child.hash);
        mem += child.memory_usage;
        children.push((nibble, child));
        start = end;
    }
    let node = match value {
        Some(v) => {
            mem += v.len() as u64 * BYTE_OF_VALUE + NODE_COST;
            RawTrieNode::BranchWithValue(value_ref(v), hashes)
        }
        None => RawTrieNode::BranchNoValue(hashes),
    };
    Node::new(node, mem, Kind::Branch { children })
}

/// A trie built over a snapshot of the state.
pub struct Trie {
    root: Option<Node>,
}

impl Trie {
    /// Builds the trie of `state`.
    pub fn build(state: &BTreeMap<Vec<u8>, Vec<u8>>) -> Self {
        if state.is_empty() {
            return Self { root: None };
        }
        let entries: Vec<(Vec<u8>, &[u8])> = state
            .iter()
            .map(|(k, v)| (nibbles(k), v.as_slice()))
            .collect();
        Self {
            root: Some(build(&entries, 0)),
        }
    }

    /// The state root.
    pub fn root(&self) -> CryptoHash {
        self.root.as_ref().map_or(EMPTY_ROOT, |n| n.hash)
    }

    /// The encoded nodes a reader visits to list every key starting with `prefix`, root first: the nodes on the
    /// way down to `prefix` and every node below it. They prove both the values found and, when nothing is
    /// found, the absence of any key with that prefix.
    pub fn prefix_proof(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            visit(root, &nibbles(prefix), &mut out);
        }
        out
    }
}

fn visit(node: &Node, rest: &[u8], out: &mut Vec<Vec<u8>>) {
    out.push(node.raw.clone());
    if rest.is_empty() {
        subtree(node, out);
        return;
    }
    match &node.kind {
        Kind::Leaf => {}
        Kind::Extension { path, child } => {
            let n = path.len().min(rest.len());
            if path[..n] == rest[..n] {
                if rest.len() <= path.len() {
                    visit(child, &[], out);
                } else {
                    visit(child, &rest[path.len()..], out);
                }
            }
        }
        Kind::Branch { children } => {
            if let Some((_, child)) = children.iter().find(|(n, _)| *n == rest[0]) {
                visit(child, &rest[1..], out);
            }
        }
    }
}

fn subtree(node: &Node, out: &mut Vec<Vec<u8>>) {
    match &node.kind {
        Kind::Leaf => {}
        Kind::Extension { child, .. } => {
            out.push(child.raw.clone());
            subtree(child, out);
        }
        Kind::Branch { children } => {
            for (_, child) in children {
                out.push(child.raw.clone());
                subtree(child, out);
            }
        }
    }
}

/// Looks `key` up by walking encoded nodes from `root`, as a NEAR proof verifier does; returns the value hash
/// found, `None` for a proven absence, or an error when the nodes do not reach a conclusion.
pub fn lookup_in_proof(
    root: &CryptoHash,
    nodes: &[Vec<u8>],
    key: &[u8],
) -> Result<Option<ValueRef>, String> {
    use borsh::BorshDeserialize;

    #[derive(BorshDeserialize)]
    enum RawNode {
        Leaf(Vec<u8>, ValueRef),
        BranchNoValue(RawChildren),
        BranchWithValue(ValueRef, RawChildren),
        Extension(Vec<u8>, CryptoHash),
    }
    struct RawChildren([Option<CryptoHash>; 16]);
    impl BorshDeserialize for RawChildren {
        fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
            let bitmap = u16::deserialize_reader(r)?;
            let mut c = [None; 16];
            for (i, slot) in c.iter_mut().enumerate() {
                if bitmap & (1 << i) != 0 {
                    *slot = Some(CryptoHash::deserialize_reader(r)?);
                }
            }
            Ok(Self(c))
        }
    }
    #[derive(BorshDeserialize)]
    struct WithSize {
        node: RawNode,
        _memory_usage: u64,
    }
    fn decode_path(encoded: &[u8]) -> Result<Vec<u8>, String> {
        let first = *encoded.first().ok_or("empty node key")?;
        let mut path = Vec::new();
        if first & 0x10 != 0 {
            path.push(first & 0x0f);
        }
        path.extend(nibbles(&encoded[1..]));
        Ok(path)
    }

    let by_hash: std::collections::HashMap<CryptoHash, &Vec<u8>> =
        nodes.iter().map(|n| (hash(n), n)).collect();
    if *root == EMPTY_ROOT {
        return Ok(None);
    }
    let key = nibbles(key);
    let mut rest: &[u8] = &key;
    let mut current = *root;
    loop {
        let raw = by_hash
            .get(&current)
            .ok_or_else(|| format!("node {current} missing from the proof"))?;
        let node = WithSize::try_from_slice(raw)
            .map_err(|e| format!("node {current}: {e}"))?
            .node;
        match node {
            RawNode::Leaf(p, v) => {
                return Ok((decode_path(&p)? == rest).then_some(v));
            }
            RawNode::Extension(p, child) => {
                let p = decode_path(&p)?;
                if !rest.starts_with(&p) {
                    return Ok(None);
                }
                rest = &rest[p.len()..];
                current = child;
            }
            RawNode::BranchNoValue(c) | RawNode::BranchWithValue(_, c) if !rest.is_empty() => {
                match c.0[usize::from(rest[0])] {
                    Some(child) => {
                        rest = &rest[1..];
                        current = child;
                    }
                    None => return Ok(None),
                }
            }
            RawNode::BranchWithValue(v, _) => return Ok(Some(v)),
            RawNode::BranchNoValue(_) => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibble_encoding_follows_nearcore() {
        assert_eq!(encode_nibbles(&[1, 2, 3], true), vec![0x31, 0x23]);
        assert_eq!(encode_nibbles(&[1, 2], false), vec![0x00, 0x12]);
        assert_eq!(encode_nibbles(&[], true), vec![0x20]);
    }

    #[test]
    fn leaf_encoding_matches_nearcore_layout() {
        // nearcore raw_node.rs test vector: Leaf([1,2,3], ValueRef{3, sha256([123,245,255])}), memory 42.
        let v = value_ref(&[123, 245, 255]);
        let raw = borsh::to_vec(&RawTrieNodeWithSize {
            node: RawTrieNode::Leaf(vec![1, 2, 3], v),
            memory_usage: 42,
        })
        .unwrap();
        assert_eq!(&raw[..12], &[0, 3, 0, 0, 0, 1, 2, 3, 3, 0, 0, 0]);
        assert_eq!(&raw[12..16], &[194, 40, 8, 24]);
        assert_eq!(&raw[44..], &[42, 0, 0, 0, 0, 0, 0, 0]);
        let mut c = Children::default();
        c.0[3] = Some(CryptoHash([1; 32]));
        c.0[5] = Some(CryptoHash([2; 32]));
        let raw = borsh::to_vec(&RawTrieNode::BranchNoValue(c)).unwrap();
        assert_eq!(&raw[..3], &[1, 40, 0]);
        assert_eq!(raw.len(), 3 + 64);
    }

    #[test]
    fn proofs_prove_membership_and_absence() {
        let mut state = BTreeMap::new();
        for k in [
            "a",
            "ab",
            "abc",
            "b",
            "clients/07-tendermint-0/clientState",
            "x",
        ] {
            state.insert(k.as_bytes().to_vec(), format!("v-{k}").into_bytes());
        }
        let trie = Trie::build(&state);
        let root = trie.root();
        for (k, v) in &state {
            let proof = trie.prefix_proof(k);
            let found = lookup_in_proof(&root, &proof, k).unwrap().unwrap();
            assert_eq!(found.hash, hash(v));
        }
        let proof = trie.prefix_proof(b"abd");
        assert_eq!(lookup_in_proof(&root, &proof, b"abd").unwrap(), None);
        // A changed value changes the root.
        state.insert(b"ab".to_vec(), b"other".to_vec());
        assert_ne!(Trie::build(&state).root(), root);
        assert_eq!(Trie::build(&BTreeMap::new()).root(), EMPTY_ROOT);
    }

    #[test]
    fn root_does_not_depend_on_insertion_history() {
        let mut a = BTreeMap::new();
        a.insert(b"k1".to_vec(), b"1".to_vec());
        a.insert(b"k2".to_vec(), b"2".to_vec());
        let mut b = a.clone();
        b.insert(b"k3".to_vec(), b"3".to_vec());
        b.remove(b"k3".as_slice());
        assert_eq!(Trie::build(&a).root(), Trie::build(&b).root());
    }
}
