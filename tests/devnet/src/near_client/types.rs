//! The NEAR client's messages in the shapes of near-ibc's ICS-12 client (`/ibc.lightclients.near.v1.*`): the
//! protobuf envelopes, the borsh light-client block inside the header, and their domain forms.
//!
//! The header is near-ibc's: protobuf field 1 `bytes light_client_block` (borsh of near-ibc's `LightClientBlock`,
//! whose header part is nearcore's `BlockHeaderInnerLite`) and field 2 `repeated CryptoHash
//! prev_state_root_of_chunks`. Client and consensus states carry near-ibc's fields; their protobuf field
//! numbers are the devnet's own (see `docs/devnet.md`).

use std::time::Duration;

use borsh::{BorshDeserialize, BorshSerialize};
use ibc::core::client::types::Height;
use ibc::core::commitment_types::commitment::CommitmentRoot;
use ibc::core::host::types::error::DecodingError;
use ibc::primitives::proto::Protobuf;
use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::client::v1::Height as RawHeight;
use near_crypto::Signature;
use near_primitives::block_header::BlockHeaderInnerLite;
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::merkle::combine_hash;
use near_primitives::types::validator_stake::ValidatorStake;
use near_primitives::views::LightClientBlockView;
use prost::Message;

/// Type URL of the NEAR client state.
pub const NEAR_CLIENT_STATE_TYPE_URL: &str = "/ibc.lightclients.near.v1.ClientState";
/// Type URL of the NEAR consensus state.
pub const NEAR_CONSENSUS_STATE_TYPE_URL: &str = "/ibc.lightclients.near.v1.ConsensusState";
/// Type URL of the NEAR header (near-ibc's).
pub const NEAR_HEADER_TYPE_URL: &str = "/ibc.lightclients.near.v1.Header";
/// The client type, as near-ibc names it.
pub const NEAR_CLIENT_TYPE: &str = "12-near";
/// Bound on a header's protobuf size: a light-client block of a few hundred producers and the chunk roots.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;
/// Bound on the number of chunk roots in a header (NEAR mainnet has 8 shards today).
pub const MAX_CHUNKS: usize = 1024;

/// near-ibc's `CryptoHash` message.
#[derive(Clone, PartialEq, Message)]
pub struct RawCryptoHash {
    /// The 32 hash bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub raw_data: Vec<u8>,
}

/// near-ibc's `Header` message.
#[derive(Clone, PartialEq, Message)]
pub struct RawHeader {
    /// borsh of the light-client block.
    #[prost(bytes = "vec", tag = "1")]
    pub light_client_block: Vec<u8>,
    /// The chunks' `prev_state_root`s, in shard order.
    #[prost(message, repeated, tag = "2")]
    pub prev_state_root_of_chunks: Vec<RawCryptoHash>,
}

/// The client state message: near-ibc's fields.
#[derive(Clone, PartialEq, Message)]
pub struct RawClientState {
    /// Trusting period in nanoseconds.
    #[prost(uint64, tag = "1")]
    pub trusting_period: u64,
    /// Height the client was frozen at, if it was.
    #[prost(message, optional, tag = "2")]
    pub frozen_height: Option<RawHeight>,
    /// Latest NEAR block height the client trusts.
    #[prost(uint64, tag = "3")]
    pub latest_height: u64,
    /// That block's timestamp in nanoseconds.
    #[prost(uint64, tag = "4")]
    pub latest_timestamp: u64,
    /// Commitment prefix an upgrade would be proven under (unused: upgrades are refused).
    #[prost(bytes = "vec", tag = "5")]
    pub upgrade_commitment_prefix: Vec<u8>,
    /// Storage key an upgrade would be proven at (unused).
    #[prost(bytes = "vec", tag = "6")]
    pub upgrade_key: Vec<u8>,
}

/// The consensus state message: near-ibc's block producers and header, plus the producers of the next epoch
/// the client already knows (needed to accept the first block of that epoch).
#[derive(Clone, PartialEq, Message)]
pub struct RawConsensusState {
    /// borsh `Vec<ValidatorStake>`: producers of the header's epoch (empty when not known, for a trusted start).
    #[prost(bytes = "vec", tag = "1")]
    pub current_bps: Vec<u8>,
    /// The header this state was made from.
    #[prost(message, optional, tag = "2")]
    pub header: Option<RawHeader>,
    /// borsh `Option<Vec<ValidatorStake>>`: producers of the epoch after the header's, once known.
    #[prost(bytes = "vec", tag = "3")]
    pub next_bps: Vec<u8>,
}

/// near-ibc's `LightClientBlock`, borsh-encoded in the header.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LightClientBlock {
    /// Hash of the block before.
    pub prev_block_hash: CryptoHash,
    /// Inner hash of the block after (its approvals sign it).
    pub next_block_inner_hash: CryptoHash,
    /// nearcore's lite header: height, epochs, roots, timestamp, next producers hash, block merkle root.
    pub inner_lite: BlockHeaderInnerLite,
    /// Hash of the rest of the header.
    pub inner_rest_hash: CryptoHash,
    /// Producers of the next epoch, when the block says them.
    pub next_bps: Option<Vec<ValidatorStake>>,
    /// Approvals of the block two above, by position in the producer list.
    pub approvals_after_next: Vec<Option<Box<Signature>>>,
}

impl LightClientBlock {
    /// The block of a `next_light_client_block` result.
    pub fn from_view(view: &LightClientBlockView) -> Self {
        Self {
            prev_block_hash: view.prev_block_hash,
            next_block_inner_hash: view.next_block_inner_hash,
            inner_lite: view.inner_lite.clone().into(),
            inner_rest_hash: view.inner_rest_hash,
            next_bps: view.next_bps.as_ref().map(|bps| {
                bps.iter()
                    .cloned()
                    .map(|b| b.into_validator_stake())
                    .collect()
            }),
            approvals_after_next: view.approvals_after_next.clone(),
        }
    }

    /// The block hash, recomputed from its parts (nearcore `BlockHeader::compute_hash`).
    pub fn hash(&self) -> CryptoHash {
        let lite = borsh::to_vec(&self.inner_lite).unwrap_or_default();
        combine_hash(
            &combine_hash(&hash(&lite), &self.inner_rest_hash),
            &self.prev_block_hash,
        )
    }

    /// The block height.
    pub fn height(&self) -> u64 {
        self.inner_lite.height
    }
}

/// A NEAR header: a light-client block and its chunks' state roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearHeader {
    /// The light-client block.
    pub block: LightClientBlock,
    /// The chunks' `prev_state_root`s, in shard order.
    pub chunk_roots: Vec<CryptoHash>,
}

impl NearHeader {
    /// The header's height as an IBC height (revision 0).
    pub fn height(&self) -> Result<Height, DecodingError> {
        Height::new(0, self.block.height())
            .map_err(|e| DecodingError::invalid_raw_data(format!("height: {e}")))
    }
}

fn hash32(bytes: &[u8], what: &str) -> Result<CryptoHash, DecodingError> {
    let b: [u8; 32] = bytes
        .try_into()
        .map_err(|_| DecodingError::invalid_raw_data(format!("{what}: not 32 bytes")))?;
    Ok(CryptoHash(b))
}

impl TryFrom<RawHeader> for NearHeader {
    type Error = DecodingError;

    fn try_from(raw: RawHeader) -> Result<Self, Self::Error> {
        if raw.prev_state_root_of_chunks.len() > MAX_CHUNKS {
            return Err(DecodingError::invalid_raw_data(format!(
                "{} chunk roots, at most {MAX_CHUNKS}",
                raw.prev_state_root_of_chunks.len()
            )));
        }
        let block = LightClientBlock::try_from_slice(&raw.light_client_block)
            .map_err(|e| DecodingError::invalid_raw_data(format!("light_client_block: {e}")))?;
        let chunk_roots = raw
            .prev_state_root_of_chunks
            .iter()
            .map(|h| hash32(&h.raw_data, "chunk state root"))
            .collect::<Result<_, _>>()?;
        Ok(Self { block, chunk_roots })
    }
}

impl From<NearHeader> for RawHeader {
    fn from(h: NearHeader) -> Self {
        Self {
            light_client_block: borsh::to_vec(&h.block).unwrap_or_default(),
            prev_state_root_of_chunks: h
                .chunk_roots
                .iter()
                .map(|r| RawCryptoHash {
                    raw_data: r.0.to_vec(),
                })
                .collect(),
        }
    }
}

impl Protobuf<RawHeader> for NearHeader {}

impl TryFrom<Any> for NearHeader {
    type Error = DecodingError;

    fn try_from(any: Any) -> Result<Self, Self::Error> {
        if any.type_url != NEAR_HEADER_TYPE_URL {
            return Err(DecodingError::MismatchedResourceName {
                expected: NEAR_HEADER_TYPE_URL.to_owned(),
                actual: any.type_url,
            });
        }
        if any.value.len() > MAX_HEADER_BYTES {
            return Err(DecodingError::invalid_raw_data(format!(
                "header of {} bytes, at most {MAX_HEADER_BYTES}",
                any.value.len()
            )));
        }
        RawHeader::decode(any.value.as_slice())
            .map_err(DecodingError::Prost)?
            .try_into()
    }
}

impl From<NearHeader> for Any {
    fn from(h: NearHeader) -> Self {
        Any {
            type_url: NEAR_HEADER_TYPE_URL.to_owned(),
            value: RawHeader::from(h).encode_to_vec(),
        }
    }
}

/// What the client trusts about one NEAR block: its header and the producers needed to check what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearConsensusState {
    header: NearHeader,
    current_bps: Vec<ValidatorStake>,
    next_bps: Option<Vec<ValidatorStake>>,
    /// The header's `prev_state_root`, as ibc-rs reads it.
    commitment_root: CommitmentRoot,
}

impl NearConsensusState {
    /// The state of `header`, whose epoch is produced by `current_bps` (empty when not known, for a trusted
    /// start) and the epoch after by `next_bps` (once known).
    pub fn new(
        header: NearHeader,
        current_bps: Vec<ValidatorStake>,
        next_bps: Option<Vec<ValidatorStake>>,
    ) -> Self {
        let commitment_root =
            CommitmentRoot::from_bytes(&header.block.inner_lite.prev_state_root.0);
        Self {
            header,
            current_bps,
            next_bps,
            commitment_root,
        }
    }

    /// The header.
    pub fn header(&self) -> &NearHeader {
        &self.header
    }

    /// Producers of the header's epoch.
    pub fn current_bps(&self) -> &[ValidatorStake] {
        &self.current_bps
    }

    /// Producers of the epoch after the header's, once known.
    pub fn next_bps(&self) -> Option<&[ValidatorStake]> {
        self.next_bps.as_deref()
    }

    /// The commitment root: the header's `prev_state_root` (the state after the block's parent).
    pub fn root(&self) -> CryptoHash {
        self.header.block.inner_lite.prev_state_root
    }

    /// The root as ibc-rs reads it.
    pub fn commitment_root(&self) -> &CommitmentRoot {
        &self.commitment_root
    }

    /// The header's timestamp in nanoseconds.
    pub fn timestamp_ns(&self) -> u64 {
        self.header.block.inner_lite.timestamp
    }
}

impl TryFrom<RawConsensusState> for NearConsensusState {
    type Error = DecodingError;

    fn try_from(raw: RawConsensusState) -> Result<Self, Self::Error> {
        let header = raw
            .header
            .ok_or_else(|| DecodingError::missing_raw_data("consensus state header"))?
            .try_into()?;
        let current_bps = Vec::<ValidatorStake>::try_from_slice(&raw.current_bps)
            .map_err(|e| DecodingError::invalid_raw_data(format!("current_bps: {e}")))?;
        let next_bps = Option::<Vec<ValidatorStake>>::try_from_slice(&raw.next_bps)
            .map_err(|e| DecodingError::invalid_raw_data(format!("next_bps: {e}")))?;
        Ok(Self::new(header, current_bps, next_bps))
    }
}

impl From<NearConsensusState> for RawConsensusState {
    fn from(cs: NearConsensusState) -> Self {
        Self {
            current_bps: borsh::to_vec(&cs.current_bps).unwrap_or_default(),
            header: Some(cs.header.into()),
            next_bps: borsh::to_vec(&cs.next_bps).unwrap_or_default(),
        }
    }
}

impl Protobuf<RawConsensusState> for NearConsensusState {}

impl TryFrom<Any> for NearConsensusState {
    type Error = DecodingError;

    fn try_from(any: Any) -> Result<Self, Self::Error> {
        if any.type_url != NEAR_CONSENSUS_STATE_TYPE_URL {
            return Err(DecodingError::MismatchedResourceName {
                expected: NEAR_CONSENSUS_STATE_TYPE_URL.to_owned(),
                actual: any.type_url,
            });
        }
        RawConsensusState::decode(any.value.as_slice())
            .map_err(DecodingError::Prost)?
            .try_into()
    }
}

impl From<NearConsensusState> for Any {
    fn from(cs: NearConsensusState) -> Self {
        Any {
            type_url: NEAR_CONSENSUS_STATE_TYPE_URL.to_owned(),
            value: RawConsensusState::from(cs).encode_to_vec(),
        }
    }
}

impl Protobuf<Any> for NearConsensusState {}

/// The client's parameters and head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearClientState {
    /// How long a head stays trusted without an update.
    pub trusting_period: Duration,
    /// Set once misbehaviour was seen.
    pub frozen_height: Option<Height>,
    /// Latest trusted NEAR height.
    pub latest_height: u64,
    /// Its timestamp in nanoseconds.
    pub latest_timestamp: u64,
    /// Unused (upgrades are refused).
    pub upgrade_commitment_prefix: Vec<u8>,
    /// Unused (upgrades are refused).
    pub upgrade_key: Vec<u8>,
}

impl NearClientState {
    /// A client trusting `cs` for `trusting_period`.
    pub fn new(cs: &NearConsensusState, trusting_period: Duration) -> Self {
        Self {
            trusting_period,
            frozen_height: None,
            latest_height: cs.header().block.height(),
            latest_timestamp: cs.timestamp_ns(),
            upgrade_commitment_prefix: Vec::new(),
            upgrade_key: Vec::new(),
        }
    }
}

impl TryFrom<RawClientState> for NearClientState {
    type Error = DecodingError;

    fn try_from(raw: RawClientState) -> Result<Self, Self::Error> {
        if raw.trusting_period == 0 {
            return Err(DecodingError::invalid_raw_data("trusting period is zero"));
        }
        if raw.latest_height == 0 {
            return Err(DecodingError::invalid_raw_data("latest height is zero"));
        }
        let frozen_height = raw
            .frozen_height
            .map(|h| {
                Height::new(h.revision_number, h.revision_height)
                    .map_err(|e| DecodingError::invalid_raw_data(format!("frozen height: {e}")))
            })
            .transpose()?;
        Ok(Self {
            trusting_period: Duration::from_nanos(raw.trusting_period),
            frozen_height,
            latest_height: raw.latest_height,
            latest_timestamp: raw.latest_timestamp,
            upgrade_commitment_prefix: raw.upgrade_commitment_prefix,
            upgrade_key: raw.upgrade_key,
        })
    }
}

impl From<NearClientState> for RawClientState {
    fn from(cs: NearClientState) -> Self {
        Self {
            trusting_period: u64::try_from(cs.trusting_period.as_nanos()).unwrap_or(u64::MAX),
            frozen_height: cs.frozen_height.map(|h| RawHeight {
                revision_number: h.revision_number(),
                revision_height: h.revision_height(),
            }),
            latest_height: cs.latest_height,
            latest_timestamp: cs.latest_timestamp,
            upgrade_commitment_prefix: cs.upgrade_commitment_prefix,
            upgrade_key: cs.upgrade_key,
        }
    }
}

impl Protobuf<RawClientState> for NearClientState {}

impl TryFrom<Any> for NearClientState {
    type Error = DecodingError;

    fn try_from(any: Any) -> Result<Self, Self::Error> {
        if any.type_url != NEAR_CLIENT_STATE_TYPE_URL {
            return Err(DecodingError::MismatchedResourceName {
                expected: NEAR_CLIENT_STATE_TYPE_URL.to_owned(),
                actual: any.type_url,
            });
        }
        RawClientState::decode(any.value.as_slice())
            .map_err(DecodingError::Prost)?
            .try_into()
    }
}

impl From<NearClientState> for Any {
    fn from(cs: NearClientState) -> Self {
        Any {
            type_url: NEAR_CLIENT_STATE_TYPE_URL.to_owned(),
            value: RawClientState::from(cs).encode_to_vec(),
        }
    }
}

impl Protobuf<Any> for NearClientState {}
