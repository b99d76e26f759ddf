//! Tests of NEAR trie proof checking.

use super::test_support::{build, Entry};
use super::*;

const IBC: &str = "ibc.test.near";

/// A state with the IBC contract's keys, keys of another account, and a key that is a prefix of another.
fn state() -> (CryptoHash, HashMap<CryptoHash, Vec<u8>>, Vec<Entry>) {
    let contract: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (
            b"clients/07-tendermint-0/clientState".to_vec(),
            b"client state".to_vec(),
        ),
        (b"connections/connection-0".to_vec(), b"connection".to_vec()),
        (
            b"commitments/ports/transfer/channels/channel-0/sequences/1".to_vec(),
            vec![1; 32],
        ),
        (
            b"commitments/ports/transfer/channels/channel-0/sequences/10".to_vec(),
            vec![10; 32],
        ),
        (
            b"commitments/ports/transfer/channels/channel-0/sequences/2".to_vec(),
            vec![2; 32],
        ),
        (
            b"nextSequenceRecv/ports/transfer/channels/channel-0".to_vec(),
            1u64.to_le_bytes().to_vec(),
        ),
    ];
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = contract
        .iter()
        .map(|(k, v)| (nibbles(&contract_data_key(IBC, k)), v.clone()))
        .collect();
    entries.push((
        nibbles(&contract_data_key("other.near", b"commitments/x")),
        b"x".to_vec(),
    ));
    entries.push((nibbles(&[0, 1, 2, 3]), b"an account record".to_vec()));
    entries.sort();
    let mut store = HashMap::new();
    let root = build(&entries, &mut store);
    (root, store, contract)
}

fn all(store: &HashMap<CryptoHash, Vec<u8>>) -> Vec<Vec<u8>> {
    store.values().cloned().collect()
}

#[test]
fn encoding_matches_nearcore_vectors() {
    // core/store/src/trie/raw_node.rs test_encode_decode.
    let value = ValueRef {
        length: 3,
        hash: sha256(&[123, 245, 255]),
    };
    let leaf = encode_node(&TrieNode::Leaf(vec![1, 2, 3], value), 42);
    let mut expected = vec![0, 3, 0, 0, 0, 1, 2, 3, 3, 0, 0, 0];
    expected.extend_from_slice(&[
        194, 40, 8, 24, 64, 219, 69, 132, 86, 52, 110, 175, 57, 198, 165, 200, 83, 237, 211, 11,
        194, 83, 251, 33, 145, 138, 234, 226, 7, 242, 186, 73,
    ]);
    expected.extend_from_slice(&[42, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(leaf, expected);
    assert_eq!(decode_node(&leaf), Ok(TrieNode::Leaf(vec![1, 2, 3], value)));

    let mut children: Box<[Option<CryptoHash>; 16]> = Box::new([None; 16]);
    children[3] = Some(CryptoHash([1; 32]));
    children[5] = Some(CryptoHash([2; 32]));
    let branch = encode_node(&TrieNode::Branch(None, children.clone()), 42);
    assert_eq!(&branch[..3], &[1, 40, 0]);
    assert_eq!(branch.len(), 3 + 64 + 8);
    assert_eq!(decode_node(&branch), Ok(TrieNode::Branch(None, children)));

    let mut children: Box<[Option<CryptoHash>; 16]> = Box::new([None; 16]);
    children[15] = Some(CryptoHash([1; 32]));
    let branch = encode_node(&TrieNode::Branch(Some(value), children), 42);
    assert_eq!(&branch[..1], &[2]);
    assert_eq!(&branch[37..39], &[0, 128]);

    let ext = encode_node(
        &TrieNode::Extension(vec![123, 245, 255], CryptoHash::default()),
        42,
    );
    assert_eq!(&ext[..8], &[3, 3, 0, 0, 0, 123, 245, 255]);
    assert_eq!(ext.len(), 8 + 32 + 8);

    let mut trailing = ext.clone();
    trailing.push(b'!');
    assert!(decode_node(&trailing).is_err());
    assert!(decode_node(&ext[..ext.len() - 1]).is_err());
}

#[test]
fn hex_prefix_keys_match_nearcore_vectors() {
    // core/store/src/trie/nibble_slice.rs tests: nibbles 0,1,2,3,4,5 and 1,2,3,4,5.
    let six = [0, 1, 2, 3, 4, 5];
    assert_eq!(encode_key(&six, false), vec![0x00, 0x01, 0x23, 0x45]);
    assert_eq!(encode_key(&six, true), vec![0x20, 0x01, 0x23, 0x45]);
    assert_eq!(encode_key(&six[1..], false), vec![0x11, 0x23, 0x45]);
    assert_eq!(encode_key(&six[1..], true), vec![0x31, 0x23, 0x45]);
    assert_eq!(
        decode_key(&[0x31, 0x23, 0x45]),
        Ok((six[1..].to_vec(), true))
    );
    assert_eq!(
        decode_key(&[32, 116, 101, 115, 116]).map(|k| k.0),
        Ok(vec![7, 4, 6, 5, 7, 3, 7, 4])
    );
}

#[test]
fn every_stored_value_is_proven() {
    let (root, store, contract) = state();
    let proof = all(&store);
    for (key, value) in &contract {
        verify_contract_state(&root, IBC, key, Some(value), &proof).expect("membership");
    }
}

#[test]
fn absent_keys_are_proven_absent() {
    let (root, store, _) = state();
    let proof = all(&store);
    for key in [
        &b"commitments/ports/transfer/channels/channel-0/sequences/3"[..],
        b"commitments/ports/transfer/channels/channel-0/sequences/",
        b"commitments/ports/transfer/channels/channel-0/sequences/100",
        b"connections/connection-1",
        b"zzz",
        b"",
    ] {
        verify_contract_state(&root, IBC, key, None, &proof).expect("absence");
        assert_eq!(
            verify_contract_state(&root, IBC, key, Some(b"x"), &proof),
            Err(TrieProofError::Absent)
        );
    }
    // The other account's key is not the IBC contract's.
    verify_contract_state(&root, IBC, b"commitments/x", None, &proof).expect("absence");
    verify_contract_state(&root, "other.near", b"commitments/x", Some(b"x"), &proof)
        .expect("membership");
}

#[test]
fn wrong_values_and_false_absence_are_refused() {
    let (root, store, contract) = state();
    let proof = all(&store);
    let (key, value) = &contract[2];
    let mut forged = value.clone();
    forged[0] ^= 1;
    assert!(matches!(
        verify_contract_state(&root, IBC, key, Some(&forged), &proof),
        Err(TrieProofError::ValueMismatch { .. })
    ));
    assert!(matches!(
        verify_contract_state(&root, IBC, key, Some(&value[..31]), &proof),
        Err(TrieProofError::ValueMismatch { .. })
    ));
    assert!(matches!(
        verify_contract_state(&root, IBC, key, None, &proof),
        Err(TrieProofError::Present { length: 32 })
    ));
}

#[test]
fn a_proof_for_another_root_or_with_a_gap_is_refused() {
    let (root, store, contract) = state();
    let (key, value) = &contract[0];
    let proof = all(&store);
    assert!(matches!(
        verify_contract_state(&sha256(b"other root"), IBC, key, Some(value), &proof),
        Err(TrieProofError::MissingNode { depth: 0, .. })
    ));
    // Dropping the nodes one at a time: the walk fails exactly when a node on its path is gone.
    let mut on_path = 0;
    for hash in store.keys() {
        let partial: Vec<Vec<u8>> = store
            .iter()
            .filter(|(h, _)| *h != hash)
            .map(|(_, b)| b.clone())
            .collect();
        match verify_contract_state(&root, IBC, key, Some(value), &partial) {
            Ok(()) => {}
            Err(TrieProofError::MissingNode { hash: missing, .. }) => {
                assert_eq!(&missing, hash);
                on_path += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(on_path >= 3, "the path has a root, inner nodes and a leaf");
    // A tampered node no longer hashes to the name its parent uses.
    let tampered: Vec<Vec<u8>> = proof
        .iter()
        .map(|b| {
            let mut b = b.clone();
            let last = b.len() - 1;
            b[last] ^= 1;
            b
        })
        .collect();
    assert!(matches!(
        verify_contract_state(&root, IBC, key, Some(value), &tampered),
        Err(TrieProofError::MissingNode { .. })
    ));
}

#[test]
fn the_empty_trie_proves_absence() {
    verify_contract_state(&CryptoHash::default(), IBC, b"anything", None, &[]).expect("empty");
}
