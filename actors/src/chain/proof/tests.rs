//! Tests of ICS-23 proof checking.

use super::*;
use std::path::Path;

struct Vector {
    root: Vec<u8>,
    proof: CommitmentProof,
    key: Vec<u8>,
    value: Vec<u8>,
}

fn vector(rel: &str) -> Vector {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/ics23")
        .join(rel);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let hex_field = |k: &str| hex::decode(doc[k].as_str().unwrap()).unwrap();
    Vector {
        root: hex_field("root"),
        proof: decode_proof(&hex_field("proof")).unwrap(),
        key: hex_field("key"),
        value: hex_field("value"),
    }
}

fn single_level(v: &Vector, spec: ProofSpec, value: Option<&[u8]>) -> Result<(), String> {
    verify_levels(
        &[&v.key],
        std::slice::from_ref(&v.proof),
        &[spec],
        &v.root,
        value,
    )
}

#[test]
fn the_avl_layout_is_basecoins() {
    assert_eq!(
        spec_for(ProofSpecName::Avl),
        basecoin_store::avl::get_proof_spec()
    );
}

#[test]
fn the_jmt_layout_is_the_devnet_stores() {
    assert_eq!(spec_for(ProofSpecName::Jmt), devnet::proof_specs()[0]);
    assert_eq!(devnet::proof_specs()[1], devnet::proof_specs()[0]);
}

#[test]
fn fixture_vectors_verify_with_their_specs() {
    for (dir, name) in [
        ("iavl", ProofSpecName::Iavl),
        ("tendermint", ProofSpecName::Tendermint),
    ] {
        for side in ["left", "middle", "right"] {
            let exist = vector(&format!("{dir}/exist_{side}.json"));
            single_level(&exist, spec_for(name), Some(&exist.value))
                .unwrap_or_else(|e| panic!("{dir} exist_{side}: {e}"));
            let non = vector(&format!("{dir}/nonexist_{side}.json"));
            single_level(&non, spec_for(name), None)
                .unwrap_or_else(|e| panic!("{dir} nonexist_{side}: {e}"));
        }
    }
}

#[test]
fn wrong_value_root_or_spec_is_rejected_with_context() {
    let v = vector("iavl/exist_middle.json");
    assert!(single_level(&v, spec_for(ProofSpecName::Iavl), Some(b"forged")).is_err());

    // Through the public entry point, the error names the chain, path and height.
    let path = String::from_utf8(v.key.clone()).unwrap();
    let mut other_root = v.root.clone();
    other_root[0] ^= 1;
    let target = ProofTarget {
        chain: "test-0",
        path: &path,
        prefix: b"",
        height: 5,
    };
    let specs = [spec_for(ProofSpecName::Iavl)];
    let proofs = std::slice::from_ref(&v.proof);
    verify_chained(target, proofs, &specs, &v.root, Some(&v.value)).unwrap();
    let err = verify_chained(target, proofs, &specs, &other_root, Some(&v.value)).unwrap_err();
    assert_eq!(
        (err.chain.as_str(), err.path.as_str(), err.height),
        ("test-0", path.as_str(), 5)
    );
    assert!(
        err.to_string()
            .contains("differs from the verified app hash"),
        "{err}"
    );

    // An IAVL proof does not satisfy the Tendermint spec (different leaf prefix rules).
    assert!(single_level(&v, spec_for(ProofSpecName::Tendermint), Some(&v.value)).is_err());
    // Claiming absence of a present key fails.
    assert!(single_level(&v, spec_for(ProofSpecName::Iavl), None).is_err());
}

#[test]
fn malformed_proofs_are_errors_not_panics() {
    assert!(decode_proof(&[0xff, 0x00, 0x13]).is_err());
    let target = ProofTarget {
        chain: "c",
        path: "p",
        prefix: b"ibc",
        height: 1,
    };
    assert!(verify_chained(target, &[], &[], b"root", Some(b"v")).is_err());
    let empty = CommitmentProof::default();
    assert!(verify_chained(target, &[empty], &[ics23::iavl_spec()], b"root", Some(b"v")).is_err());
}

#[test]
fn the_chains_kind_picks_the_check_and_near_proofs_are_judged_as_near_state_proofs() {
    use crate::chain::near::light_client::sha256;
    use crate::chain::near::state_proof::build_state_proof;
    use crate::chain::near::trie::test_support::build;
    use crate::chain::near::trie::{contract_data_key, nibbles};

    const IBC: &str = "ibc.test.near";
    let path = "commitments/ports/transfer/channels/channel-0/sequences/1";
    let value = vec![7u8; 32];
    let mut nodes = std::collections::HashMap::new();
    let shard_root = build(
        &[(
            nibbles(&contract_data_key(IBC, path.as_bytes())),
            value.clone(),
        )],
        &mut nodes,
    );
    let proof = build_state_proof(10, &[shard_root], nodes.into_values().collect()).unwrap();
    // One shard: the head's prev_state_root is sha256 of the shard's root.
    let head_root = sha256(&shard_root.0).0;
    let proven = Proven {
        value: value.clone(),
        height: 9,
        proof: Some(proof.to_bytes()),
    };
    let near = ProofFormat::NearState {
        contract: IBC.into(),
    };
    let at = |format, proven, root, expect| Forwarded {
        chain: "near-0",
        format,
        prefix: b"",
        path,
        proven,
        root,
        specs: &[],
        expect,
    };
    let fault = |f: Forwarded<'_>| *check_forwarded(&f).unwrap_err().fault;

    check_forwarded(&at(&near, &proven, &head_root, Some(&value))).expect("honest");
    assert_eq!(
        fault(at(&near, &proven, &head_root, Some(&[8u8; 32]))),
        ProofFault::ValueMismatch
    );
    assert_eq!(
        fault(at(&near, &proven, &head_root, None)),
        ProofFault::Present
    );
    let lying = Proven {
        value: vec![8u8; 32],
        ..proven.clone()
    };
    assert!(matches!(
        fault(at(&near, &lying, &head_root, Some(&[8u8; 32]))),
        ProofFault::NearState(StateProofError::Trie(_))
    ));
    let mut other_root = head_root;
    other_root[0] ^= 1;
    assert!(matches!(
        fault(at(&near, &proven, &other_root, Some(&value))),
        ProofFault::NearState(StateProofError::ShardRoot { .. })
    ));
    assert_eq!(
        fault(at(&near, &proven, &head_root[..31], Some(&value))),
        ProofFault::Root(31)
    );
    let junk = Proven {
        proof: Some(b"junk".to_vec()),
        ..proven.clone()
    };
    assert!(matches!(
        fault(at(&near, &junk, &head_root, Some(&value))),
        ProofFault::NearState(StateProofError::Encoding(_))
    ));
    let none = Proven {
        proof: None,
        ..proven.clone()
    };
    assert_eq!(
        fault(at(&near, &none, &head_root, Some(&value))),
        ProofFault::Missing
    );
    // The same honest NEAR proof judged as ICS-23 (a Cosmos chain's kind) is refused.
    assert!(matches!(
        fault(at(&ProofFormat::Ics23, &proven, &head_root, Some(&value))),
        ProofFault::Undecodable(_) | ProofFault::Ics23(_)
    ));
}
