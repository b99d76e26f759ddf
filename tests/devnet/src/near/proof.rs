//! Merkle paths for the NEAR devnet's `light_client_proof`: an execution outcome's path in its block's outcome
//! tree (nearcore `merklize`), and a block's path in the block merkle tree a later header's `block_merkle_root`
//! commits to (nearcore `PartialMerkleTree`).
//!
//! Facts from nearcore `core/primitives/src/merkle.rs`: `PartialMerkleTree` keeps the roots of the perfect subtrees
//! of its leaves, largest (leftmost) first, and its root folds them from the right:
//! `combine(s0, combine(s1, ... combine(s_{k-1}, s_k)))`; a path item's direction says on which side the sibling
//! is (`Left` = hashed before the running hash).

use near_primitives::hash::CryptoHash;
use near_primitives::merkle::{combine_hash, Direction, MerklePath, MerklePathItem};

/// The roots of the perfect subtrees of `leaves`, largest first, with each one's first leaf and size.
fn perfect_subtrees(leaves: &[CryptoHash]) -> Vec<(usize, usize, CryptoHash)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut remaining = leaves.len();
    while remaining > 0 {
        let size = 1usize << (usize::BITS - 1 - remaining.leading_zeros());
        out.push((start, size, perfect_root(&leaves[start..start + size])));
        start += size;
        remaining -= size;
    }
    out
}

fn perfect_root(leaves: &[CryptoHash]) -> CryptoHash {
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| combine_hash(&pair[0], &pair[pair.len() - 1]))
            .collect();
    }
    level.first().copied().unwrap_or_default()
}

/// The root of the block merkle tree over `leaves` (what `PartialMerkleTree::root` gives after inserting them).
pub fn block_tree_root(leaves: &[CryptoHash]) -> CryptoHash {
    let subtrees = perfect_subtrees(leaves);
    let Some((_, _, last)) = subtrees.last() else {
        return CryptoHash::default();
    };
    subtrees
        .iter()
        .rev()
        .skip(1)
        .fold(*last, |acc, (_, _, root)| combine_hash(root, &acc))
}

/// The path of leaf `index` to [`block_tree_root`] of `leaves`; `None` when `index` is not a leaf.
pub fn block_tree_path(leaves: &[CryptoHash], index: usize) -> Option<MerklePath> {
    if index >= leaves.len() {
        return None;
    }
    let subtrees = perfect_subtrees(leaves);
    let at = subtrees
        .iter()
        .position(|(start, size, _)| index < start + size)?;
    let (start, size, _) = subtrees[at];
    let mut path = Vec::new();
    // Inside the perfect subtree: siblings level by level.
    let mut level = leaves[start..start + size].to_vec();
    let mut i = index - start;
    while level.len() > 1 {
        let sibling = i ^ 1;
        path.push(MerklePathItem {
            hash: level[sibling],
            direction: if sibling < i {
                Direction::Left
            } else {
                Direction::Right
            },
        });
        level = level
            .chunks(2)
            .map(|pair| combine_hash(&pair[0], &pair[1]))
            .collect();
        i /= 2;
    }
    // Then the fold of the smaller subtrees on the right, and each larger one on the left.
    if let Some((_, _, last)) = subtrees.last() {
        if at + 1 < subtrees.len() {
            let right = subtrees[at + 1..subtrees.len() - 1]
                .iter()
                .rev()
                .fold(*last, |acc, (_, _, root)| combine_hash(root, &acc));
            path.push(MerklePathItem {
                hash: right,
                direction: Direction::Right,
            });
        }
    }
    for (_, _, root) in subtrees[..at].iter().rev() {
        path.push(MerklePathItem {
            hash: *root,
            direction: Direction::Left,
        });
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use near_primitives::hash::hash;
    use near_primitives::merkle::{compute_root_from_path, PartialMerkleTree};

    #[test]
    fn paths_lead_to_nearcores_block_merkle_root_for_every_size_and_leaf() {
        let leaves: Vec<CryptoHash> = (0u32..40).map(|i| hash(&i.to_le_bytes())).collect();
        let mut tree = PartialMerkleTree::default();
        for n in 1..=leaves.len() {
            tree.insert(leaves[n - 1]);
            let root = block_tree_root(&leaves[..n]);
            assert_eq!(root, tree.root(), "{n} leaves");
            for (i, leaf) in leaves[..n].iter().enumerate() {
                let path = block_tree_path(&leaves[..n], i).expect("a leaf");
                assert_eq!(
                    compute_root_from_path(&path, *leaf),
                    root,
                    "leaf {i} of {n}"
                );
                // Another leaf does not hash up along the same path.
                assert_ne!(compute_root_from_path(&path, hash(b"other")), root);
            }
            assert!(block_tree_path(&leaves[..n], n).is_none());
        }
    }
}
