//! Proof checks before use (ADR-002 R-proofs): every proof relayd forwards is verified here against an app hash
//! its own light client verified, exactly as the destination chain's IBC client will verify it.
//!
//! A proof is a chain of ICS-23 commitment proofs, innermost store first: the first proves the key under the
//! IBC store's root, each next one proves the previous root under the store prefix, the last one ends at the
//! app hash.

use ics23::{CommitmentProof, HostFunctionsManager, ProofSpec};
use near_primitives::hash::CryptoHash;
use prost::Message;
use relayd_config::ProofSpecName;
use relayd_messages::Proven;

use super::near::state_proof::{verify_state_proof, NearStateProof, StateProofError};

/// How a chain proves its IBC state, which decides how relayd checks what it forwards from it and at which
/// heights it can prove (see `proof_height`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProofFormat {
    /// Chained ICS-23 commitment proofs under the app hash of the header one above the query height (Cosmos).
    #[default]
    Ics23,
    /// [`NearStateProof`]s of the IBC contract's storage under the `prev_state_root` of a verified NEAR head, read
    /// at the head's parent.
    NearState {
        /// The IBC contract's account, whose storage holds the ICS-24 paths.
        contract: String,
    },
}

/// What was wrong with a proof relayd was about to forward.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFault {
    /// The node served no proof.
    #[error("no proof")]
    Missing,
    /// The value read is not the one relayd expects (the packet it holds, the commitment of its ack).
    #[error("the stored value differs from the one relayd holds")]
    ValueMismatch,
    /// Absence was to be proven, but a value is stored.
    #[error("the value is present")]
    Present,
    /// The proof bytes do not decode.
    #[error("undecodable proof: {0}")]
    Undecodable(String),
    /// The judging client's proof specs do not decode.
    #[error("undecodable proof spec: {0}")]
    Spec(String),
    /// The verified root is not a NEAR state root.
    #[error("the verified root has {0} bytes, not the 32 of a NEAR state root")]
    Root(usize),
    /// The ICS-23 proof does not verify under the verified app hash.
    #[error("{0}")]
    Ics23(String),
    /// The NEAR state proof does not verify under the verified head's `prev_state_root`.
    #[error(transparent)]
    NearState(#[from] StateProofError),
}

/// A proof refused before forwarding: the node lied or served another state. Names the chain, path and height.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proof of {path} on {chain} at height {height} rejected: {fault}")]
pub struct ProofRejected {
    /// The chain the proof came from.
    pub chain: String,
    /// The ICS-24 path proven.
    pub path: String,
    /// The height it was read at.
    pub height: u64,
    /// What failed (boxed: NEAR faults carry hashes, and refusals are rare).
    pub fault: Box<ProofFault>,
}

/// A read about to be forwarded, and what it is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    /// The chain that served it.
    pub chain: &'a str,
    /// How that chain proves its state.
    pub format: &'a ProofFormat,
    /// Its store prefix (ICS-23 chains).
    pub prefix: &'a [u8],
    /// The ICS-24 path.
    pub path: &'a str,
    /// The read value and its proof.
    pub proven: &'a Proven,
    /// The root verified by relayd's own light client: the app hash of the header one above the read (ICS-23),
    /// or the `prev_state_root` of the NEAR head whose parent the read was at.
    pub root: &'a [u8],
    /// The proof specs of the client that will judge an ICS-23 proof (protobuf-encoded).
    pub specs: &'a [Vec<u8>],
    /// `Some(value)` for membership, `None` for absence.
    pub expect: Option<&'a [u8]>,
}

/// Checks a proof before it is forwarded, as the chain's kind proves its state: a NEAR-sourced proof as a
/// [`NearStateProof`], any other as chained ICS-23 proofs.
pub fn check_forwarded(c: &Forwarded<'_>) -> Result<(), ProofRejected> {
    let fail = |fault: ProofFault| ProofRejected {
        chain: c.chain.to_owned(),
        path: c.path.to_owned(),
        height: c.proven.height,
        fault: Box::new(fault),
    };
    let proof = c
        .proven
        .proof
        .as_deref()
        .ok_or_else(|| fail(ProofFault::Missing))?;
    match c.expect {
        Some(expected) if c.proven.value != expected => {
            return Err(fail(ProofFault::ValueMismatch))
        }
        None if !c.proven.value.is_empty() => return Err(fail(ProofFault::Present)),
        _ => {}
    }
    match c.format {
        ProofFormat::Ics23 => {
            let merkle = ibc_proto::ibc::core::commitment::v1::MerkleProof::decode(proof)
                .map_err(|e| fail(ProofFault::Undecodable(e.to_string())))?;
            let specs = c
                .specs
                .iter()
                .map(|s| ProofSpec::decode(s.as_slice()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(ProofFault::Spec(e.to_string())))?;
            let target = ProofTarget {
                chain: c.chain,
                path: c.path,
                prefix: c.prefix,
                height: c.proven.height,
            };
            verify_chained(target, &merkle.proofs, &specs, c.root, c.expect)
                .map_err(|e| fail(ProofFault::Ics23(e.reason)))
        }
        ProofFormat::NearState { contract } => {
            let root =
                CryptoHash::try_from(c.root).map_err(|_| fail(ProofFault::Root(c.root.len())))?;
            let proof = NearStateProof::from_bytes(proof).map_err(|e| fail(e.into()))?;
            verify_state_proof(&root, contract, c.path.as_bytes(), c.expect, &proof)
                .map_err(|e| fail(e.into()))
        }
    }
}

/// Why a proof must not be forwarded. Each names the chain, the path and the height, so an operator can see
/// which node served what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proof of {path} on {chain} at height {height} rejected: {reason}")]
pub struct ProofError {
    /// The chain the proof came from.
    pub chain: String,
    /// The ICS-24 path proven.
    pub path: String,
    /// The height the proof was taken at.
    pub height: u64,
    /// What failed.
    pub reason: String,
}

/// What is being proven and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// The chain that served the proof.
    pub chain: &'a str,
    /// The ICS-24 path, e.g. `commitments/ports/transfer/channels/channel-0/sequences/1`.
    pub path: &'a str,
    /// The store prefix (commitment prefix), e.g. `ibc`.
    pub prefix: &'a [u8],
    /// The query height.
    pub height: u64,
}

/// The ICS-23 spec of a named store layout.
pub fn spec_for(name: ProofSpecName) -> ProofSpec {
    match name {
        ProofSpecName::Iavl => ics23::iavl_spec(),
        ProofSpecName::Tendermint => ics23::tendermint_spec(),
        ProofSpecName::Avl => avl_spec(),
        ProofSpecName::Jmt => jmt_spec(),
    }
}

/// Penumbra's Jellyfish Merkle tree, as the `jmt` crate 0.12 (`ics23_spec`) defines it: keys and values hashed
/// with SHA-256 under the leaf domain `JMT::LeafNode`, binary inner nodes under `JMT::IntrnalNode`, an absent
/// child hashed as the sparse-Merkle placeholder, keys ordered by their hash.
fn jmt_spec() -> ProofSpec {
    use ics23::{HashOp, InnerSpec, LeafOp, LengthOp};
    const INNER_DOMAIN: &[u8] = b"JMT::IntrnalNode";
    ProofSpec {
        leaf_spec: Some(LeafOp {
            hash: HashOp::Sha256.into(),
            prehash_key: HashOp::Sha256.into(),
            prehash_value: HashOp::Sha256.into(),
            length: LengthOp::NoPrefix.into(),
            prefix: b"JMT::LeafNode".to_vec(),
        }),
        inner_spec: Some(InnerSpec {
            child_order: vec![0, 1],
            child_size: 32,
            min_prefix_length: INNER_DOMAIN.len() as i32,
            max_prefix_length: INNER_DOMAIN.len() as i32,
            empty_child: b"SPARSE_MERKLE_PLACEHOLDER_HASH__".to_vec(),
            hash: HashOp::Sha256.into(),
        }),
        max_depth: 64,
        min_depth: 0,
        prehash_key_before_comparison: true,
    }
}

/// The AVL+ store's layout, as basecoin-store 0.2 (`avl::proof`) defines it: SHA-256 leaves over the raw key
/// and value behind a 64-byte zero prefix, three-way inner nodes of 32-byte children with a zero empty child.
fn avl_spec() -> ProofSpec {
    use ics23::{HashOp, InnerSpec, LeafOp, LengthOp};
    ProofSpec {
        leaf_spec: Some(LeafOp {
            hash: HashOp::Sha256.into(),
            prehash_key: HashOp::NoHash.into(),
            prehash_value: HashOp::NoHash.into(),
            length: LengthOp::NoPrefix.into(),
            prefix: vec![0; 64],
        }),
        inner_spec: Some(InnerSpec {
            child_order: vec![0, 1, 2],
            child_size: 32,
            min_prefix_length: 0,
            max_prefix_length: 64,
            empty_child: vec![0; 32],
            hash: HashOp::Sha256.into(),
        }),
        max_depth: 0,
        min_depth: 0,
        prehash_key_before_comparison: false,
    }
}

/// Decodes a proto `CommitmentProof`.
pub fn decode_proof(bytes: &[u8]) -> Result<CommitmentProof, String> {
    CommitmentProof::decode(bytes).map_err(|e| format!("undecodable commitment proof: {e}"))
}

/// Checks that `proofs` prove `value` at `target.path` (or its absence when `value` is `None`) under `root`,
/// with one spec per proof level.
pub fn verify_chained(
    target: ProofTarget<'_>,
    proofs: &[CommitmentProof],
    specs: &[ProofSpec],
    root: &[u8],
    value: Option<&[u8]>,
) -> Result<(), ProofError> {
    // Keys from the innermost level outwards: the path inside the IBC store, then the store prefix.
    let keys: [&[u8]; 2] = [target.path.as_bytes(), target.prefix];
    verify_levels(&keys, proofs, specs, root, value).map_err(|reason| ProofError {
        chain: target.chain.to_owned(),
        path: target.path.to_owned(),
        height: target.height,
        reason,
    })
}

/// The chained check over raw keys, innermost first.
fn verify_levels(
    keys: &[&[u8]],
    proofs: &[CommitmentProof],
    specs: &[ProofSpec],
    root: &[u8],
    value: Option<&[u8]>,
) -> Result<(), String> {
    if proofs.is_empty() {
        return Err("empty proof".into());
    }
    if proofs.len() != specs.len() {
        return Err(format!(
            "{} proof levels but {} proof specs",
            proofs.len(),
            specs.len()
        ));
    }
    if proofs.len() > keys.len() {
        return Err(format!(
            "{} proof levels; at most {} are supported",
            proofs.len(),
            keys.len()
        ));
    }
    let mut level_value: Option<Vec<u8>> = value.map(<[u8]>::to_vec);
    for (level, (proof, spec)) in proofs.iter().zip(specs).enumerate() {
        let key = keys[level];
        check_spec(spec).map_err(|e| format!("level {level}: proof spec: {e}"))?;
        let shown = String::from_utf8_lossy(key);
        let sub_root = match &level_value {
            Some(v) => {
                let here = existence_root(proof).map_err(|e| format!("level {level}: {e}"))?;
                if !ics23::verify_membership::<HostFunctionsManager>(proof, spec, &here, key, v) {
                    return Err(format!(
                        "level {level}: membership of {shown} does not verify"
                    ));
                }
                here
            }
            None => {
                let here = non_existence_root(proof).map_err(|e| format!("level {level}: {e}"))?;
                if !ics23::verify_non_membership::<HostFunctionsManager>(proof, spec, &here, key) {
                    return Err(format!("level {level}: absence of {shown} does not verify"));
                }
                here
            }
        };
        level_value = Some(sub_root);
    }
    match level_value {
        Some(computed) if computed == root => Ok(()),
        Some(computed) => Err(format!(
            "computed root {} differs from the verified app hash {}",
            hex::encode_upper(&computed),
            hex::encode_upper(root)
        )),
        None => Err("proof has no levels".into()),
    }
}

fn existence_root(proof: &CommitmentProof) -> Result<Vec<u8>, String> {
    match &proof.proof {
        Some(ics23::commitment_proof::Proof::Exist(exist)) => {
            ics23::calculate_existence_root::<HostFunctionsManager>(exist)
                .map_err(|e| e.to_string())
        }
        _ => Err("expected an existence proof".into()),
    }
}

fn non_existence_root(proof: &CommitmentProof) -> Result<Vec<u8>, String> {
    match &proof.proof {
        Some(ics23::commitment_proof::Proof::Nonexist(non)) => {
            if !neighbours_diverge(non) {
                return Err("the neighbours' paths do not part below the root".into());
            }
            let neighbour = non
                .left
                .as_ref()
                .or(non.right.as_ref())
                .ok_or("non-existence proof without neighbours")?;
            ics23::calculate_existence_root::<HostFunctionsManager>(neighbour)
                .map_err(|e| e.to_string())
        }
        _ => Err("expected a non-existence proof".into()),
    }
}

/// Inner nodes with more children, or larger child hashes, than this are refused: far above every store layout
/// in use (2 or 3 children of 32 bytes), and small enough that ics23's `i32` arithmetic over them cannot overflow.
const MAX_CHILDREN: usize = 256;
/// See [`MAX_CHILDREN`].
const MAX_CHILD_SIZE: i32 = 256;
/// The longest inner-node prefix a spec may allow.
const MAX_PREFIX_LENGTH: i32 = 1 << 16;

/// Refuses proof specs ics23 cannot apply safely. It indexes, slices and divides by the inner-node layout without
/// checking it first (an empty child order underflows, a child size of 0 divides by zero, an order that is not a
/// permutation is unwrapped), and a client's specs come from a chain, not from relayd.
fn check_spec(spec: &ProofSpec) -> Result<(), String> {
    if spec.leaf_spec.is_none() {
        return Err("no leaf spec".into());
    }
    let inner = spec.inner_spec.as_ref().ok_or("no inner spec")?;
    let n = inner.child_order.len();
    if n == 0 || n > MAX_CHILDREN {
        return Err(format!(
            "{n} children per inner node; 1 to {MAX_CHILDREN} are supported"
        ));
    }
    let mut seen = vec![false; n];
    for &child in &inner.child_order {
        match usize::try_from(child).ok().filter(|c| *c < n) {
            Some(c) if !seen[c] => seen[c] = true,
            _ => {
                return Err(format!(
                    "child order {:?} is not an order of 0..{n}",
                    inner.child_order
                ))
            }
        }
    }
    if !(1..=MAX_CHILD_SIZE).contains(&inner.child_size) {
        return Err(format!(
            "child size {} is not between 1 and {MAX_CHILD_SIZE}",
            inner.child_size
        ));
    }
    let (min, max) = (inner.min_prefix_length, inner.max_prefix_length);
    if min < 0 || max < min || max > MAX_PREFIX_LENGTH {
        return Err(format!(
            "inner prefix lengths {min}..={max} are not within 0..={MAX_PREFIX_LENGTH}"
        ));
    }
    if spec.min_depth < 0 || spec.max_depth < 0 {
        return Err(format!(
            "depths {}..={} are negative",
            spec.min_depth, spec.max_depth
        ));
    }
    Ok(())
}

/// ics23 checks that two neighbours are adjacent by walking down from the root while their steps are equal, and
/// unwraps the next step of each: both paths must differ somewhere before either ends. Honest proofs always do
/// (two leaves part at some node); a crafted pair whose inner node hashes like a leaf would panic the check.
fn neighbours_diverge(non: &ics23::NonExistenceProof) -> bool {
    match (&non.left, &non.right) {
        (Some(left), Some(right)) => left
            .path
            .iter()
            .rev()
            .zip(right.path.iter().rev())
            .any(|(l, r)| l.prefix != r.prefix || l.suffix != r.suffix),
        _ => true,
    }
}

#[cfg(test)]
mod tests;
