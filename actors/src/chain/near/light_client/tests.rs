//! Tests of the NEAR light client's verification against recorded and built blocks.

use super::*;
use near_primitives::types::Balance;
use std::path::PathBuf;

/// One recorded `next_light_client_block` exchange.
#[derive(serde::Deserialize)]
struct Fixture {
    last_block_hash: CryptoHash,
    body: LightClientBlockView,
}

fn fixture(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/near-light-client")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture parses")
}

fn lite(block: &LightClientBlockView) -> LightClientBlockLiteView {
    LightClientBlockLiteView {
        prev_block_hash: block.prev_block_hash,
        inner_rest_hash: block.inner_rest_hash,
        inner_lite: block.inner_lite.clone(),
    }
}

/// Trust the first block of a recorded sequence as given: its own epoch's producers are not recorded, its
/// `next_bps` are the producers of the epoch the second block is in.
fn start(first: &LightClientBlockView) -> TrustedNear {
    TrustedNear::new(lite(first), Vec::new(), first.next_bps.clone())
}

fn network(prefix: &str) -> (TrustedNear, Vec<LightClientBlockView>) {
    let first = fixture(&format!("{prefix}_0.json")).body;
    let rest = (1..=2)
        .map(|i| fixture(&format!("{prefix}_{i}.json")).body)
        .collect();
    (start(&first), rest)
}

#[test]
fn recomputed_hashes_are_the_hashes_the_next_requests_named() {
    // The mainnet files were recorded as a chain of requests, each naming the block before it; the testnet
    // files were not (their last_block_hash is another block of the same epoch).
    for prefix in ["main"] {
        for i in 0..2 {
            let block = fixture(&format!("{prefix}_{i}.json")).body;
            let next = fixture(&format!("{prefix}_{}.json", i + 1));
            assert_eq!(
                lite_block_hash(&lite(&block)),
                next.last_block_hash,
                "{prefix}_{i}"
            );
        }
    }
}

#[test]
fn recorded_mainnet_and_testnet_blocks_verify_in_sequence() {
    for prefix in ["main", "test"] {
        let (mut trusted, blocks) = network(prefix);
        for block in &blocks {
            let advanced = trusted.advance(block).expect("recorded block verifies");
            assert!(
                advanced.epoch_changed,
                "{prefix}: each fixture is one epoch on"
            );
            assert_eq!(advanced.trusted.head.inner_lite, block.inner_lite);
            assert_eq!(
                Some(advanced.trusted.epoch_bps.clone()),
                trusted.next_epoch_bps
            );
            assert_eq!(advanced.trusted.next_epoch_bps, block.next_bps);
            assert_eq!(advanced.hash, lite_block_hash(&lite(block)));
            trusted = advanced.trusted;
        }
        assert_eq!(trusted.head.inner_lite.height, blocks[1].inner_lite.height);
    }
}

fn mainnet_step() -> (TrustedNear, LightClientBlockView) {
    let (trusted, mut blocks) = network("main");
    (trusted, blocks.remove(0))
}

#[test]
fn a_flipped_signature_is_refused() {
    let (trusted, mut block) = mainnet_step();
    let index = block
        .approvals_after_next
        .iter()
        .position(Option::is_some)
        .expect("some approval");
    let Some(Some(signature)) = block.approvals_after_next.get_mut(index) else {
        unreachable!()
    };
    // borsh: key type byte, then the 64 signature bytes.
    let mut bytes = borsh::to_vec(signature.as_ref()).expect("borsh");
    bytes[11] ^= 0x01;
    **signature = borsh::from_slice(&bytes).expect("still a signature");
    match trusted.advance(&block) {
        Err(LightClientError::InvalidSignature { index: i, .. }) => assert_eq!(i, index),
        other => panic!("expected InvalidSignature, got {other:?}"),
    }
}

#[test]
fn a_changed_stake_in_next_bps_is_refused() {
    let (trusted, mut block) = mainnet_step();
    let bps = block.next_bps.as_mut().expect("next_bps");
    let ValidatorStakeView::V1(first) = &mut bps[0];
    first.stake = Balance::from_yoctonear(first.stake.as_yoctonear() + 1);
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::NextBpsHashMismatch { .. })
    ));
}

#[test]
fn a_changed_stake_in_the_trusted_producers_is_refused() {
    let (mut trusted, block) = mainnet_step();
    let producers = trusted.next_epoch_bps.as_mut().expect("next bps");
    let ValidatorStakeView::V1(p) = &mut producers[0];
    p.stake = Balance::from_yoctonear(p.stake.as_yoctonear() + 1);
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::TrustedProducersMismatch { .. })
    ));
}

#[test]
fn stake_weights_decide_even_with_valid_signatures() {
    // Give the producers that did not sign almost all the stake: the real approvals no longer reach 2/3.
    // On an epoch change such a list is refused by its hash already, so this runs on the same-epoch path (a
    // head in the block's own epoch), where the caller's list of the epoch's producers is taken as kept.
    let (trusted, block) = mainnet_step();
    let mut trusted = TrustedNear::new(
        lite(&block),
        trusted.next_epoch_bps.clone().expect("next bps"),
        block.next_bps.clone(),
    );
    trusted.head.inner_lite.height -= 1;
    trusted
        .advance(&block)
        .expect("unchanged stakes verify on the same-epoch path");
    for (i, producer) in trusted.epoch_bps.iter_mut().enumerate() {
        let ValidatorStakeView::V1(p) = producer;
        if block
            .approvals_after_next
            .get(i)
            .is_none_or(Option::is_none)
        {
            p.stake = Balance::from_yoctonear(p.stake.as_yoctonear().saturating_mul(1_000_000));
        }
    }
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::NotEnoughStake { .. })
    ));
}

#[test]
fn dropped_next_bps_on_an_epoch_change_is_refused() {
    let (trusted, mut block) = mainnet_step();
    block.next_bps = None;
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::MissingNextBps { .. })
    ));
}

#[test]
fn too_few_approvals_are_refused() {
    let (trusted, mut block) = mainnet_step();
    let signed = block.approvals_after_next.iter().flatten().count();
    let mut dropped = 0;
    for approval in block.approvals_after_next.iter_mut() {
        if approval.is_some() && dropped < signed / 2 {
            *approval = None;
            dropped += 1;
        }
    }
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::NotEnoughStake { .. })
    ));
}

#[test]
fn a_changed_header_field_breaks_the_signatures() {
    let (trusted, mut block) = mainnet_step();
    block.inner_lite.prev_state_root = sha256(b"another state");
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::InvalidSignature { .. })
    ));
    let (trusted, mut block) = mainnet_step();
    block.inner_lite.timestamp_nanosec += 1;
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::InvalidSignature { .. })
    ));
}

#[test]
fn approvals_beyond_the_producer_list_count_for_nothing() {
    let (trusted, mut block) = mainnet_step();
    let producers = trusted.next_epoch_bps.as_ref().map_or(0, Vec::len);
    let signed: Vec<_> = block
        .approvals_after_next
        .iter()
        .flatten()
        .cloned()
        .collect();
    block.approvals_after_next = vec![None; producers];
    block
        .approvals_after_next
        .extend(signed.into_iter().map(Some));
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::NotEnoughStake { approved: 0, .. })
    ));
}

#[test]
fn testnet_blocks_carry_approvals_of_the_next_epoch_producers() {
    // Recorded testnet data: more approvals than producers of the block's epoch, and the block verifies.
    let (trusted, blocks) = network("test");
    let producers = trusted.next_epoch_bps.as_ref().map_or(0, Vec::len);
    assert!(blocks[0].approvals_after_next.len() > producers);
    trusted.advance(&blocks[0]).expect("verifies");
}

#[test]
fn height_and_epoch_rules() {
    let (trusted, mut block) = mainnet_step();
    block.inner_lite.height = trusted.head.inner_lite.height;
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::NotAboveHead { .. })
    ));
    let (trusted, mut block) = mainnet_step();
    block.inner_lite.epoch_id = sha256(b"some other epoch");
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::UnknownEpoch { .. })
    ));
    let (mut trusted, block) = mainnet_step();
    trusted.next_epoch_bps = None;
    assert!(matches!(
        trusted.advance(&block),
        Err(LightClientError::ProducersUnknown { .. })
    ));
}

#[test]
fn a_block_two_epochs_on_is_refused() {
    let (trusted, blocks) = network("main");
    assert!(matches!(
        trusted.advance(&blocks[1]),
        Err(LightClientError::UnknownEpoch { .. })
    ));
}

#[test]
fn two_thirds_is_strict_and_exact() {
    assert!(!more_than_two_thirds(2, 3));
    assert!(more_than_two_thirds(3, 4));
    assert!(!more_than_two_thirds(0, 0));
    assert!(!more_than_two_thirds(6, 9));
    assert!(more_than_two_thirds(7, 10));
    // 2*total/3 = 6.67 for total 10: 6 is not enough, 7 is.
    assert!(!more_than_two_thirds(6, 10));
    let big = u128::MAX;
    assert!(!more_than_two_thirds(big / 3 * 2, big));
    assert!(more_than_two_thirds(big / 3 * 2 + 1, big));
}
