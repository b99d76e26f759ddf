//! The message that updates a NEAR light client hosted on a counterparty: near-ibc's ICS-12 NEAR client header
//! (`/ibc.lightclients.near.v1.Header`), built from a light-client block relayd verified and the chunk state roots
//! of that block. Pure encoding, so it is checked without a node.
//!
//! Format (octopus-network near-ibc, `ics12-near` light client, `v1/header.rs` and its `ics12_proto`): a protobuf
//! message with field 1 `bytes light_client_block` (the borsh of near-ibc's `LightClientBlock`: previous block hash,
//! next block inner hash, nearcore's `BlockHeaderInnerLite`, inner rest hash, `Option<Vec<ValidatorStake>>`
//! next producers and `Vec<Option<Signature>>` approvals) and field 2 `repeated CryptoHash
//! prev_state_root_of_chunks` (each a message with field 1 `bytes raw_data`, the 32 hash bytes). The client checks
//! state proofs against the chunk roots, whose merkle root is the header's `prev_state_root`.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::client::v1::MsgUpdateClient;
use near_primitives::hash::CryptoHash;
use near_primitives::views::LightClientBlockView;
use prost::Message;

use super::light_client::{bps_bytes, combine_hash, inner_lite_bytes, sha256};

/// The type URL near-ibc's NEAR client registers for its header.
pub const NEAR_HEADER_TYPE_URL: &str = "/ibc.lightclients.near.v1.Header";
/// The type URL of ibc-go / ibc-rs `MsgUpdateClient`.
pub const UPDATE_CLIENT_TYPE_URL: &str = "/ibc.core.client.v1.MsgUpdateClient";

/// near-ibc's `ics12_proto::v1::CryptoHash`.
#[derive(Clone, PartialEq, Message)]
pub struct RawCryptoHash {
    /// The hash's borsh (its 32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub raw_data: Vec<u8>,
}

/// near-ibc's `ics12_proto::v1::Header`.
#[derive(Clone, PartialEq, Message)]
pub struct RawNearHeader {
    /// borsh of the light-client block.
    #[prost(bytes = "vec", tag = "1")]
    pub light_client_block: Vec<u8>,
    /// The `prev_state_root` of each chunk of the block, in shard order.
    #[prost(message, repeated, tag = "2")]
    pub prev_state_root_of_chunks: Vec<RawCryptoHash>,
}

/// Why a header could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The chunk roots given do not merklize to the header's `prev_state_root`: the node's block and its
    /// light-client block disagree.
    #[error("block {height}: chunk state roots merklize to {computed}, the header's prev_state_root is {expected}")]
    ChunkRoots {
        /// The block height.
        height: u64,
        /// The merkle root of the given chunk roots.
        computed: CryptoHash,
        /// The header's `prev_state_root`.
        expected: CryptoHash,
    },
}

/// nearcore's `merklize` root over the chunks' state roots (leaves are `sha256(root)`); an odd last node moves up
/// a level unpaired. This is what a block header's `prev_state_root` commits to.
pub fn chunks_root(chunk_state_roots: &[CryptoHash]) -> CryptoHash {
    let mut level: Vec<CryptoHash> = chunk_state_roots.iter().map(|r| sha256(&r.0)).collect();
    if level.is_empty() {
        return CryptoHash::default();
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => combine_hash(left, right),
                [single, ..] => *single,
                [] => CryptoHash::default(),
            })
            .collect();
    }
    level[0]
}

/// borsh of near-ibc's `LightClientBlock` for a light-client block view. The header part is nearcore's
/// `BlockHeaderInnerLite` (the nanosecond timestamp only), the bytes relayd hashes to get the block hash.
pub fn light_client_block_bytes(block: &LightClientBlockView) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&block.prev_block_hash.0);
    out.extend_from_slice(&block.next_block_inner_hash.0);
    out.extend_from_slice(&inner_lite_bytes(&block.inner_lite));
    out.extend_from_slice(&block.inner_rest_hash.0);
    match &block.next_bps {
        None => out.push(0),
        Some(bps) => {
            out.push(1);
            out.extend_from_slice(&bps_bytes(bps));
        }
    }
    out.extend_from_slice(&(block.approvals_after_next.len() as u32).to_le_bytes());
    for approval in &block.approvals_after_next {
        match approval {
            None => out.push(0),
            Some(signature) => {
                out.push(1);
                // near-crypto's borsh of a signature: the key type byte, then the signature bytes.
                out.push(signature.key_type() as u8);
                match &**signature {
                    near_crypto::Signature::ED25519(sig) => out.extend_from_slice(&sig.to_bytes()),
                    near_crypto::Signature::SECP256K1(sig) => {
                        let raw: [u8; 65] = sig.clone().into();
                        out.extend_from_slice(&raw)
                    }
                }
            }
        }
    }
    out
}

/// The NEAR client header for `block`, whose chunks have `chunk_state_roots` (in shard order), as the protobuf
/// `Any` near-ibc's NEAR client decodes. Refuses chunk roots the block's header does not commit to.
pub fn near_header(
    block: &LightClientBlockView,
    chunk_state_roots: &[CryptoHash],
) -> Result<Any, HeaderError> {
    Ok(Any {
        type_url: NEAR_HEADER_TYPE_URL.to_owned(),
        value: raw_header(block, chunk_state_roots)?.encode_to_vec(),
    })
}

fn raw_header(
    block: &LightClientBlockView,
    chunk_state_roots: &[CryptoHash],
) -> Result<RawNearHeader, HeaderError> {
    let computed = chunks_root(chunk_state_roots);
    if computed != block.inner_lite.prev_state_root {
        return Err(HeaderError::ChunkRoots {
            height: block.inner_lite.height,
            computed,
            expected: block.inner_lite.prev_state_root,
        });
    }
    Ok(RawNearHeader {
        light_client_block: light_client_block_bytes(block),
        prev_state_root_of_chunks: chunk_state_roots
            .iter()
            .map(|r| RawCryptoHash {
                raw_data: r.0.to_vec(),
            })
            .collect(),
    })
}

/// `MsgUpdateClient` of `client_id` with `header`, signed by `signer`.
pub fn update_client_msg(client_id: &str, header: Any, signer: &str) -> Any {
    let msg = MsgUpdateClient {
        client_id: client_id.to_owned(),
        client_message: Some(header),
        signer: signer.to_owned(),
    };
    Any {
        type_url: UPDATE_CLIENT_TYPE_URL.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// The type URL of the NEAR client state the counterparty's `12-near` client accepts.
pub const NEAR_CLIENT_STATE_TYPE_URL: &str = "/ibc.lightclients.near.v1.ClientState";
/// The type URL of the NEAR consensus state.
pub const NEAR_CONSENSUS_STATE_TYPE_URL: &str = "/ibc.lightclients.near.v1.ConsensusState";
/// The type URL of `MsgCreateClient`.
pub const CREATE_CLIENT_TYPE_URL: &str = "/ibc.core.client.v1.MsgCreateClient";

/// The NEAR client state: near-ibc's fields (trusting period in ns, frozen height, latest height and its
/// timestamp in ns, and the unused upgrade prefix and key), numbered as the Cosmos devnet's `12-near` client reads
/// them (`docs/devnet.md`).
#[derive(Clone, PartialEq, Message)]
pub struct RawNearClientState {
    /// Trusting period in nanoseconds.
    #[prost(uint64, tag = "1")]
    pub trusting_period: u64,
    /// Height the client was frozen at, if it was.
    #[prost(message, optional, tag = "2")]
    pub frozen_height: Option<ibc_proto::ibc::core::client::v1::Height>,
    /// Latest NEAR height the client trusts.
    #[prost(uint64, tag = "3")]
    pub latest_height: u64,
    /// That block's timestamp in nanoseconds.
    #[prost(uint64, tag = "4")]
    pub latest_timestamp: u64,
    /// Commitment prefix of an upgrade (unused).
    #[prost(bytes = "vec", tag = "5")]
    pub upgrade_commitment_prefix: Vec<u8>,
    /// Storage key of an upgrade (unused).
    #[prost(bytes = "vec", tag = "6")]
    pub upgrade_key: Vec<u8>,
}

/// The NEAR consensus state: the producers of the header's epoch, the header, and the producers of the epoch
/// after it (each borsh-encoded as nearcore encodes them).
#[derive(Clone, PartialEq, Message)]
pub struct RawNearConsensusState {
    /// borsh `Vec<ValidatorStake>` of the header's epoch.
    #[prost(bytes = "vec", tag = "1")]
    pub current_bps: Vec<u8>,
    /// The header the state is made from.
    #[prost(message, optional, tag = "2")]
    pub header: Option<RawNearHeader>,
    /// borsh `Option<Vec<ValidatorStake>>` of the next epoch.
    #[prost(bytes = "vec", tag = "3")]
    pub next_bps: Vec<u8>,
}

/// What a NEAR client is created from: a light-client block relayd verified, its chunk state roots, and the
/// producers its epoch and the next one are checked against.
pub struct NearClientStart<'a> {
    /// The verified light-client block.
    pub block: &'a LightClientBlockView,
    /// Its chunks' state roots, in shard order.
    pub chunk_state_roots: &'a [CryptoHash],
    /// Producers of the block's epoch.
    pub epoch_bps: &'a [near_primitives::views::validator_stake_view::ValidatorStakeView],
    /// Producers of the epoch after it, when known.
    pub next_bps: Option<&'a [near_primitives::views::validator_stake_view::ValidatorStakeView]>,
}

/// `MsgCreateClient` of a `12-near` client trusting `start` for `trusting_period`, signed by `signer`. Its
/// consensus state's root is the block's `prev_state_root` and its time the block's timestamp. Refuses chunk
/// roots the block does not commit to.
pub fn create_client_msg(
    start: &NearClientStart<'_>,
    trusting_period: std::time::Duration,
    signer: &str,
) -> Result<Any, HeaderError> {
    let header = raw_header(start.block, start.chunk_state_roots)?;
    let next_bps = match start.next_bps {
        None => vec![0],
        Some(bps) => {
            let mut out = vec![1];
            out.extend_from_slice(&bps_bytes(bps));
            out
        }
    };
    let consensus = RawNearConsensusState {
        current_bps: bps_bytes(start.epoch_bps),
        header: Some(header),
        next_bps,
    };
    let client = RawNearClientState {
        trusting_period: u64::try_from(trusting_period.as_nanos()).unwrap_or(u64::MAX),
        frozen_height: None,
        latest_height: start.block.inner_lite.height,
        latest_timestamp: start.block.inner_lite.timestamp_nanosec,
        upgrade_commitment_prefix: Vec::new(),
        upgrade_key: Vec::new(),
    };
    let msg = ibc_proto::ibc::core::client::v1::MsgCreateClient {
        client_state: Some(Any {
            type_url: NEAR_CLIENT_STATE_TYPE_URL.to_owned(),
            value: client.encode_to_vec(),
        }),
        consensus_state: Some(Any {
            type_url: NEAR_CONSENSUS_STATE_TYPE_URL.to_owned(),
            value: consensus.encode_to_vec(),
        }),
        signer: signer.to_owned(),
    };
    Ok(Any {
        type_url: CREATE_CLIENT_TYPE_URL.to_owned(),
        value: msg.encode_to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::near::light_client::lite_block_hash;
    use near_primitives::views::LightClientBlockLiteView;

    fn recorded(name: &str) -> LightClientBlockView {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/near-light-client")
            .join(name);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        serde_json::from_value(doc["body"].clone()).expect("light-client block")
    }

    #[test]
    fn the_borsh_of_a_mainnet_block_carries_the_parts_its_hash_is_made_of() {
        for name in ["main_0.json", "main_1.json", "test_1.json"] {
            let block = recorded(name);
            let bytes = light_client_block_bytes(&block);
            // Fixed part: two hashes, the 208-byte inner lite, the inner rest hash.
            let inner_lite = &bytes[64..272];
            let prev: [u8; 32] = bytes[0..32].try_into().expect("32");
            let rest: [u8; 32] = bytes[272..304].try_into().expect("32");
            let hash = combine_hash(
                &combine_hash(&sha256(inner_lite), &CryptoHash(rest)),
                &CryptoHash(prev),
            );
            let lite = LightClientBlockLiteView {
                prev_block_hash: block.prev_block_hash,
                inner_rest_hash: block.inner_rest_hash,
                inner_lite: block.inner_lite.clone(),
            };
            assert_eq!(hash, lite_block_hash(&lite), "{name}");
            // Then the optional producers, then the approvals: 1 + 65 bytes each, 1 byte when absent.
            let mut at = 304;
            match &block.next_bps {
                Some(bps) => {
                    assert_eq!(bytes[at], 1);
                    let encoded = bps_bytes(bps);
                    assert_eq!(&bytes[at + 1..at + 1 + encoded.len()], encoded.as_slice());
                    at += 1 + encoded.len();
                }
                None => {
                    assert_eq!(bytes[at], 0);
                    at += 1;
                }
            }
            let count = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
            assert_eq!(count, block.approvals_after_next.len());
            at += 4;
            for approval in &block.approvals_after_next {
                if approval.is_some() {
                    assert_eq!(bytes[at], 1);
                    assert_eq!(bytes[at + 1], 0, "ed25519");
                    at += 66;
                } else {
                    assert_eq!(bytes[at], 0);
                    at += 1;
                }
            }
            assert_eq!(at, bytes.len(), "{name}: nothing after the approvals");
        }
    }

    #[test]
    fn a_header_carries_chunk_roots_its_block_commits_to() {
        let mut block = recorded("main_1.json");
        let roots = vec![sha256(b"shard 0"), sha256(b"shard 1"), sha256(b"shard 2")];
        block.inner_lite.prev_state_root = chunks_root(&roots);
        let header = near_header(&block, &roots).expect("header");
        assert_eq!(header.type_url, NEAR_HEADER_TYPE_URL);
        let raw = RawNearHeader::decode(header.value.as_slice()).expect("decodes");
        assert_eq!(raw.light_client_block, light_client_block_bytes(&block));
        let back: Vec<CryptoHash> = raw
            .prev_state_root_of_chunks
            .iter()
            .map(|h| CryptoHash(h.raw_data.as_slice().try_into().expect("32 bytes")))
            .collect();
        assert_eq!(back, roots);

        // Three leaves: the third moves up unpaired.
        let leaves: Vec<CryptoHash> = roots.iter().map(|r| sha256(&r.0)).collect();
        assert_eq!(
            chunks_root(&roots),
            combine_hash(&combine_hash(&leaves[0], &leaves[1]), &leaves[2])
        );
        assert_eq!(chunks_root(&roots[..1]), leaves[0]);

        let mut swapped = roots.clone();
        swapped.swap(0, 1);
        assert!(matches!(
            near_header(&block, &swapped),
            Err(HeaderError::ChunkRoots { .. })
        ));

        let update = update_client_msg("12-near-0", header.clone(), "cosmos1relayer");
        assert_eq!(update.type_url, UPDATE_CLIENT_TYPE_URL);
        let msg = MsgUpdateClient::decode(update.value.as_slice()).expect("decodes");
        assert_eq!(msg.client_id, "12-near-0");
        assert_eq!(msg.client_message, Some(header));
    }
}
