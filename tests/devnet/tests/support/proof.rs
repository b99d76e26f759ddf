//! ICS-23 proofs from `abci_query` (path `store/ibc/key`, prove=true), converted to the IBC `MerkleProof` that
//! messages carry and verified locally before use: first the key under the IBC store root, then that root under
//! `ibc` (devnet's IBC store key and commitment prefix) under the app hash. Both levels use the Jellyfish Merkle
//! tree's spec.

use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use ics23::commitment_proof::Proof;
use ics23::{CommitmentProof, HostFunctionsManager, ProofSpec};
use prost::Message;

use super::chain::Chain;

/// The commitment prefix of every Cosmos devnet chain.
pub const PREFIX: &[u8] = b"ibc";

/// The proof spec of both proof levels on a devnet chain.
pub fn spec() -> ProofSpec {
    devnet::proof_specs().remove(0)
}

/// A value of the IBC store read at a height, with its proof if the chain gave one.
pub struct Proven {
    /// Empty when the key is absent.
    pub value: Vec<u8>,
    /// `None` when the chain gave no proof.
    pub proof: Option<MerkleProof>,
}

/// Reads ICS-24 `path` from the IBC store of `chain` as of block `height` (proof against header height+1).
pub async fn query(chain: &Chain, path: &str, height: u64) -> Result<Proven, String> {
    let q = chain
        .query(
            "store/ibc/key",
            path.as_bytes().to_vec(),
            Some(height),
            true,
        )
        .await?;
    if q.height.value() != height {
        return Err(format!(
            "asked for height {height}, got an answer for {}",
            q.height
        ));
    }
    let proof = match q.proof {
        None => None,
        Some(ops) => {
            if ops.ops.len() != 2 {
                return Err(format!("expected 2 proof ops, got {}", ops.ops.len()));
            }
            let proofs = ops
                .ops
                .iter()
                .map(|op| CommitmentProof::decode(op.data.as_slice()).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            Some(MerkleProof { proofs })
        }
    };
    if proof.is_none() && !q.value.is_empty() {
        return Err(format!("{path}: value without proof at {height}"));
    }
    Ok(Proven {
        value: q.value,
        proof,
    })
}

fn existence_root(proof: &CommitmentProof) -> Result<Vec<u8>, String> {
    match &proof.proof {
        Some(Proof::Exist(ex)) => ics23::calculate_existence_root::<HostFunctionsManager>(ex)
            .map_err(|e| format!("existence root: {e}")),
        _ => Err("expected an existence proof".into()),
    }
}

fn non_existence_root(proof: &CommitmentProof) -> Result<Vec<u8>, String> {
    let Some(Proof::Nonexist(ne)) = &proof.proof else {
        return Err("expected a non-existence proof".into());
    };
    let roots = [ne.left.as_ref(), ne.right.as_ref()]
        .into_iter()
        .flatten()
        .map(ics23::calculate_existence_root::<HostFunctionsManager>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("non-existence root: {e}"))?;
    match roots.as_slice() {
        [] => Err("non-existence proof without neighbours".into()),
        [r] => Ok(r.clone()),
        [l, r] if l == r => Ok(l.clone()),
        _ => Err("neighbours disagree on the root".into()),
    }
}

/// Checks the upper level: the IBC store root sits under `ibc` in the multistore whose root is `app_hash`.
fn verify_store_root(proof: &MerkleProof, app_hash: &[u8], ibc_root: &[u8]) -> Result<(), String> {
    let [_, outer] = proof.proofs.as_slice() else {
        return Err(format!("expected 2 proofs, got {}", proof.proofs.len()));
    };
    if !ics23::verify_membership::<HostFunctionsManager>(
        outer,
        &spec(),
        &app_hash.to_vec(),
        PREFIX,
        ibc_root,
    ) {
        return Err("IBC store root is not under `ibc` in this app hash".into());
    }
    Ok(())
}

/// Verifies that `path` holds `value` in the state whose app hash is `app_hash`.
pub fn verify_membership(
    proof: &MerkleProof,
    app_hash: &[u8],
    path: &str,
    value: &[u8],
) -> Result<(), String> {
    let inner = proof.proofs.first().ok_or("empty proof")?;
    let ibc_root = existence_root(inner)?;
    if !ics23::verify_membership::<HostFunctionsManager>(
        inner,
        &spec(),
        &ibc_root,
        path.as_bytes(),
        value,
    ) {
        return Err(format!("{path} does not hold the value in the IBC store"));
    }
    verify_store_root(proof, app_hash, &ibc_root)
}

/// Verifies that `path` is absent from the state whose app hash is `app_hash`.
pub fn verify_non_membership(
    proof: &MerkleProof,
    app_hash: &[u8],
    path: &str,
) -> Result<(), String> {
    let inner = proof.proofs.first().ok_or("empty proof")?;
    let ibc_root = non_existence_root(inner)?;
    if !ics23::verify_non_membership::<HostFunctionsManager>(
        inner,
        &spec(),
        &ibc_root,
        path.as_bytes(),
    ) {
        return Err(format!("{path} is not proven absent from the IBC store"));
    }
    verify_store_root(proof, app_hash, &ibc_root)
}

/// A copy of `proof` with one byte of a sibling hash flipped: still decodes, no longer proves anything.
pub fn forge(proof: &MerkleProof) -> MerkleProof {
    let mut forged = proof.clone();
    let Some(Proof::Exist(ex)) = forged.proofs[0].proof.as_mut() else {
        panic!("forge expects an existence proof");
    };
    let op = ex
        .path
        .iter_mut()
        .find(|op| !op.prefix.is_empty() || !op.suffix.is_empty())
        .expect("a proof with at least one inner node");
    let bytes = if op.prefix.is_empty() {
        &mut op.suffix
    } else {
        &mut op.prefix
    };
    bytes[0] ^= 0x01;
    forged
}
