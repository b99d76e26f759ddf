//! Tendermint light clients of one chain installed on another: light blocks fetched over RPC (`commit` +
//! `validators`), verified locally with tendermint-light-client-verifier before they become a MsgCreateClient's
//! consensus state or a MsgUpdateClient's header.

use std::collections::BTreeMap;
use std::time::Duration;

use ibc_proto::google::protobuf::{Any, Duration as PbDuration};
use ibc_proto::ibc::core::client::v1::{Height, MsgCreateClient, MsgUpdateClient};
use ibc_proto::ibc::lightclients::tendermint::v1::{ClientState, ConsensusState, Fraction, Header};
use prost::Message;
use tendermint::validator;
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::{LightBlock, TrustThreshold};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};
use tendermint_rpc::{Client, Paging};

use super::chain::Chain;
use super::proof;

pub const CREATE_CLIENT_URL: &str = "/ibc.core.client.v1.MsgCreateClient";
pub const UPDATE_CLIENT_URL: &str = "/ibc.core.client.v1.MsgUpdateClient";
pub const TM_CLIENT_STATE_URL: &str = "/ibc.lightclients.tendermint.v1.ClientState";
pub const TM_CONSENSUS_STATE_URL: &str = "/ibc.lightclients.tendermint.v1.ConsensusState";
pub const TM_HEADER_URL: &str = "/ibc.lightclients.tendermint.v1.Header";

/// Tolerated clock difference between the chains (both follow this machine's clock).
const MAX_CLOCK_DRIFT: Duration = Duration::from_secs(20);

pub fn any(type_url: &str, msg: &impl Message) -> Any {
    Any {
        type_url: type_url.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// An IBC height of `chain`.
pub fn height(chain: &Chain, h: u64) -> Height {
    Height {
        revision_number: chain.revision,
        revision_height: h,
    }
}

/// The light block at `h`: signed header from `commit`, validator sets at `h` and `h+1` from `validators`.
pub async fn fetch_light_block(chain: &Chain, h: u64) -> LightBlock {
    let signed_header = chain
        .rpc
        .commit(tendermint::block::Height::try_from(h).expect("height"))
        .await
        .expect("commit")
        .signed_header;
    let validators = chain
        .rpc
        .validators(h as u32, Paging::All)
        .await
        .expect("validators")
        .validators;
    let next = chain
        .rpc
        .validators((h + 1) as u32, Paging::All)
        .await
        .expect("next validators")
        .validators;
    let proposer = signed_header.header.proposer_address;
    LightBlock::new(
        signed_header,
        validator::Set::with_proposer(validators, proposer).expect("proposer is a validator"),
        validator::Set::without_proposer(next),
        tendermint::node::Id::new([0; 20]),
    )
}

/// A client on `host` that tracks `counterparty`, and the counterparty light blocks this relayer has verified.
pub struct ClientTracker {
    pub client_id: String,
    options: Options,
    verified: BTreeMap<u64, LightBlock>,
}

impl ClientTracker {
    /// Creates a Tendermint client of `counterparty` on `host` from the counterparty's latest block.
    ///
    /// The first header is the root of trust; it is accepted only if its validator set is the one
    /// `trusted_validators` names (known out of band, here from the counterparty's genesis) and its commit verifies.
    pub async fn create(
        host: &Chain,
        counterparty: &Chain,
        trusted_validators: &validator::Set,
    ) -> Self {
        Self::create_with(host, counterparty, trusted_validators, None).await
    }

    /// [`Self::create`] with a trusting period of `trusting` instead of 2/3 of the unbonding period.
    pub async fn create_with(
        host: &Chain,
        counterparty: &Chain,
        trusted_validators: &validator::Set,
        trusting: Option<Duration>,
    ) -> Self {
        // A fresh chain may not have committed a block yet.
        let h = counterparty.wait_until_height(1).await;
        counterparty.wait_until_height(h + 1).await;
        let root = fetch_light_block(counterparty, h).await;
        assert_eq!(
            root.signed_header.header.validators_hash,
            trusted_validators.hash(),
            "root of trust: unexpected validator set"
        );
        assert_eq!(
            root.signed_header.commit.block_id.hash,
            root.signed_header.header.hash()
        );

        let unbonding = unbonding_period(counterparty).await;
        // Well below the unbonding period, as ibc-rs requires and as the SDK suggests (2/3).
        let trusting = trusting.unwrap_or(unbonding * 2 / 3);
        let options = Options {
            trust_threshold: TrustThreshold::ONE_THIRD,
            trusting_period: trusting,
            clock_drift: MAX_CLOCK_DRIFT,
        };
        // The root's own commit: validator hashes match the header and 2/3 of the set signed it.
        let verifier = ProdVerifier::default();
        let state = root.as_untrusted_state();
        assert_eq!(verifier.verify_validator_sets(&state), Verdict::Success);
        assert_eq!(verifier.verify_commit(&state), Verdict::Success);
        // The deprecated allow_update fields must still be filled; false is what ibc-go and ibc-rs expect.
        #[allow(deprecated)]
        let client_state = ClientState {
            chain_id: counterparty.id.clone(),
            trust_level: Some(Fraction {
                numerator: 1,
                denominator: 3,
            }),
            trusting_period: Some(pb_duration(trusting)),
            unbonding_period: Some(pb_duration(unbonding)),
            max_clock_drift: Some(pb_duration(MAX_CLOCK_DRIFT)),
            // ibc-rs refuses a client state without it; 0-0 means "not frozen".
            frozen_height: Some(Height::default()),
            latest_height: Some(height(counterparty, h)),
            // The devnet's store is basecoin AVL at both levels (IBC store and multistore), not IAVL + simple tree.
            proof_specs: vec![proof::spec(), proof::spec()],
            upgrade_path: vec!["upgrade".into(), "upgradedIBCState".into()],
            allow_update_after_expiry: false,
            allow_update_after_misbehaviour: false,
        };
        let msg = MsgCreateClient {
            client_state: Some(any(TM_CLIENT_STATE_URL, &client_state)),
            consensus_state: Some(any(TM_CONSENSUS_STATE_URL, &consensus_state(&root))),
            signer: host.relayer.address.clone(),
        };
        let inc = host
            .submit(&host.relayer, &[any(CREATE_CLIENT_URL, &msg)])
            .await;
        let client_id = inc
            .attr("create_client", "client_id")
            .expect("create_client event");
        let mut verified = BTreeMap::new();
        verified.insert(h, root);
        Self {
            client_id,
            options,
            verified,
        }
    }

    /// Whether the client on `host` holds a consensus state for `counterparty` height `h`.
    pub async fn has_consensus_state(&self, host: &Chain, counterparty: &Chain, h: u64) -> bool {
        let path = format!(
            "clients/{}/consensusStates/{}-{h}",
            self.client_id, counterparty.revision
        );
        !host
            .query("store/ibc/key", path.into_bytes(), None, false)
            .await
            .expect("consensus state query")
            .value
            .is_empty()
    }

    /// The verified counterparty header at `h`, and the MsgUpdateClients installing it on `host` unless the
    /// client already has a consensus state there. The header is verified against the highest verified header
    /// below `h` that the client has; when the validators changed too much in between, intermediate headers
    /// are found by bisection and installed first, each trusted from the one before.
    pub async fn header_at(
        &mut self,
        host: &Chain,
        counterparty: &Chain,
        h: u64,
    ) -> (LightBlock, Vec<Any>) {
        let installed = self.has_consensus_state(host, counterparty, h).await;
        if let (true, Some(lb)) = (installed, self.verified.get(&h)) {
            return (lb.clone(), Vec::new());
        }
        let mut trusted = None;
        for (th, lb) in self.verified.range(..h).rev() {
            if self.has_consensus_state(host, counterparty, *th).await {
                trusted = Some(lb.clone());
                break;
            }
        }
        let trusted = trusted.expect("no trusted consensus state below the target height");
        let mut path = Vec::new();
        match self.verified.get(&h) {
            Some(lb) => path.push(lb.clone()),
            None => {
                let mut from = trusted.clone();
                while from.height().value() < h {
                    let low = from.height().value();
                    let mut to = h;
                    loop {
                        let lb = fetch_light_block(counterparty, to).await;
                        match verify(&self.options, &from, &lb) {
                            Ok(()) => {
                                self.verified.insert(to, lb.clone());
                                path.push(lb.clone());
                                from = lb;
                                break;
                            }
                            Err(v) if v.starts_with("NotEnoughTrust") && to > low + 1 => {
                                to = low + (to - low) / 2;
                            }
                            Err(v) => panic!("header {to} of {} rejected: {v}", counterparty.id),
                        }
                    }
                }
            }
        }
        let target = path.last().cloned().expect("a path ends at the target");
        if installed {
            return (target, Vec::new());
        }
        let mut from = trusted;
        let mut updates = Vec::new();
        for lb in path {
            let header = Header {
                signed_header: Some(lb.signed_header.clone().into()),
                validator_set: Some(lb.validators.clone().into()),
                trusted_height: Some(height(
                    counterparty,
                    from.signed_header.header.height.value(),
                )),
                // ibc-rs checks these against the trusted consensus state's next_validators_hash.
                trusted_validators: Some(from.next_validators.clone().into()),
            };
            let msg = MsgUpdateClient {
                client_id: self.client_id.clone(),
                client_message: Some(any(TM_HEADER_URL, &header)),
                signer: host.relayer.address.clone(),
            };
            updates.push(any(UPDATE_CLIENT_URL, &msg));
            from = lb;
        }
        (target, updates)
    }
}

impl ClientTracker {
    /// A MsgUpdateClient carrying the counterparty's header at `h` with its app hash altered (the commit
    /// signatures then vouch for a different header), and what local verification says about that header.
    pub async fn tampered_update(
        &self,
        host: &Chain,
        counterparty: &Chain,
        h: u64,
    ) -> (Result<(), String>, Any) {
        let (&trusted_height, trusted) = self
            .verified
            .range(..h)
            .next_back()
            .expect("a verified header below h");
        let mut lb = fetch_light_block(counterparty, h).await;
        let mut app_hash = lb.signed_header.header.app_hash.as_bytes().to_vec();
        app_hash[0] ^= 0x01;
        let mut header = lb.signed_header.header.clone();
        header.app_hash = app_hash.try_into().expect("app hash");
        lb.signed_header = tendermint::block::signed_header::SignedHeader::new(
            header,
            lb.signed_header.commit.clone(),
        )
        .expect("signed header");
        let verdict = verify(&self.options, trusted, &lb);
        let header = Header {
            signed_header: Some(lb.signed_header.clone().into()),
            validator_set: Some(lb.validators.clone().into()),
            trusted_height: Some(height(counterparty, trusted_height)),
            trusted_validators: Some(trusted.next_validators.clone().into()),
        };
        let msg = MsgUpdateClient {
            client_id: self.client_id.clone(),
            client_message: Some(any(TM_HEADER_URL, &header)),
            signer: host.relayer.address.clone(),
        };
        (verdict, any(UPDATE_CLIENT_URL, &msg))
    }
}

/// What the client stores for a header: its app hash as the commitment root, its time, next validators hash.
pub fn consensus_state(lb: &LightBlock) -> ConsensusState {
    let h = &lb.signed_header.header;
    ConsensusState {
        timestamp: Some(h.time.into()),
        root: Some(ibc_proto::ibc::core::commitment::v1::MerkleRoot {
            hash: h.app_hash.as_bytes().to_vec(),
        }),
        next_validators_hash: h.next_validators_hash.as_bytes().to_vec(),
    }
}

/// `untrusted` checked against `trusted` as a light client does (signatures, voting power, hashes, time).
pub fn verify(
    options: &Options,
    trusted: &LightBlock,
    untrusted: &LightBlock,
) -> Result<(), String> {
    match ProdVerifier::default().verify_update_header(
        untrusted.as_untrusted_state(),
        trusted.as_trusted_state(),
        options,
        tendermint::Time::now(),
    ) {
        Verdict::Success => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

pub fn pb_duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The counterparty's unbonding period from its staking Params query.
pub async fn unbonding_period(chain: &Chain) -> Duration {
    use cosmrs::proto::cosmos::staking::v1beta1::{QueryParamsRequest, QueryParamsResponse};
    let q = chain
        .query(
            "/cosmos.staking.v1beta1.Query/Params",
            QueryParamsRequest {}.encode_to_vec(),
            None,
            false,
        )
        .await
        .expect("staking params");
    let d = QueryParamsResponse::decode(q.value.as_slice())
        .expect("params response")
        .params
        .and_then(|p| p.unbonding_time)
        .expect("unbonding time");
    Duration::new(d.seconds as u64, d.nanos as u32)
}
