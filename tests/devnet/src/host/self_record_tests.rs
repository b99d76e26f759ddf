//! The NEAR devnet's check of a counterparty's record of it: a true record stands, every false field is refused.

use ibc::clients::tendermint::types::ConsensusState as TmConsensusState;
use ibc::core::commitment_types::commitment::CommitmentRoot;
use ibc_proto::ibc::core::commitment::v1::MerkleProof;
use near_primitives::block_header::BlockHeaderInnerLite;
use near_primitives::types::EpochId;

use super::*;
use crate::near_client::types::{LightClientBlock, NearHeader};

const HEIGHT: u64 = 42;
const TIME_NS: u64 = 1_700_000_000_123_456_789;

fn root() -> CryptoHash {
    CryptoHash([7; 32])
}

fn next_bp_hash() -> CryptoHash {
    CryptoHash([9; 32])
}

/// The host's own record of block `HEIGHT`, as the NEAR devnet's `begin_block` writes it.
fn own() -> testkit::AnyConsensusState {
    let time = tendermint::Time::from_unix_timestamp(
        (TIME_NS / 1_000_000_000) as i64,
        (TIME_NS % 1_000_000_000) as u32,
    )
    .unwrap();
    let cs = TmConsensusState::new(
        CommitmentRoot::from_bytes(&root().0),
        time,
        tendermint::Hash::Sha256(next_bp_hash().0),
    );
    testkit::AnyConsensusState::Tendermint(cs.into())
}

/// A 12-near consensus state of block `HEIGHT`, with `change` applied to the header first.
fn near_record(change: impl FnOnce(&mut NearHeader)) -> NearConsensusState {
    let mut header = NearHeader {
        block: LightClientBlock {
            prev_block_hash: CryptoHash([1; 32]),
            next_block_inner_hash: CryptoHash([2; 32]),
            inner_lite: BlockHeaderInnerLite {
                height: HEIGHT,
                epoch_id: EpochId::default(),
                next_epoch_id: EpochId::default(),
                prev_state_root: merklize(&[root()]).0,
                prev_outcome_root: CryptoHash::default(),
                timestamp: TIME_NS,
                next_bp_hash: next_bp_hash(),
                block_merkle_root: CryptoHash::default(),
            },
            inner_rest_hash: CryptoHash([3; 32]),
            next_bps: None,
            approvals_after_next: Vec::new(),
        },
        chunk_roots: vec![root()],
    };
    change(&mut header);
    NearConsensusState::new(header, Vec::new(), None)
}

/// A change made to a true header.
type Change = Box<dyn FnOnce(&mut NearHeader)>;

fn claim(record: NearConsensusState) -> Vec<ClaimedSelfState> {
    vec![ClaimedSelfState {
        height: Height::new(0, HEIGHT).unwrap(),
        value: record.into(),
    }]
}

fn answer(claimed: &[ClaimedSelfState]) -> Result<AnyConsensusState, HostError> {
    host_consensus_state(&Height::new(0, HEIGHT).unwrap(), own(), claimed)
}

#[test]
fn a_true_record_of_the_block_is_answered_as_the_hosts_own() {
    let record = near_record(|_| {});
    match answer(&claim(record.clone())).unwrap() {
        AnyConsensusState::Near(near) => assert_eq!(near, record),
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_a_claim_or_with_one_for_another_height_the_host_answers_its_own_record() {
    assert!(matches!(
        answer(&[]).unwrap(),
        AnyConsensusState::Tendermint(_)
    ));
    let mut other = claim(near_record(|_| {}));
    other[0].height = Height::new(0, HEIGHT + 1).unwrap();
    assert!(matches!(
        answer(&other).unwrap(),
        AnyConsensusState::Tendermint(_)
    ));
}

#[test]
fn every_false_field_is_refused_with_what_differs() {
    let cases: [(&str, Change); 5] = [
        ("height", Box::new(|h| h.block.inner_lite.height += 1)),
        ("timestamp", Box::new(|h| h.block.inner_lite.timestamp += 1)),
        (
            "next block producers",
            Box::new(|h| h.block.inner_lite.next_bp_hash = CryptoHash([8; 32])),
        ),
        (
            "chunk state roots",
            Box::new(|h| {
                h.chunk_roots = vec![CryptoHash([6; 32])];
                h.block.inner_lite.prev_state_root = merklize(&h.chunk_roots).0;
            }),
        ),
        (
            "prev_state_root",
            Box::new(|h| h.block.inner_lite.prev_state_root = root()),
        ),
    ];
    for (what, change) in cases {
        let err = answer(&claim(near_record(change))).unwrap_err().to_string();
        assert!(
            err.contains("is false") && err.contains(what),
            "{what}: {err}"
        );
    }
}

#[test]
fn an_undecodable_record_is_refused() {
    let claimed = vec![ClaimedSelfState {
        height: Height::new(0, HEIGHT).unwrap(),
        value: Any {
            type_url: NEAR_CONSENSUS_STATE_TYPE_URL.to_owned(),
            value: vec![0xff, 0x01],
        },
    }];
    assert!(answer(&claimed).is_err());
}

#[test]
fn the_claimed_value_is_the_leaf_of_the_innermost_existence_proof() {
    let value = Any::from(near_record(|_| {})).encode_to_vec();
    let exist = |v: Vec<u8>| ics23::CommitmentProof {
        proof: Some(ics23::commitment_proof::Proof::Exist(
            ics23::ExistenceProof {
                key: b"clients/12-near-0/consensusStates/0-42".to_vec(),
                value: v,
                leaf: None,
                path: Vec::new(),
            },
        )),
    };
    let proof = MerkleProof {
        proofs: vec![exist(value.clone()), exist(b"app hash".to_vec())],
    }
    .encode_to_vec();
    assert_eq!(leaf_value(&proof), Some(value));
    assert_eq!(leaf_value(b"not a proof"), None);
}
