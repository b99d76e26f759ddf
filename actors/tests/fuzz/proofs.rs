//! ICS-23 proofs through `datagrams::check`, the check every forwarded Cosmos proof passes: random bytes, valid
//! two-level proofs with bytes or fields changed, and proof specs of any shape must be refused or verified, never
//! panic, and never be accepted for a value, a root or an absence they do not prove.

use std::path::Path;

use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use ics23::commitment_proof::Proof;
use ics23::{CommitmentProof, ExistenceProof, HostFunctionsManager, InnerOp, InnerSpec, ProofSpec};
use proptest::prelude::*;
use prost::Message;
use relayd_actors::chain::proof::{spec_for, Forwarded, ProofFormat};
use relayd_actors::packet_builder::datagrams::check;
use relayd_config::ProofSpecName;
use relayd_messages::Proven;

use super::cases;

const PREFIX: &[u8] = b"ibc";

/// A proof that verifies: `path` holds `value` (or nothing, for `None`) in the IBC store, under `root`.
#[derive(Debug, Clone)]
pub struct Valid {
    path: String,
    value: Option<Vec<u8>>,
    proofs: Vec<CommitmentProof>,
    specs: Vec<ProofSpec>,
    root: Vec<u8>,
}

/// The ICS-23 vectors whose keys are text (an ICS-24 path is a string), each under a store-prefix level.
pub fn valid_proofs() -> Vec<Valid> {
    let mut out = Vec::new();
    for (dir, name) in [
        ("iavl", ProofSpecName::Iavl),
        ("tendermint", ProofSpecName::Tendermint),
    ] {
        for file in [
            "exist_left",
            "exist_middle",
            "exist_right",
            "nonexist_left",
            "nonexist_middle",
            "nonexist_right",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/ics23")
                .join(dir)
                .join(format!("{file}.json"));
            let doc: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("vector"))
                    .expect("json");
            let field = |k: &str| hex::decode(doc[k].as_str().expect(k)).expect("hex");
            let Ok(key) = String::from_utf8(field("key")) else {
                continue;
            };
            let inner = CommitmentProof::decode(field("proof").as_slice()).expect("proof");
            let value = field("value");
            // The store level: the IBC store's root under its prefix, as a one-leaf Tendermint-spec tree.
            let store = ExistenceProof {
                key: PREFIX.to_vec(),
                value: field("root"),
                leaf: ics23::tendermint_spec().leaf_spec,
                path: vec![],
            };
            let root =
                ics23::calculate_existence_root::<HostFunctionsManager>(&store).expect("root");
            out.push(Valid {
                path: key,
                value: (!value.is_empty()).then_some(value),
                proofs: vec![
                    inner,
                    CommitmentProof {
                        proof: Some(Proof::Exist(store)),
                    },
                ],
                specs: vec![spec_for(name), spec_for(ProofSpecName::Tendermint)],
                root,
            });
        }
    }
    out
}

/// Runs the real check of `proof_bytes` claiming `value` at `v.path`, under `root`, with `specs`.
fn run(
    v: &Valid,
    proof_bytes: Vec<u8>,
    specs: &[Vec<u8>],
    root: &[u8],
    value: Option<&[u8]>,
) -> bool {
    let proven = Proven {
        value: value.unwrap_or_default().to_vec(),
        height: 7,
        proof: Some(proof_bytes),
    };
    check(Forwarded {
        chain: "fuzz-0",
        format: &ProofFormat::Ics23,
        prefix: PREFIX,
        path: &v.path,
        proven: &proven,
        root,
        specs,
        expect: value,
    })
    .is_ok()
}

fn encode(proofs: &[CommitmentProof]) -> Vec<u8> {
    MerkleProof {
        proofs: proofs.to_vec(),
    }
    .encode_to_vec()
}

fn encoded_specs(specs: &[ProofSpec]) -> Vec<Vec<u8>> {
    specs.iter().map(Message::encode_to_vec).collect()
}

/// A value the proof does not hold at its key: another value where one is present, any value where none is.
fn wrong_value(v: &Valid, salt: &[u8]) -> Vec<u8> {
    let mut wrong = v.value.clone().unwrap_or_default();
    wrong.extend_from_slice(salt);
    wrong.push(1);
    wrong
}

#[test]
fn every_valid_proof_verifies_and_no_wrong_claim_does() {
    let all = valid_proofs();
    assert!(all.len() >= 8, "{} vectors", all.len());
    for v in &all {
        let specs = encoded_specs(&v.specs);
        let bytes = encode(&v.proofs);
        assert!(
            run(v, bytes.clone(), &specs, &v.root, v.value.as_deref()),
            "{v:?}"
        );
        assert!(!run(
            v,
            bytes.clone(),
            &specs,
            &v.root,
            Some(&wrong_value(v, b""))
        ));
        let mut root = v.root.clone();
        root[3] ^= 0x40;
        assert!(!run(v, bytes, &specs, &root, v.value.as_deref()));
    }
}

/// Byte-level edits of an encoded proof.
#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Insert(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let i = any::<prop::sample::Index>();
    prop_oneof![
        (i.clone(), 0u8..8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        (i.clone(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        i.clone().prop_map(ByteEdit::Delete),
        (i.clone(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        i.prop_map(ByteEdit::Truncate),
    ]
}

fn apply_bytes(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match edit {
        ByteEdit::Flip(i, bit) => bytes[i.index(n)] ^= 1 << bit,
        ByteEdit::Set(i, b) => bytes[i.index(n)] = *b,
        ByteEdit::Delete(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        ByteEdit::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
        ByteEdit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
    }
}

/// Field-level edits of a decoded proof: what a lying node would change.
#[derive(Debug, Clone)]
enum FieldEdit {
    Key(usize, Vec<u8>),
    Value(usize, Vec<u8>),
    LeafPrefix(usize, Vec<u8>),
    StepPrefix(usize, prop::sample::Index, Vec<u8>),
    StepSuffix(usize, prop::sample::Index, Vec<u8>),
    StepHash(usize, prop::sample::Index, i32),
    DropStep(usize, prop::sample::Index),
    DuplicateStep(usize, prop::sample::Index),
    SwapNeighbours(usize),
    DropProof(usize),
    SwapLevels,
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    let level = 0usize..2;
    let i = any::<prop::sample::Index>();
    let bytes = prop::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        (level.clone(), bytes.clone()).prop_map(|(l, b)| FieldEdit::Key(l, b)),
        (level.clone(), bytes.clone()).prop_map(|(l, b)| FieldEdit::Value(l, b)),
        (level.clone(), bytes.clone()).prop_map(|(l, b)| FieldEdit::LeafPrefix(l, b)),
        (level.clone(), i.clone(), bytes.clone())
            .prop_map(|(l, i, b)| FieldEdit::StepPrefix(l, i, b)),
        (level.clone(), i.clone(), bytes).prop_map(|(l, i, b)| FieldEdit::StepSuffix(l, i, b)),
        (level.clone(), i.clone(), -2i32..8).prop_map(|(l, i, h)| FieldEdit::StepHash(l, i, h)),
        (level.clone(), i.clone()).prop_map(|(l, i)| FieldEdit::DropStep(l, i)),
        (level.clone(), i).prop_map(|(l, i)| FieldEdit::DuplicateStep(l, i)),
        level.clone().prop_map(FieldEdit::SwapNeighbours),
        level.prop_map(FieldEdit::DropProof),
        Just(FieldEdit::SwapLevels),
    ]
}

/// The existence proofs of one level: the proof itself, or a non-existence proof's neighbours.
fn exists(proof: &mut CommitmentProof) -> Vec<&mut ExistenceProof> {
    match &mut proof.proof {
        Some(Proof::Exist(e)) => vec![e],
        Some(Proof::Nonexist(n)) => n.left.iter_mut().chain(n.right.iter_mut()).collect(),
        _ => vec![],
    }
}

fn with_step(
    proofs: &mut [CommitmentProof],
    level: usize,
    i: &prop::sample::Index,
    f: impl Fn(&mut Vec<InnerOp>, usize),
) {
    if let Some(p) = proofs.get_mut(level) {
        for e in exists(p) {
            if !e.path.is_empty() {
                let at = i.index(e.path.len());
                f(&mut e.path, at);
            }
        }
    }
}

fn apply_field(proofs: &mut Vec<CommitmentProof>, edit: &FieldEdit) {
    match edit {
        FieldEdit::Key(l, b) | FieldEdit::Value(l, b) | FieldEdit::LeafPrefix(l, b) => {
            if let Some(p) = proofs.get_mut(*l) {
                for e in exists(p) {
                    match edit {
                        FieldEdit::Key(..) => e.key = b.clone(),
                        FieldEdit::Value(..) => e.value = b.clone(),
                        _ => {
                            if let Some(leaf) = &mut e.leaf {
                                leaf.prefix = b.clone();
                            }
                        }
                    }
                }
            }
        }
        FieldEdit::StepPrefix(l, i, b) => {
            with_step(proofs, *l, i, |p, at| p[at].prefix = b.clone())
        }
        FieldEdit::StepSuffix(l, i, b) => {
            with_step(proofs, *l, i, |p, at| p[at].suffix = b.clone())
        }
        FieldEdit::StepHash(l, i, h) => with_step(proofs, *l, i, |p, at| p[at].hash = *h),
        FieldEdit::DropStep(l, i) => with_step(proofs, *l, i, |p, at| {
            p.remove(at);
        }),
        FieldEdit::DuplicateStep(l, i) => with_step(proofs, *l, i, |p, at| {
            let step = p[at].clone();
            p.insert(at, step);
        }),
        FieldEdit::SwapNeighbours(l) => {
            if let Some(CommitmentProof {
                proof: Some(Proof::Nonexist(n)),
            }) = proofs.get_mut(*l)
            {
                std::mem::swap(&mut n.left, &mut n.right);
            }
        }
        FieldEdit::DropProof(l) => {
            if *l < proofs.len() {
                proofs.remove(*l);
            }
        }
        FieldEdit::SwapLevels => proofs.reverse(),
    }
}

/// Proof specs of every shape, the sane ones among them: a client's specs come from a chain, not from relayd.
fn proof_spec() -> impl Strategy<Value = ProofSpec> {
    let small = prop_oneof![
        Just(0i32),
        Just(1),
        Just(2),
        Just(32),
        Just(-1),
        Just(i32::MAX),
        Just(i32::MIN),
        any::<i32>()
    ];
    let base = prop_oneof![
        Just(spec_for(ProofSpecName::Iavl)),
        Just(spec_for(ProofSpecName::Tendermint)),
        Just(spec_for(ProofSpecName::Avl)),
        Just(spec_for(ProofSpecName::Jmt)),
    ];
    (
        base,
        prop::collection::vec(
            prop_oneof![
                Just(0i32),
                Just(1),
                Just(2),
                Just(-1),
                Just(7),
                any::<i32>()
            ],
            0..5,
        ),
        small.clone(),
        small.clone(),
        small.clone(),
        small.clone(),
        small,
        prop::collection::vec(any::<u8>(), 0..40),
        0u8..64,
    )
        .prop_map(
            |(mut spec, order, size, min_p, max_p, min_d, max_d, empty, which)| {
                let inner = spec.inner_spec.get_or_insert_with(InnerSpec::default);
                // Each bit of `which` decides whether one field takes the generated value.
                if which & 1 != 0 {
                    inner.child_order = order;
                }
                if which & 2 != 0 {
                    inner.child_size = size;
                }
                if which & 4 != 0 {
                    inner.min_prefix_length = min_p;
                    inner.max_prefix_length = max_p;
                }
                if which & 8 != 0 {
                    inner.empty_child = empty;
                }
                if which & 16 != 0 {
                    spec.min_depth = min_d;
                    spec.max_depth = max_d;
                }
                if which & 32 != 0 {
                    spec.inner_spec = None;
                }
                spec
            },
        )
}

proptest! {
    #![proptest_config(cases(1500))]

    /// Random bytes are never a proof of anything.
    #[test]
    fn random_bytes_are_refused(pick in any::<prop::sample::Index>(), bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let all = valid_proofs();
        let v = &all[pick.index(all.len())];
        prop_assert!(!run(v, bytes, &encoded_specs(&v.specs), &v.root, v.value.as_deref()));
    }

    /// A valid proof with bytes changed: never accepted for a wrong value or another root; no panic either way.
    #[test]
    fn edited_proof_bytes_prove_no_wrong_claim(pick in any::<prop::sample::Index>(), edits in prop::collection::vec(byte_edit(), 1..4), salt in prop::collection::vec(any::<u8>(), 0..4)) {
        let all = valid_proofs();
        let v = &all[pick.index(all.len())];
        let mut bytes = encode(&v.proofs);
        for e in &edits {
            apply_bytes(&mut bytes, e);
        }
        let specs = encoded_specs(&v.specs);
        let _ = run(v, bytes.clone(), &specs, &v.root, v.value.as_deref());
        prop_assert!(!run(v, bytes.clone(), &specs, &v.root, Some(&wrong_value(v, &salt))));
        let mut root = v.root.clone();
        root[0] ^= 1;
        prop_assert!(!run(v, bytes, &specs, &root, v.value.as_deref()));
    }

    /// A valid proof with fields changed as a lying node would: never accepted for a wrong claim.
    #[test]
    fn edited_proof_fields_prove_no_wrong_claim(pick in any::<prop::sample::Index>(), edits in prop::collection::vec(field_edit(), 1..4), salt in prop::collection::vec(any::<u8>(), 0..4)) {
        let all = valid_proofs();
        let v = &all[pick.index(all.len())];
        let mut proofs = v.proofs.clone();
        for e in &edits {
            apply_field(&mut proofs, e);
        }
        let specs = encoded_specs(&v.specs);
        let _ = run(v, encode(&proofs), &specs, &v.root, v.value.as_deref());
        prop_assert!(!run(v, encode(&proofs), &specs, &v.root, Some(&wrong_value(v, &salt))));
        if v.value.is_some() {
            // A present key is never proven absent.
            prop_assert!(!run(v, encode(&proofs), &specs, &v.root, None));
        }
    }

    /// Specs of any shape, sane or not, with valid and edited proofs: an answer, never a panic.
    #[test]
    fn any_spec_is_answered(pick in any::<prop::sample::Index>(), specs in prop::collection::vec(proof_spec(), 0..3), edit in prop::option::of(field_edit())) {
        let all = valid_proofs();
        let v = &all[pick.index(all.len())];
        let mut proofs = v.proofs.clone();
        if let Some(e) = &edit {
            apply_field(&mut proofs, e);
        }
        let _ = run(v, encode(&proofs), &encoded_specs(&specs), &v.root, v.value.as_deref());
        prop_assert!(!run(v, encode(&proofs), &encoded_specs(&specs), &v.root, Some(&wrong_value(v, b"x"))));
    }

    /// Spec bytes that are not a spec: refused.
    #[test]
    fn random_spec_bytes_are_answered(pick in any::<prop::sample::Index>(), spec in prop::collection::vec(any::<u8>(), 0..80)) {
        let all = valid_proofs();
        let v = &all[pick.index(all.len())];
        let specs = vec![spec, v.specs[1].encode_to_vec()];
        let _ = run(v, encode(&v.proofs), &specs, &v.root, v.value.as_deref());
    }
}

/// Found by these properties: a spec with no child order made ics23 underflow (`len() - 1`) and panic.
#[test]
fn a_spec_without_child_order_is_refused_not_a_panic() {
    for v in valid_proofs() {
        let mut specs = v.specs.clone();
        specs[0]
            .inner_spec
            .as_mut()
            .expect("inner")
            .child_order
            .clear();
        assert!(!run(
            &v,
            encode(&v.proofs),
            &encoded_specs(&specs),
            &v.root,
            v.value.as_deref()
        ));
    }
}

/// Found by these properties: under the AVL layout an inner node can hash like a leaf (its prefix may be a
/// proper prefix of the leaf prefix), so a node can send an absence proof whose left neighbour is a bare leaf and
/// whose right one is that "leaf" as an inner node over another leaf. Both verify against the same root, and
/// ics23's neighbour check then unwrapped a step of the empty left path and panicked. It must be refused.
#[test]
fn an_absence_proof_with_a_leaf_shaped_inner_node_is_refused() {
    use ics23::{HashOp, NonExistenceProof};
    let spec = spec_for(ProofSpecName::Avl);
    let leaf = spec.leaf_spec.clone().expect("leaf spec");
    let right_key = vec![0xff; 4];
    // A right leaf whose hash starts with a zero byte (about one try in 256), so that 63 zero bytes before it
    // read as the 64-byte leaf prefix; its next byte sorts below "~" so that "~" lies between the neighbours.
    let (right_value, right_hash) = (0u32..)
        .map(|i| {
            let value = i.to_be_bytes().to_vec();
            let e = ExistenceProof {
                key: right_key.clone(),
                value: value.clone(),
                leaf: Some(leaf.clone()),
                path: vec![],
            };
            (
                value,
                ics23::calculate_existence_root::<HostFunctionsManager>(&e).expect("leaf hash"),
            )
        })
        .find(|(_, h)| h[0] == 0 && h[1] < b'~')
        .expect("a leaf hash with a zero first byte");
    let suffix = vec![7u8; 32];
    let step = InnerOp {
        hash: HashOp::Sha256.into(),
        prefix: vec![0; 63],
        suffix: suffix.clone(),
    };
    let right = ExistenceProof {
        key: right_key,
        value: right_value,
        leaf: Some(leaf.clone()),
        path: vec![step],
    };
    let left = ExistenceProof {
        key: right_hash[1..].to_vec(),
        value: suffix,
        leaf: Some(leaf),
        path: vec![],
    };
    let root = ics23::calculate_existence_root::<HostFunctionsManager>(&left).expect("root");
    assert_eq!(
        root,
        ics23::calculate_existence_root::<HostFunctionsManager>(&right).expect("root")
    );
    let proof = CommitmentProof {
        proof: Some(Proof::Nonexist(NonExistenceProof {
            key: b"~".to_vec(),
            left: Some(left),
            right: Some(right),
        })),
    };
    let v = Valid {
        path: "~".into(),
        value: None,
        proofs: vec![proof],
        specs: vec![spec],
        root: root.clone(),
    };
    assert!(!run(
        &v,
        encode(&v.proofs),
        &encoded_specs(&v.specs),
        &root,
        None
    ));
}
