//! Header verification for CometBFT chains with tendermint-light-client-verifier: checking a signed header
//! against a validator set, and skipping (bisection) verification from a trusted block to a target height.
//!
//! The result of skipping verification is reduced to the fewest headers that still verify one after another,
//! because each one becomes a `MsgUpdateClient` the relayer pays for (ADR-002 R-bisection).

use std::time::Duration;

use tendermint::Time;
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::{LightBlock, TrustThreshold};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};

/// Why verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightClientError {
    /// The header or commit is invalid: wrong hashes, bad signatures, too little power.
    #[error("{chain}: header at height {height} is invalid: {reason}")]
    Invalid {
        /// The chain.
        chain: String,
        /// The offending height.
        height: u64,
        /// The verifier's explanation.
        reason: String,
    },
    /// Bisection reached two adjacent heights without establishing trust.
    #[error("{chain}: cannot establish trust from height {trusted} to {target}")]
    NoPath {
        /// The chain.
        chain: String,
        /// Last trusted height.
        trusted: u64,
        /// The height that could not be reached.
        target: u64,
    },
    /// The target is not above the trusted height.
    #[error("{chain}: target height {target} is not above trusted height {trusted}")]
    NotAhead {
        /// The chain.
        chain: String,
        /// Trusted height.
        trusted: u64,
        /// Requested height.
        target: u64,
    },
    /// The verification task on the blocking pool did not finish (it panicked or the runtime is stopping).
    #[error("{chain}: header verification did not finish: {reason}")]
    Task {
        /// The chain.
        chain: String,
        /// The join error.
        reason: String,
    },
    /// The node could not provide a block.
    #[error("{chain}: cannot fetch light block at height {height}: {reason}")]
    Fetch {
        /// The chain.
        chain: String,
        /// The height asked for.
        height: u64,
        /// The source's error.
        reason: String,
    },
}

impl LightClientError {
    /// Whether the node that served the blocks is to blame: a header or commit that does not verify, or a chain
    /// of headers that cannot be crossed even one height at a time (which an honest node's headers always can).
    /// A missing block, a target not ahead, or a verification task that did not finish says nothing about it.
    pub fn node_at_fault(&self) -> bool {
        match self {
            Self::Invalid { .. } | Self::NoPath { .. } => true,
            Self::NotAhead { .. } | Self::Task { .. } | Self::Fetch { .. } => false,
        }
    }
}

/// Verification parameters of one chain.
#[derive(Debug, Clone, Copy)]
pub struct TrustOptions {
    /// Share of trusted voting power that must sign a skipped-to header.
    pub trust_threshold: TrustThreshold,
    /// How long a verified header stays trusted.
    pub trusting_period: Duration,
    /// Tolerated clock difference.
    pub clock_drift: Duration,
}

impl TrustOptions {
    fn verifier_options(&self) -> Options {
        Options {
            trust_threshold: self.trust_threshold,
            trusting_period: self.trusting_period,
            clock_drift: self.clock_drift,
        }
    }
}

/// Where light blocks come from (a CometBFT RPC node, or a test chain).
#[allow(async_fn_in_trait)]
pub trait LightBlockSource {
    /// The signed header at `height` with the validator sets at `height` and `height + 1`.
    async fn light_block(&self, height: u64) -> Result<LightBlock, String>;
}

/// Checks that the block's validators hash to its header's `validators_hash`, its next validators (the set of
/// the following height, fetched separately) to `next_validators_hash`, and that more than two thirds of the
/// validators' power signed the commit: what trusting a header on an operator's word (`light init`) still
/// requires. The next set matters: it is what the following headers are verified against, and it differs from
/// the block's own set whenever the chain's validators change.
pub fn verify_signed_header(chain: &str, block: &LightBlock) -> Result<(), LightClientError> {
    let verifier = ProdVerifier::default();
    let untrusted = block.as_untrusted_state();
    let verdict = match verifier.verify_validator_sets(&untrusted) {
        Verdict::Success => verifier.verify_commit(&untrusted),
        other => other,
    };
    match verdict {
        Verdict::Success => Ok(()),
        other => Err(LightClientError::Invalid {
            chain: chain.to_owned(),
            height: block.signed_header.header.height.value(),
            reason: verdict_reason(other),
        }),
    }
}

fn verdict_reason(verdict: Verdict) -> String {
    match verdict {
        Verdict::Success => "verified".into(),
        Verdict::NotEnoughTrust(tally) => format!("not enough trust: {tally}"),
        Verdict::Invalid(detail) => detail.to_string(),
    }
}

fn verify(trusted: &LightBlock, untrusted: &LightBlock, options: &Options, now: Time) -> Verdict {
    ProdVerifier::default().verify_update_header(
        untrusted.as_untrusted_state(),
        trusted.as_trusted_state(),
        options,
        now,
    )
}

/// Verifies `target` from `trusted` by bisection and returns the fewest headers, in height order and ending at
/// the target, such that each verifies against the one before it (the first against `trusted`).
pub async fn headers_to<S: LightBlockSource>(
    chain: &str,
    source: &S,
    trusted: &LightBlock,
    target: u64,
    trust: &TrustOptions,
    now: Time,
) -> Result<Vec<LightBlock>, LightClientError> {
    let trusted_height = trusted.height().value();
    if target <= trusted_height {
        return Err(LightClientError::NotAhead {
            chain: chain.to_owned(),
            trusted: trusted_height,
            target,
        });
    }
    let options = trust.verifier_options();
    let fetch = |height: u64| async move {
        source
            .light_block(height)
            .await
            .map_err(|reason| LightClientError::Fetch {
                chain: chain.to_owned(),
                height,
                reason,
            })
    };

    // Classic skipping verification: try the farthest pending block, bisect towards the trusted one on
    // "not enough trust".
    let mut verified: Vec<LightBlock> = Vec::new();
    let mut current = trusted.clone();
    let mut pending: Vec<LightBlock> = vec![fetch(target).await?];
    // Signature checks are CPU work: they run on the blocking pool, so the actors sharing this thread keep
    // answering while a long bisection verifies.
    let task_err = |e: tokio::task::JoinError| LightClientError::Task {
        chain: chain.to_owned(),
        reason: e.to_string(),
    };
    while let Some(candidate) = pending.last() {
        let (from, to) = (current.clone(), candidate.clone());
        let verdict = tokio::task::spawn_blocking(move || verify(&from, &to, &options, now))
            .await
            .map_err(task_err)?;
        match verdict {
            Verdict::Success => {
                // The candidate (the last pending block) becomes the trusted one.
                if let Some(next) = pending.pop() {
                    current = next;
                    verified.push(current.clone());
                }
            }
            Verdict::NotEnoughTrust(_) => {
                let (low, high) = (current.height().value(), candidate.height().value());
                let pivot = low + (high - low) / 2;
                if pivot == low {
                    return Err(LightClientError::NoPath {
                        chain: chain.to_owned(),
                        trusted: low,
                        target: high,
                    });
                }
                pending.push(fetch(pivot).await?);
            }
            Verdict::Invalid(detail) => {
                return Err(LightClientError::Invalid {
                    chain: chain.to_owned(),
                    height: candidate.height().value(),
                    reason: detail.to_string(),
                })
            }
        }
    }
    let root = trusted.clone();
    tokio::task::spawn_blocking(move || minimize(&root, verified, &options, now))
        .await
        .map_err(task_err)
}

/// Drops every header the chain of trust can skip: from each kept header, jump to the farthest later header
/// that still verifies. The target (last element) is always kept.
fn minimize(
    trusted: &LightBlock,
    path: Vec<LightBlock>,
    options: &Options,
    now: Time,
) -> Vec<LightBlock> {
    let mut kept: Vec<LightBlock> = Vec::new();
    let mut from = trusted.clone();
    let mut start = 0;
    while start < path.len() {
        // The next element always verifies against `from` (bisection proved it), so this finds one.
        let next = (start..path.len())
            .rev()
            .find(|&j| j == start || verify(&from, &path[j], options, now) == Verdict::Success)
            .unwrap_or(start);
        from = path[next].clone();
        kept.push(from.clone());
        start = next + 1;
    }
    kept
}

/// Why `light init` refused to trust a header.
#[derive(Debug, thiserror::Error)]
pub enum LightInitError {
    /// The node could not be asked.
    #[error(transparent)]
    Rpc(#[from] super::rpc::RpcError),
    /// The node serves a different chain than configured.
    #[error("the node at this address serves chain {actual}, not {expected}")]
    WrongChain {
        /// The configured chain.
        expected: String,
        /// What the header says.
        actual: String,
    },
    /// The header at the height is not the one the operator vouched for.
    #[error("{chain}: the header at height {height} has hash {actual}, not {expected}")]
    HashMismatch {
        /// The chain.
        chain: String,
        /// The height.
        height: u64,
        /// The operator's hash.
        expected: String,
        /// The node's header hash.
        actual: String,
    },
    /// The header's own commit does not verify.
    #[error(transparent)]
    Invalid(#[from] LightClientError),
    /// The trusted state could not be saved.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Sets the chain's trusted state to the block at `height`, provided its header hash is `hash` (the operator's
/// out-of-band knowledge) and its commit carries more than two thirds of its validators' power. ADR-002's
/// `light init`.
pub async fn light_init(
    rpc: &super::rpc::CosmosRpc,
    store: &crate::store::StateStore,
    chain: &str,
    height: u64,
    hash: &tendermint::Hash,
) -> Result<LightBlock, LightInitError> {
    let block = rpc.fetch_light_block(height).await?;
    let header = &block.signed_header.header;
    if header.chain_id.as_str() != chain {
        return Err(LightInitError::WrongChain {
            expected: chain.to_owned(),
            actual: header.chain_id.to_string(),
        });
    }
    let actual = header.hash();
    if &actual != hash {
        return Err(LightInitError::HashMismatch {
            chain: chain.to_owned(),
            height,
            expected: hash.to_string(),
            actual: actual.to_string(),
        });
    }
    verify_signed_header(chain, &block)?;
    store.save_trusted(chain, &block)?;
    Ok(block)
}

/// Why a refresh of the trusted state failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// `light init` was never run for the chain.
    #[error("{0}: no trusted state; run `relayd light init` first")]
    NoTrustedState(String),
    /// The node could not be asked.
    #[error(transparent)]
    Rpc(#[from] super::rpc::RpcError),
    /// Verification from the trusted state failed.
    #[error(transparent)]
    Verify(#[from] LightClientError),
    /// The new state could not be saved.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Moves the chain's trusted state to the node's latest block, verified by skipping from the stored one, and
/// saves it. Returns the new trusted block (the old one when the chain has not advanced).
pub async fn refresh(
    rpc: &super::rpc::CosmosRpc,
    store: &crate::store::StateStore,
    trust: &TrustOptions,
) -> Result<LightBlock, RefreshError> {
    let chain = rpc.chain();
    let trusted = store
        .trusted(chain)?
        .ok_or_else(|| RefreshError::NoTrustedState(chain.to_owned()))?;
    let (_, latest) = rpc.status().await?;
    if latest <= trusted.height().value() {
        return Ok(trusted);
    }
    let headers = headers_to(chain, rpc, &trusted, latest, trust, Time::now()).await?;
    let newest = headers.last().cloned().unwrap_or(trusted);
    store.save_trusted(chain, &newest)?;
    Ok(newest)
}

/// Keeps the trusted state fresh: refreshes every `fraction` of the trusting period (ADR-002: "a fraction of the
/// trusting period"), logging failures and trying again at the next tick, until `shutdown` resolves.
pub async fn keep_fresh(
    rpc: super::rpc::CosmosRpc,
    store: crate::store::StateStore,
    trust: TrustOptions,
    fraction: f64,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let period = trust.trusting_period.mul_f64(fraction.clamp(0.01, 1.0));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => match refresh(&rpc, &store, &trust).await {
                Ok(block) => tracing::debug!(chain = rpc.chain(), height = block.height().value(), "trusted state refreshed"),
                Err(e) => tracing::warn!(chain = rpc.chain(), error = %e, "trusted state refresh failed"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tendermint::block::signed_header::SignedHeader;
    use tendermint::validator;
    use tendermint_testgen::light_block::TmLightBlock;
    use tendermint_testgen::{Generator, Header, LightBlock as GenBlock, Validator};

    fn to_verifier(b: TmLightBlock) -> LightBlock {
        LightBlock::new(b.signed_header, b.validators, b.next_validators, b.provider)
    }

    /// Heights 1..=n; the validator set is `first` up to and including `switch_at - 1`, then `second`.
    fn chain(
        n: u64,
        switch_at: u64,
        first: &[Validator],
        second: &[Validator],
    ) -> BTreeMap<u64, LightBlock> {
        let mut blocks = BTreeMap::new();
        let start = Time::from_unix_timestamp(1_700_000_000, 0).unwrap();
        let mut last_hash = None;
        for h in 1..=n {
            let vals = if h < switch_at { first } else { second };
            let next = if h + 1 < switch_at { first } else { second };
            let mut header = Header::new(vals)
                .next_validators(next)
                .height(h)
                .chain_id("bisect-0")
                .time((start + Duration::from_secs(h)).unwrap());
            if let Some(hash) = last_hash {
                header = header.last_block_id_hash(hash);
            }
            let block = GenBlock::new_default_with_header(header)
                .next_validators(next)
                .generate()
                .unwrap();
            last_hash = Some(block.signed_header.header.hash());
            blocks.insert(h, to_verifier(block));
        }
        blocks
    }

    struct Source(BTreeMap<u64, LightBlock>, std::cell::RefCell<Vec<u64>>);

    impl LightBlockSource for Source {
        async fn light_block(&self, height: u64) -> Result<LightBlock, String> {
            self.1.borrow_mut().push(height);
            self.0
                .get(&height)
                .cloned()
                .ok_or_else(|| format!("no block {height}"))
        }
    }

    fn trust() -> TrustOptions {
        TrustOptions {
            trust_threshold: TrustThreshold::ONE_THIRD,
            trusting_period: Duration::from_secs(3600),
            clock_drift: Duration::from_secs(5),
        }
    }

    fn vals(ids: &[&str]) -> Vec<Validator> {
        ids.iter()
            .map(|id| Validator::new(id).voting_power(50))
            .collect()
    }

    fn now() -> Time {
        Time::from_unix_timestamp(1_700_000_100, 0).unwrap()
    }

    #[tokio::test]
    async fn a_stable_validator_set_needs_only_the_target() {
        let blocks = chain(20, 100, &vals(&["a", "b", "c"]), &vals(&["a", "b", "c"]));
        let source = Source(blocks.clone(), Default::default());
        let headers = headers_to("bisect-0", &source, &blocks[&1], 20, &trust(), now())
            .await
            .unwrap();
        let heights: Vec<u64> = headers.iter().map(|b| b.height().value()).collect();
        assert_eq!(heights, [20]);
    }

    #[tokio::test]
    async fn a_full_validator_rotation_is_crossed_with_the_fewest_headers() {
        let blocks = chain(20, 10, &vals(&["a", "b", "c"]), &vals(&["d", "e", "f"]));
        let source = Source(blocks.clone(), Default::default());
        let headers = headers_to("bisect-0", &source, &blocks[&1], 20, &trust(), now())
            .await
            .unwrap();
        let heights: Vec<u64> = headers.iter().map(|b| b.height().value()).collect();
        // Height 9 is the last header signed by the old set that names the new set as next; from there the
        // target verifies directly.
        assert_eq!(heights, [9, 20]);
        assert!(
            source.1.borrow().len() > 2,
            "bisection had to look at pivots"
        );
    }

    #[test]
    fn a_header_before_a_validator_change_verifies_with_the_real_next_set_only() {
        let (first, second) = (vals(&["a", "b", "c"]), vals(&["d", "e", "f"]));
        let blocks = chain(6, 4, &first, &second);
        // Height 3 is signed by the first set and names the second as next.
        let before = &blocks[&3];
        verify_signed_header("bisect-0", before).unwrap();
        let mut own_set_as_next = before.clone();
        own_set_as_next.next_validators = before.validators.clone();
        let err = verify_signed_header("bisect-0", &own_set_as_next).unwrap_err();
        assert!(
            matches!(err, LightClientError::Invalid { height: 3, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn bad_targets_and_missing_blocks_are_errors() {
        let blocks = chain(5, 100, &vals(&["a", "b"]), &vals(&["a", "b"]));
        let source = Source(blocks.clone(), Default::default());
        let err = headers_to("bisect-0", &source, &blocks[&3], 2, &trust(), now())
            .await
            .unwrap_err();
        assert!(matches!(err, LightClientError::NotAhead { .. }));
        let err = headers_to("bisect-0", &source, &blocks[&1], 9, &trust(), now())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bisect-0: cannot fetch light block at height 9: no block 9"
        );
    }

    #[test]
    fn only_refused_data_blames_the_node() {
        let chain = || "c".to_owned();
        let invalid = LightClientError::Invalid {
            chain: chain(),
            height: 2,
            reason: "bad signature".into(),
        };
        let no_path = LightClientError::NoPath {
            chain: chain(),
            trusted: 1,
            target: 2,
        };
        assert!(invalid.node_at_fault() && no_path.node_at_fault());
        let fetch = LightClientError::Fetch {
            chain: chain(),
            height: 2,
            reason: "connection refused".into(),
        };
        let ahead = LightClientError::NotAhead {
            chain: chain(),
            trusted: 2,
            target: 1,
        };
        let task = LightClientError::Task {
            chain: chain(),
            reason: "cancelled".into(),
        };
        assert!(!fetch.node_at_fault() && !ahead.node_at_fault() && !task.node_at_fault());
    }

    #[tokio::test]
    async fn a_forged_target_is_rejected() {
        let blocks = chain(6, 100, &vals(&["a", "b", "c"]), &vals(&["a", "b", "c"]));
        let mut forged = blocks.clone();
        let mut target = forged[&6].clone();
        target.signed_header.header.app_hash = vec![9u8; 32].try_into().unwrap();
        forged.insert(6, target);
        let source = Source(forged, Default::default());
        let err = headers_to("bisect-0", &source, &blocks[&1], 6, &trust(), now())
            .await
            .unwrap_err();
        assert!(
            matches!(err, LightClientError::Invalid { height: 6, .. }),
            "{err}"
        );
    }

    #[test]
    fn the_recorded_cometbft_commit_verifies_against_its_genesis_validator() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/cometbft-v0_38");
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
        };
        let commit = read("commit_at_height_10.json");
        let signed: SignedHeader =
            serde_json::from_value(commit["result"]["signed_header"].clone()).unwrap();
        let genesis = read("genesis.json");
        let infos: Vec<validator::Info> =
            serde_json::from_value(genesis["result"]["genesis"]["validators"].clone()).unwrap();
        let set = validator::Set::without_proposer(infos);
        // The recorded chain's single validator never changed: it is also the next set.
        let block = |sh: SignedHeader| {
            LightBlock::new(
                sh,
                set.clone(),
                set.clone(),
                tendermint::node::Id::new([0; 20]),
            )
        };
        verify_signed_header("dockerchain", &block(signed.clone())).unwrap();

        // The same commit cannot vouch for a different header.
        let mut tampered = signed.clone();
        tampered.header.app_hash = vec![1u8; 8].try_into().unwrap();
        let tampered = SignedHeader::new(tampered.header, tampered.commit).unwrap();
        assert!(verify_signed_header("dockerchain", &block(tampered)).is_err());
    }
}
