//! Block production: headers linked by `last_block_id` and commits carrying every validator's real ed25519
//! precommit signature, so relayd's light client verifies devnet headers exactly as it would a CometBFT chain's.
//!
//! There is no networking consensus: all validator keys live in this process and every validator of a height
//! signs its block. What a light client can check (hashes, signatures, voting power, time, validator-set
//! changes) is genuine.

pub mod schedule;

use prost::Message;
use sha2::{Digest, Sha256};
use tendermint::block::{self, parts, Commit, CommitSig, Header};
use tendermint::consensus;
use tendermint::crypto::default::Sha256 as MerkleSha256;
use tendermint::merkle::simple_hash_from_byte_vectors;
use tendermint::{abci, chain, evidence, validator, vote, Block, Hash, Signature, Time};
use tendermint_proto::v0_38 as pb;

use crate::genesis::ValidatorKey;
pub use schedule::Schedule;

/// CometBFT's block protocol version (v0.38).
pub const BLOCK_PROTOCOL: u64 = 11;
/// Size of block parts when hashing the serialized block into its part-set header.
const BLOCK_PART_SIZE: usize = 65_536;

/// Hash of a list of byte strings as CometBFT's merkle tree defines it (empty list: sha256 of nothing).
pub fn merkle_hash(items: &[impl AsRef<[u8]>]) -> Hash {
    Hash::Sha256(simple_hash_from_byte_vectors::<MerkleSha256>(items))
}

/// The merkle hash of an empty list, used for empty evidence and the first block's last commit.
pub fn empty_hash() -> Hash {
    let none: &[Vec<u8>] = &[];
    merkle_hash(none)
}

/// CometBFT's `Data.Hash`: the merkle root over each transaction's sha256.
pub fn data_hash(txs: &[Vec<u8>]) -> Hash {
    let hashes: Vec<[u8; 32]> = txs.iter().map(|tx| Sha256::digest(tx).into()).collect();
    merkle_hash(&hashes)
}

/// The hash of one transaction, as `tx?hash=` and tx events name it.
pub fn tx_hash(tx: &[u8]) -> Hash {
    Hash::Sha256(Sha256::digest(tx).into())
}

/// CometBFT's `LastResultsHash`: merkle root over the deterministic part of each tx result.
pub fn results_hash(results: &[abci::types::ExecTxResult]) -> Hash {
    let encoded: Vec<Vec<u8>> = results
        .iter()
        .map(|r| {
            pb::abci::ExecTxResult {
                code: r.code.value(),
                data: r.data.clone(),
                gas_wanted: r.gas_wanted,
                gas_used: r.gas_used,
                ..Default::default()
            }
            .encode_to_vec()
        })
        .collect();
    merkle_hash(&encoded)
}

/// CometBFT's `ConsensusParams.Hash`: sha256 of the block size limits.
pub fn consensus_params_hash(params: &consensus::Params) -> Hash {
    let hashed = pb::types::HashedParams {
        block_max_bytes: params.block.max_bytes as i64,
        block_max_gas: params.block.max_gas,
    };
    Hash::Sha256(Sha256::digest(hashed.encode_to_vec()).into())
}

/// The consensus parameters every devnet chain runs with.
pub fn default_consensus_params() -> consensus::Params {
    consensus::Params {
        block: block::Size {
            max_bytes: 22_020_096,
            max_gas: -1,
            time_iota_ms: block::Size::default_time_iota_ms(),
        },
        evidence: evidence::Params {
            max_age_num_blocks: 100_000,
            max_age_duration: evidence::Duration(std::time::Duration::from_secs(48 * 3600)),
            max_bytes: 1_048_576,
        },
        validator: consensus::params::ValidatorParams {
            pub_key_types: vec![tendermint::public_key::Algorithm::Ed25519],
        },
        version: Some(consensus::params::VersionParams { app: 0 }),
        abci: consensus::params::AbciParams::default(),
    }
}

/// Errors while producing a block; each means a bug in the devnet, never bad user input.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// A value did not fit a CometBFT type.
    #[error("building block {height}: {what}")]
    Build {
        /// The height being built.
        height: u64,
        /// What failed.
        what: String,
    },
}

/// What the chain knows about the last decided block when proposing the next one.
#[derive(Clone)]
pub struct Tip {
    /// Height of the last block (0 before the first).
    pub height: u64,
    /// Its block id, `None` before the first block.
    pub block_id: Option<block::Id>,
    /// Its commit, `None` before the first block.
    pub commit: Option<Commit>,
    /// The app hash after executing it (or the genesis app hash).
    pub app_hash: Vec<u8>,
    /// Results of its transactions.
    pub results_hash: Hash,
    /// Its time (or the genesis time).
    pub time: Time,
}

/// Signs blocks for one chain with all of the validators of each height.
pub struct BlockSigner {
    chain_id: chain::Id,
    schedule: Schedule,
    params: consensus::Params,
}

impl BlockSigner {
    /// A signer for `chain_id` whose validators never change.
    pub fn new(chain_id: chain::Id, validators: Vec<ValidatorKey>) -> Self {
        Self::with_schedule(chain_id, Schedule::fixed(validators))
    }

    /// A signer for `chain_id` whose validators follow `schedule`.
    pub fn with_schedule(chain_id: chain::Id, schedule: Schedule) -> Self {
        Self {
            chain_id,
            schedule,
            params: default_consensus_params(),
        }
    }

    /// The validator set of `height`.
    pub fn validator_set(&self, height: u64) -> validator::Set {
        self.schedule.set_at(height)
    }

    /// Which validators sign which heights.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The consensus parameters.
    pub fn params(&self) -> &consensus::Params {
        &self.params
    }

    /// The header of the block after `tip`, at `time` (moved past the tip's time if the clock lags).
    pub fn next_header(
        &self,
        tip: &Tip,
        txs: &[Vec<u8>],
        time: Time,
    ) -> Result<Header, ConsensusError> {
        let height = tip.height + 1;
        let err = |what: String| ConsensusError::Build { height, what };
        let min_time =
            (tip.time + std::time::Duration::from_millis(1)).map_err(|e| err(e.to_string()))?;
        let time = if time > min_time { time } else { min_time };
        let last_commit_hash = match &tip.commit {
            Some(commit) => commit_hash(commit).map_err(err)?,
            None => empty_hash(),
        };
        let set = self.schedule.set_at(height);
        let proposer = set
            .validators()
            .get(height as usize % set.validators().len().max(1))
            .map(|v| v.address)
            .ok_or_else(|| err("empty validator set".into()))?;
        Ok(Header {
            version: block::header::Version {
                block: BLOCK_PROTOCOL,
                app: 0,
            },
            chain_id: self.chain_id.clone(),
            height: block::Height::try_from(height).map_err(|e| err(e.to_string()))?,
            time,
            last_block_id: tip.block_id,
            last_commit_hash: Some(last_commit_hash),
            data_hash: Some(data_hash(txs)),
            validators_hash: set.hash(),
            next_validators_hash: self.schedule.set_at(height + 1).hash(),
            consensus_hash: consensus_params_hash(&self.params),
            app_hash: tip
                .app_hash
                .clone()
                .try_into()
                .map_err(|e: tendermint::Error| err(e.to_string()))?,
            last_results_hash: Some(tip.results_hash),
            evidence_hash: Some(empty_hash()),
            proposer_address: proposer,
        })
    }

    /// Assembles the block and has every validator precommit it.
    pub fn finalize(
        &self,
        header: Header,
        txs: Vec<Vec<u8>>,
        last_commit: Option<Commit>,
    ) -> Result<(block::Id, Block, Commit), ConsensusError> {
        let height = header.height;
        let err = |what: String| ConsensusError::Build {
            height: height.value(),
            what,
        };
        let time = header.time;
        let header_hash = header.hash();
        let block = Block::new(header, txs, evidence::List::default(), last_commit);
        let raw: pb::types::Block = block.clone().into();
        let bytes = raw.encode_to_vec();
        let parts: Vec<&[u8]> = bytes.chunks(BLOCK_PART_SIZE).collect();
        let part_set = parts::Header::new(parts.len() as u32, merkle_hash(&parts))
            .map_err(|e| err(e.to_string()))?;
        let id = block::Id {
            hash: header_hash,
            part_set_header: part_set,
        };
        let commit = self.sign_commit(height, id, time).map_err(err)?;
        Ok((id, block, commit))
    }

    /// Every precommit of the height's validators for `id`, in validator-set order as CometBFT lays out commits.
    fn sign_commit(
        &self,
        height: block::Height,
        id: block::Id,
        time: Time,
    ) -> Result<Commit, String> {
        let set = self.schedule.set_at(height.value());
        let mut signatures = Vec::with_capacity(set.validators().len());
        for (index, info) in set.validators().iter().enumerate() {
            let key = self
                .schedule
                .key(&info.address)
                .ok_or("validator key missing")?;
            let timestamp = (time + std::time::Duration::from_millis(1 + index as u64))
                .map_err(|e| e.to_string())?;
            let vote = vote::Vote {
                vote_type: vote::Type::Precommit,
                height,
                round: block::Round::default(),
                block_id: Some(id),
                timestamp: Some(timestamp),
                validator_address: info.address,
                validator_index: vote::ValidatorIndex::try_from(index as u32)
                    .map_err(|e| e.to_string())?,
                signature: None,
                extension: Vec::new(),
                extension_signature: None,
            };
            let sign_bytes = vote.into_signable_vec(self.chain_id.clone());
            let signature = key.signing_key.sign(&sign_bytes);
            signatures.push(CommitSig::BlockIdFlagCommit {
                validator_address: info.address,
                timestamp,
                signature: Signature::new(signature.to_bytes()).map_err(|e| e.to_string())?,
            });
        }
        Ok(Commit {
            height,
            round: block::Round::default(),
            block_id: id,
            signatures,
        })
    }
}

/// CometBFT's `Commit.Hash`: merkle root over the proto encoding of each signature entry.
fn commit_hash(commit: &Commit) -> Result<Hash, String> {
    let raw: pb::types::Commit = commit.clone().into();
    let sigs: Vec<Vec<u8>> = raw.signatures.iter().map(Message::encode_to_vec).collect();
    Ok(merkle_hash(&sigs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{Genesis, GenesisOptions};
    use tendermint::block::signed_header::SignedHeader;
    use tendermint_light_client_verifier::options::Options;
    use tendermint_light_client_verifier::types::{LightBlock, TrustThreshold};
    use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};

    fn chain(n: u64) -> (BlockSigner, Vec<LightBlock>) {
        rotating_chain(n, None)
    }

    /// `n` blocks; with `every`, the validators change on [`Schedule::rotating`]'s cycle.
    fn rotating_chain(n: u64, every: Option<u64>) -> (BlockSigner, Vec<LightBlock>) {
        let genesis = Genesis::build(&GenesisOptions {
            seed: Some("consensus".into()),
            validators: 3,
            ..GenesisOptions::default()
        })
        .unwrap();
        let schedule = match every {
            Some(every) => {
                Schedule::rotating(genesis.validators.clone(), genesis.standby.clone(), every)
            }
            None => Schedule::fixed(genesis.validators.clone()),
        };
        let signer = BlockSigner::with_schedule(genesis.chain_id.clone(), schedule);
        let mut tip = Tip {
            height: 0,
            block_id: None,
            commit: None,
            app_hash: vec![],
            results_hash: results_hash(&[]),
            time: genesis.genesis_time,
        };
        let mut blocks = Vec::new();
        for h in 1..=n {
            let time = (genesis.genesis_time + std::time::Duration::from_secs(h)).unwrap();
            let txs = vec![format!("tx-{h}").into_bytes()];
            let header = signer.next_header(&tip, &txs, time).unwrap();
            let (id, block, commit) = signer
                .finalize(header.clone(), txs, tip.commit.clone())
                .unwrap();
            assert_eq!(block.header().height.value(), h);
            tip = Tip {
                height: h,
                block_id: Some(id),
                commit: Some(commit.clone()),
                app_hash: Sha256::digest(h.to_be_bytes()).to_vec(),
                results_hash: results_hash(&[]),
                time: header.time,
            };
            blocks.push(LightBlock::new(
                SignedHeader::new(header, commit).unwrap(),
                signer.validator_set(h),
                signer.validator_set(h + 1),
                tendermint::node::Id::new([1; 20]),
            ));
        }
        (signer, blocks)
    }

    fn verify(trusted: &LightBlock, untrusted: &LightBlock, now: Time) -> Verdict {
        let options = Options {
            trust_threshold: TrustThreshold::TWO_THIRDS,
            trusting_period: std::time::Duration::from_secs(3600 * 24 * 14),
            clock_drift: std::time::Duration::from_secs(5),
        };
        ProdVerifier::default().verify_update_header(
            untrusted.as_untrusted_state(),
            trusted.as_trusted_state(),
            &options,
            now,
        )
    }

    #[test]
    fn headers_verify_sequentially_and_by_skipping() {
        let (_, blocks) = chain(6);
        let now =
            (blocks[5].signed_header.header.time + std::time::Duration::from_secs(1)).unwrap();
        for pair in blocks.windows(2) {
            assert_eq!(verify(&pair[0], &pair[1], now), Verdict::Success);
            assert_eq!(
                pair[1].signed_header.header.last_block_id.map(|id| id.hash),
                Some(pair[0].signed_header.header.hash())
            );
        }
        assert_eq!(verify(&blocks[0], &blocks[5], now), Verdict::Success);
    }

    #[test]
    fn rotations_verify_sequentially_and_the_full_swap_forces_bisection() {
        // Changes decided every 2 blocks take effect at 4, 6, 8, 10, ...; the whole set is replaced at 10.
        let (signer, blocks) = rotating_chain(14, Some(2));
        let at = |h: u64| &blocks[h as usize - 1];
        let now = (at(14).signed_header.header.time + std::time::Duration::from_secs(1)).unwrap();
        for pair in blocks.windows(2) {
            assert_eq!(verify(&pair[0], &pair[1], now), Verdict::Success);
            assert_eq!(
                pair[0].signed_header.header.next_validators_hash,
                pair[1].signed_header.header.validators_hash
            );
        }
        for h in 1..=14u64 {
            let header = &at(h).signed_header.header;
            assert_eq!(header.validators_hash, signer.validator_set(h).hash());
            assert_eq!(
                header.next_validators_hash,
                signer.validator_set(h + 1).hash()
            );
        }
        assert_ne!(
            at(9).signed_header.header.validators_hash,
            at(10).signed_header.header.validators_hash
        );
        // Height 9 names the new set as next, so 10 onwards verify from it; from 8 they do not.
        assert_eq!(verify(at(9), at(14), now), Verdict::Success);
        assert!(matches!(
            verify(at(8), at(10), now),
            Verdict::NotEnoughTrust(_)
        ));
        assert!(matches!(
            verify(at(3), at(14), now),
            Verdict::NotEnoughTrust(_)
        ));
        // Smaller changes keep more than a third of the trusted power: skipping across them works.
        assert_eq!(verify(at(1), at(7), now), Verdict::Success);
    }

    #[test]
    fn a_tampered_header_fails_verification() {
        let (_, blocks) = chain(3);
        let now =
            (blocks[2].signed_header.header.time + std::time::Duration::from_secs(1)).unwrap();
        let mut tampered = blocks[2].clone();
        let mut header = tampered.signed_header.header.clone();
        header.app_hash = vec![7u8; 32].try_into().unwrap();
        // The commit signs the original header's hash, so it cannot vouch for a changed app hash.
        tampered.signed_header =
            SignedHeader::new(header, tampered.signed_header.commit.clone()).unwrap();
        assert_ne!(verify(&blocks[1], &tampered, now), Verdict::Success);
        assert_eq!(verify(&blocks[1], &blocks[2], now), Verdict::Success);
    }
}
