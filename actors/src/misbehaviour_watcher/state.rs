//! Misbehaviour detection, judged from headers alone: a header some relayer installed in a client of chain X is
//! compared with the header relayd's own light client verified for X at that height. Two valid headers at one
//! height, or a header whose time is not after the time of an earlier header of X, prove that X's validators
//! signed two histories; the evidence (`MsgSubmitMisbehaviour` with a Tendermint `Misbehaviour`) lets the host
//! freeze the client before anything is proven against the forged history.
//!
//! The evidence follows ibc-rs's `ibc-client-tendermint` rules (`verify_misbehaviour`,
//! `check_for_misbehaviour_on_misbehavior`): `header_1` is at a height greater than or equal to `header_2`'s; each
//! header is verified against the client's consensus state at its own `trusted_height` with its
//! `trusted_validators`; at equal heights the block hashes must differ, at different heights `header_1`'s time
//! must not be after `header_2`'s.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::client::v1::MsgSubmitMisbehaviour;
use ibc_proto::ibc::lightclients::tendermint::v1::{
    Header as PbHeader, Misbehaviour as PbMisbehaviour,
};
use prost::Message;
use relayd_messages::{EvidenceSummary, HeaderAt, VerifiedHeader};
use tendermint::block::signed_header::SignedHeader;
use tendermint::block::Header;
use tendermint_proto::types::{SignedHeader as PbSignedHeader, ValidatorSet as PbValidatorSet};

/// Type URL of a Tendermint client header.
pub const TM_HEADER_TYPE_URL: &str = "/ibc.lightclients.tendermint.v1.Header";
/// Type URL of a Tendermint client misbehaviour.
pub const TM_MISBEHAVIOUR_TYPE_URL: &str = "/ibc.lightclients.tendermint.v1.Misbehaviour";
/// Type URL of `MsgSubmitMisbehaviour` (deprecated in ibc-go v7 in favour of `MsgUpdateClient`, still accepted by
/// ibc-go and ibc-rs).
pub const SUBMIT_MISBEHAVIOUR_TYPE_URL: &str = "/ibc.core.client.v1.MsgSubmitMisbehaviour";

/// Why a header could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MisbehaviourError {
    /// The event's header is not a Tendermint client header (another client type).
    #[error("not a Tendermint header: type {0}")]
    NotTendermint(String),
    /// The event's header does not decode.
    #[error("undecodable header in the update_client event: {0}")]
    Header(String),
    /// The header relayd's light client returned does not decode or is not at the height asked for.
    #[error("relayd's verified header: {0}")]
    Ours(String),
    /// A transaction message that should carry the update does not decode.
    #[error("undecodable update message in the transaction: {0}")]
    Message(String),
    /// The transaction that emitted the event holds no `MsgUpdateClient` of the client at the event's height.
    #[error("the transaction holds no MsgUpdateClient of {client_id} at the event's height")]
    NotInTransaction {
        /// The updated client.
        client_id: String,
    },
    /// The header belongs to another chain than the one the client tracks.
    #[error("the header is of chain {found}, the client tracks {expected}")]
    WrongChain {
        /// The tracked chain.
        expected: String,
        /// The header's chain id.
        found: String,
    },
}

/// A header a client accepted, as its `update_client` event carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenHeader {
    /// The header exactly as submitted: it goes into the evidence unchanged, so the host verifies it from the
    /// same trusted state it accepted it from.
    pub raw: PbHeader,
    /// Its signed header, decoded.
    pub signed_header: SignedHeader,
    /// The revision height of the consensus state it was verified against.
    pub trusted_height: u64,
}

impl SeenHeader {
    /// Decodes the `header` attribute of an `update_client` event (protobuf `Any` bytes).
    pub fn decode(any: &[u8]) -> Result<Self, MisbehaviourError> {
        let any = Any::decode(any).map_err(|e| MisbehaviourError::Header(e.to_string()))?;
        if any.type_url != TM_HEADER_TYPE_URL {
            return Err(MisbehaviourError::NotTendermint(any.type_url));
        }
        let raw = PbHeader::decode(any.value.as_slice())
            .map_err(|e| MisbehaviourError::Header(e.to_string()))?;
        let signed_header = raw
            .signed_header
            .clone()
            .ok_or_else(|| MisbehaviourError::Header("no signed header".into()))?
            .try_into()
            .map_err(|e: tendermint::Error| MisbehaviourError::Header(e.to_string()))?;
        let trusted_height = raw
            .trusted_height
            .ok_or_else(|| MisbehaviourError::Header("no trusted height".into()))?
            .revision_height;
        if raw.trusted_validators.is_none() || raw.validator_set.is_none() {
            return Err(MisbehaviourError::Header("validator sets missing".into()));
        }
        Ok(Self {
            raw,
            signed_header,
            trusted_height,
        })
    }

    /// Its height.
    pub fn height(&self) -> u64 {
        self.signed_header.header.height.value()
    }
}

/// A header relayd's own light client verified, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct OurHeader {
    /// The signed header.
    pub signed_header: SignedHeader,
    /// The validators that signed it, as protobuf (what the evidence carries).
    pub validator_set: PbValidatorSet,
}

impl OurHeader {
    /// Decodes what the light client answered.
    pub fn decode(v: &VerifiedHeader) -> Result<Self, MisbehaviourError> {
        let ours = |e: String| MisbehaviourError::Ours(e);
        let signed_header = PbSignedHeader::decode(v.signed_header.as_slice())
            .map_err(|e| ours(e.to_string()))?
            .try_into()
            .map_err(|e: tendermint::Error| ours(e.to_string()))?;
        let validator_set =
            PbValidatorSet::decode(v.validator_set.as_slice()).map_err(|e| ours(e.to_string()))?;
        let decoded = Self {
            signed_header,
            validator_set,
        };
        if decoded.height() != v.height {
            return Err(ours(format!(
                "header at {} where {} was announced",
                decoded.height(),
                v.height
            )));
        }
        Ok(decoded)
    }

    /// Encodes a verified signed header and its validator set for [`VerifiedHeader`].
    pub fn encode(
        signed_header: &SignedHeader,
        validators: &tendermint::validator::Set,
    ) -> VerifiedHeader {
        let header = &signed_header.header;
        VerifiedHeader {
            height: header.height.value(),
            time_ns: time_ns(header),
            signed_header: PbSignedHeader::from(signed_header.clone()).encode_to_vec(),
            validator_set: PbValidatorSet::from(validators.clone()).encode_to_vec(),
        }
    }

    fn height(&self) -> u64 {
        self.signed_header.header.height.value()
    }
}

fn time_ns(header: &Header) -> u64 {
    u64::try_from(header.time.unix_timestamp_nanos()).unwrap_or(0)
}

/// What relayd knows of the tracked chain at the seen header's height.
#[derive(Debug, Clone, PartialEq)]
pub enum Ours {
    /// Its verified header at that height.
    Reached(OurHeader),
    /// The chain has not reached that height; its latest verified header.
    NotYet(OurHeader),
}

impl Ours {
    /// Decodes the light client's answer.
    pub fn decode(at: &HeaderAt) -> Result<Self, MisbehaviourError> {
        Ok(match at {
            HeaderAt::Reached(v) => Self::Reached(OurHeader::decode(v)?),
            HeaderAt::NotYet(v) => Self::NotYet(OurHeader::decode(v)?),
        })
    }
}

/// Proof that a chain's validators signed two histories, ready to submit to the client's host.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The client the conflicting header was installed in.
    pub client_id: String,
    /// The header the client accepted (the higher one, or the same height).
    pub header_1: PbHeader,
    /// relayd's verified header.
    pub header_2: PbHeader,
    /// What conflicts, in words.
    pub reason: String,
}

/// The verdict on one header.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It is the header relayd verified at that height.
    Consistent,
    /// A different header at a height relayd verified: two valid headers at one height.
    Conflict(Evidence),
    /// The chain has not reached the header's height, yet the header's time is not after that of a header
    /// relayd verified below it: time went backwards (BFT time violation).
    BftTimeViolation(Evidence),
    /// The chain has not reached the height and time does not contradict it: judge again later.
    Pending {
        /// The chain's latest verified height.
        latest: u64,
    },
}

impl Evidence {
    /// The summary of this evidence, of verdict `kind`.
    pub fn summary(&self, kind: &str) -> EvidenceSummary {
        let describe = |h: &PbHeader| {
            let sh: Option<SignedHeader> = h.signed_header.clone().and_then(|s| s.try_into().ok());
            sh.map_or((0, String::new()), |s| {
                (s.header.height.value(), s.header.hash().to_string())
            })
        };
        let (height_1, hash_1) = describe(&self.header_1);
        let (height_2, hash_2) = describe(&self.header_2);
        EvidenceSummary {
            kind: kind.to_owned(),
            height_1,
            height_2,
            hash_1,
            hash_2,
            reason: self.reason.clone(),
        }
    }
}

/// Judges `seen`, accepted by client `client_id` of chain `tracked`, against relayd's view `ours`.
pub fn judge(
    client_id: &str,
    tracked: &str,
    seen: &SeenHeader,
    ours: &Ours,
) -> Result<Verdict, MisbehaviourError> {
    let found = seen.signed_header.header.chain_id.as_str();
    if found != tracked {
        return Err(MisbehaviourError::WrongChain {
            expected: tracked.to_owned(),
            found: found.to_owned(),
        });
    }
    let height = seen.height();
    match ours {
        Ours::Reached(ours) => {
            if ours.height() != height {
                return Err(MisbehaviourError::Ours(format!(
                    "asked for height {height}, got {}",
                    ours.height()
                )));
            }
            if ours.signed_header.header.hash() == seen.signed_header.header.hash() {
                return Ok(Verdict::Consistent);
            }
            let differing = differences(&seen.signed_header.header, &ours.signed_header.header);
            let reason = format!(
                "two headers of {tracked} at height {height}, differing in {}",
                differing.join(", ")
            );
            Ok(Verdict::Conflict(evidence(client_id, seen, ours, reason)))
        }
        Ours::NotYet(ours) => {
            let latest = ours.height();
            if latest >= height {
                return Err(MisbehaviourError::Ours(format!(
                    "height {height} reported unreached, but the latest header is at {latest}"
                )));
            }
            // The client must be able to verify relayd's header from the seen header's trusted state, which
            // needs it to be above that state; a client trusting a height the chain never reached holds a
            // forged header there, judged when that height comes.
            let time_went_back = seen.signed_header.header.time <= ours.signed_header.header.time;
            if time_went_back && latest > seen.trusted_height {
                let reason = format!(
                    "header of {tracked} at height {height} has time {}, not after the time {} of its height {latest}",
                    seen.signed_header.header.time, ours.signed_header.header.time
                );
                return Ok(Verdict::BftTimeViolation(evidence(
                    client_id, seen, ours, reason,
                )));
            }
            Ok(Verdict::Pending { latest })
        }
    }
}

/// The header fields in which `a` and `b` differ, by name.
fn differences(a: &Header, b: &Header) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("time", a.time != b.time);
    check("app_hash", a.app_hash != b.app_hash);
    check("validators_hash", a.validators_hash != b.validators_hash);
    check(
        "next_validators_hash",
        a.next_validators_hash != b.next_validators_hash,
    );
    check("last_block_id", a.last_block_id != b.last_block_id);
    check("data_hash", a.data_hash != b.data_hash);
    check(
        "last_results_hash",
        a.last_results_hash != b.last_results_hash,
    );
    check("consensus_hash", a.consensus_hash != b.consensus_hash);
    check("proposer_address", a.proposer_address != b.proposer_address);
    if out.is_empty() {
        out.push("other fields");
    }
    out
}

/// `header_1` is the seen header as submitted; `header_2` is relayd's, trusted from the same consensus state
/// (its height and next validators, which the host already checked when it accepted the seen header).
fn evidence(client_id: &str, seen: &SeenHeader, ours: &OurHeader, reason: String) -> Evidence {
    let header_2 = PbHeader {
        signed_header: Some(ours.signed_header.clone().into()),
        validator_set: Some(ours.validator_set.clone()),
        trusted_height: seen.raw.trusted_height,
        trusted_validators: seen.raw.trusted_validators.clone(),
    };
    Evidence {
        client_id: client_id.to_owned(),
        header_1: seen.raw.clone(),
        header_2,
        reason,
    }
}

/// `MsgSubmitMisbehaviour` carrying `evidence`, signed by `signer` on the client's host.
pub fn submit_misbehaviour_msg(evidence: &Evidence, signer: &str) -> Any {
    // ibc-rs still parses the deprecated client_id inside the misbehaviour, so it is filled.
    #[allow(deprecated)]
    let misbehaviour = PbMisbehaviour {
        client_id: evidence.client_id.clone(),
        header_1: Some(evidence.header_1.clone()),
        header_2: Some(evidence.header_2.clone()),
    };
    #[allow(deprecated)]
    let msg = MsgSubmitMisbehaviour {
        client_id: evidence.client_id.clone(),
        misbehaviour: Some(Any {
            type_url: TM_MISBEHAVIOUR_TYPE_URL.to_owned(),
            value: misbehaviour.encode_to_vec(),
        }),
        signer: signer.to_owned(),
    };
    Any {
        type_url: SUBMIT_MISBEHAVIOUR_TYPE_URL.to_owned(),
        value: msg.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibc_proto::ibc::core::client::v1::Height as PbHeight;
    use std::time::Duration;
    use tendermint::Time;
    use tendermint_light_client_verifier::types::LightBlock;
    use tendermint_testgen::light_block::TmLightBlock;
    use tendermint_testgen::{Generator, Header as GenHeader, LightBlock as GenBlock, Validator};

    const CHAIN: &str = "ibc-0";

    fn validators() -> Vec<Validator> {
        ["a", "b", "c"]
            .iter()
            .map(|id| Validator::new(id).voting_power(50))
            .collect()
    }

    fn start() -> Time {
        Time::from_unix_timestamp(1_700_000_000, 0).unwrap()
    }

    /// A block of `CHAIN` at `height` and `time`, signed by its validators, with app hash `app`.
    fn block(height: u64, time: Time, app: u8) -> LightBlock {
        let header = GenHeader::new(&validators())
            .next_validators(&validators())
            .height(height)
            .chain_id(CHAIN)
            .time(time)
            .app_hash(vec![app; 32].try_into().unwrap());
        let b: TmLightBlock = GenBlock::new_default_with_header(header)
            .generate()
            .unwrap();
        LightBlock::new(b.signed_header, b.validators, b.next_validators, b.provider)
    }

    fn at(secs: u64) -> Time {
        (start() + Duration::from_secs(secs)).unwrap()
    }

    /// The update_client event's header for `target`, trusted from `trusted`.
    fn seen(trusted: &LightBlock, target: &LightBlock) -> SeenHeader {
        let raw = PbHeader {
            signed_header: Some(target.signed_header.clone().into()),
            validator_set: Some(target.validators.clone().into()),
            trusted_height: Some(PbHeight {
                revision_number: 0,
                revision_height: trusted.height().value(),
            }),
            trusted_validators: Some(trusted.next_validators.clone().into()),
        };
        let any = Any {
            type_url: TM_HEADER_TYPE_URL.into(),
            value: raw.encode_to_vec(),
        };
        SeenHeader::decode(&any.encode_to_vec()).unwrap()
    }

    fn ours(b: &LightBlock) -> OurHeader {
        OurHeader::decode(&OurHeader::encode(&b.signed_header, &b.validators)).unwrap()
    }

    #[test]
    fn the_verified_header_itself_is_consistent() {
        let (trusted, real) = (block(5, at(5), 1), block(10, at(10), 2));
        let verdict = judge(
            "07-tendermint-0",
            CHAIN,
            &seen(&trusted, &real),
            &Ours::Reached(ours(&real)),
        )
        .unwrap();
        assert_eq!(verdict, Verdict::Consistent);
    }

    #[test]
    fn another_header_at_the_same_height_is_a_conflict_with_evidence() {
        let trusted = block(5, at(5), 1);
        let (real, forged) = (block(10, at(10), 2), block(10, at(10), 3));
        let s = seen(&trusted, &forged);
        let Verdict::Conflict(ev) =
            judge("07-tendermint-0", CHAIN, &s, &Ours::Reached(ours(&real))).unwrap()
        else {
            panic!("not a conflict")
        };
        assert!(ev.reason.contains("app_hash"), "{}", ev.reason);
        assert!(!ev.reason.contains("time"), "{}", ev.reason);
        // header_1 is what the client accepted, untouched; header_2 is ours, trusted from the same state.
        assert_eq!(ev.header_1, s.raw);
        assert_eq!(ev.header_2.trusted_height, s.raw.trusted_height);
        assert_eq!(ev.header_2.trusted_validators, s.raw.trusted_validators);
        let h2: SignedHeader = ev
            .header_2
            .signed_header
            .clone()
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(h2.header.hash(), real.signed_header.header.hash());
        let summary = ev.summary("conflict");
        assert_eq!((summary.height_1, summary.height_2), (10, 10));
        assert_ne!(summary.hash_1, summary.hash_2);

        // The message decodes as ibc-rs reads it: a Tendermint Misbehaviour of the client.
        let msg = submit_misbehaviour_msg(&ev, "cosmos1relayer");
        assert_eq!(msg.type_url, SUBMIT_MISBEHAVIOUR_TYPE_URL);
        #[allow(deprecated)]
        {
            let m = MsgSubmitMisbehaviour::decode(msg.value.as_slice()).unwrap();
            assert_eq!(
                (m.client_id.as_str(), m.signer.as_str()),
                ("07-tendermint-0", "cosmos1relayer")
            );
            let inner = m.misbehaviour.unwrap();
            assert_eq!(inner.type_url, TM_MISBEHAVIOUR_TYPE_URL);
            let mb = PbMisbehaviour::decode(inner.value.as_slice()).unwrap();
            assert_eq!(mb.client_id, "07-tendermint-0");
            assert_eq!(mb.header_1, Some(s.raw.clone()));
        }
    }

    #[test]
    fn a_time_mismatch_at_the_same_height_is_named() {
        let trusted = block(5, at(5), 1);
        let (real, forged) = (block(10, at(10), 2), block(10, at(11), 2));
        let Verdict::Conflict(ev) = judge(
            "07-tendermint-0",
            CHAIN,
            &seen(&trusted, &forged),
            &Ours::Reached(ours(&real)),
        )
        .unwrap() else {
            panic!("not a conflict")
        };
        assert!(ev.reason.contains("time"), "{}", ev.reason);
    }

    #[test]
    fn a_future_header_with_a_past_time_violates_bft_time() {
        // The chain is at 12; a header for 20 claims a time before block 12's.
        let trusted = block(5, at(5), 1);
        let latest = block(12, at(12), 4);
        let forged = block(20, at(11), 5);
        let s = seen(&trusted, &forged);
        let Verdict::BftTimeViolation(ev) =
            judge("07-tendermint-0", CHAIN, &s, &Ours::NotYet(ours(&latest))).unwrap()
        else {
            panic!("not a BFT time violation")
        };
        let summary = ev.summary("bft_time_violation");
        assert_eq!((summary.height_1, summary.height_2), (20, 12));
        assert!(ev.reason.contains("not after"), "{}", ev.reason);

        // Time moving forward is no proof of anything yet.
        let honest_future = block(20, at(20), 5);
        assert_eq!(
            judge(
                "07-tendermint-0",
                CHAIN,
                &seen(&trusted, &honest_future),
                &Ours::NotYet(ours(&latest)),
            )
            .unwrap(),
            Verdict::Pending { latest: 12 }
        );
    }

    #[test]
    fn foreign_and_malformed_headers_are_errors() {
        let trusted = block(5, at(5), 1);
        let real = block(10, at(10), 2);
        let err = judge(
            "07-tendermint-0",
            "ibc-1",
            &seen(&trusted, &real),
            &Ours::Reached(ours(&real)),
        )
        .unwrap_err();
        assert!(matches!(err, MisbehaviourError::WrongChain { .. }), "{err}");
        let other = Any {
            type_url: "/ibc.lightclients.solomachine.v3.Header".into(),
            value: vec![],
        };
        assert!(matches!(
            SeenHeader::decode(&other.encode_to_vec()),
            Err(MisbehaviourError::NotTendermint(_))
        ));
        assert!(matches!(
            SeenHeader::decode(b"garbage"),
            Err(MisbehaviourError::Header(_))
        ));
        // relayd's answer must be at the height asked for.
        let err = judge(
            "07-tendermint-0",
            CHAIN,
            &seen(&trusted, &real),
            &Ours::Reached(ours(&trusted)),
        )
        .unwrap_err();
        assert!(matches!(err, MisbehaviourError::Ours(_)), "{err}");
    }
}
