//! Proving state of one chain to a client of it on another, the way every builder does it: the proof-height
//! rule (`crate::proof_height`) picks the heights, every proof of a datagram is read at one height, and each is
//! checked against the root relayd's own light client verified (as ICS-23 or as a NEAR state proof, by the
//! proving chain's kind) before the datagram and the client update it needs are handed back.

use relayd_messages::{
    ClientId, ClientSummary, ClientUpdate, CorrelationId, ErrorKind, PrepareClientUpdate, Proven,
    QueryClient, QueryProof, QueryVerifiedHeads, RelayError,
};

use super::datagrams;
use crate::chain::proof::{Forwarded, ProofFormat};
use crate::chain_link::verification::Check;
use crate::chain_link::ChainLink;
use crate::client_keeper::state as client;
use crate::proof_height::{self, NoPlan, Plan, Source};
use crate::store::now_ns;

/// A value read with a proof that must verify before the datagram carrying it is forwarded.
pub struct Expect<'a> {
    /// The ICS-24 path read.
    pub path: &'a str,
    /// What was read.
    pub proven: &'a Proven,
    /// The value it must hold, or `None` for absence.
    pub value: Option<&'a [u8]>,
}

/// A proving in progress: `from`'s state for `to`'s client `client_id`, at the heights the rule chose.
pub struct Prover<'a> {
    correlation: CorrelationId,
    from: &'a ChainLink,
    to: &'a ChainLink,
    client_id: &'a ClientId,
    /// The judging client as read before planning.
    pub client: ClientSummary,
    /// The heights chosen.
    pub plan: Plan,
}

fn no_plan(from: &ChainLink, client_id: &ClientId, e: NoPlan) -> RelayError {
    RelayError::new(
        ErrorKind::Unavailable,
        format!("{}: proving for {client_id}: {e}", from.chain),
    )
}

impl<'a> Prover<'a> {
    /// Reads the judging client, applies the proof-height rule for state at `not_before` or later, and reads
    /// `first` at the chosen height. A client that is frozen or expired ends the work.
    pub async fn start(
        correlation: CorrelationId,
        (from, to, client_id): (&'a ChainLink, &'a ChainLink, &'a ClientId),
        first: &str,
        not_before: u64,
    ) -> Result<(Self, Proven), RelayError> {
        let client = to
            .query_client(QueryClient {
                correlation,
                client_id: client_id.clone(),
            })
            .await?;
        if let Some(why) = client::unusable(&client::ClientView::of(&client), now_ns()) {
            return Err(RelayError::new(
                ErrorKind::ClientUnusable,
                format!("{client_id} on {} {why}", to.chain),
            ));
        }
        let read = |height: Option<u64>| {
            from.query_proof(QueryProof {
                correlation,
                path: first.to_owned(),
                height,
            })
        };
        let (plan, proven) = match &from.proofs {
            ProofFormat::Ics23 => {
                let latest = read(None).await?;
                let plan = proof_height::plan(
                    Source::Cosmos {
                        latest: latest.height,
                    },
                    client.latest_height,
                    not_before,
                )
                .map_err(|e| no_plan(from, client_id, e))?;
                let proven = if plan.query_height == latest.height {
                    latest
                } else {
                    read(Some(plan.query_height)).await?
                };
                (plan, proven)
            }
            ProofFormat::NearState { .. } => {
                let heads = from
                    .verified_heads(QueryVerifiedHeads {
                        correlation,
                        from: client.latest_height,
                    })
                    .await?;
                let plan = proof_height::plan(
                    Source::Near { heads: &heads },
                    client.latest_height,
                    not_before,
                )
                .map_err(|e| no_plan(from, client_id, e))?;
                (plan, read(Some(plan.query_height)).await?)
            }
        };
        if proven.height != plan.query_height {
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{}: {first} read at {}, not at {}",
                    from.chain, proven.height, plan.query_height
                ),
            ));
        }
        let prover = Self {
            correlation,
            from,
            to,
            client_id,
            client,
            plan,
        };
        Ok((prover, proven))
    }

    /// Reads `path` at the chosen height.
    pub async fn read(&self, path: &str) -> Result<Proven, RelayError> {
        let proven = self
            .from
            .query_proof(QueryProof {
                correlation: self.correlation,
                path: path.to_owned(),
                height: Some(self.plan.query_height),
            })
            .await?;
        if proven.height != self.plan.query_height {
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{}: {path} read at {}, not at {}",
                    self.from.chain, proven.height, self.plan.query_height
                ),
            ));
        }
        Ok(proven)
    }

    /// Has relayd's light client verify the header at the proof height (and prepare the client's update to it),
    /// then checks every proof against that header's root. Nothing is returned for forwarding unless all verify.
    pub async fn verify(&self, proofs: &[Expect<'_>]) -> Result<ClientUpdate, RelayError> {
        if let Some(e) = proofs
            .iter()
            .find(|e| e.proven.height != self.plan.query_height)
        {
            return Err(RelayError::new(
                ErrorKind::Unavailable,
                format!(
                    "{} read at {}, not at the proof's query height {}; reading again",
                    e.path, e.proven.height, self.plan.query_height
                ),
            ));
        }
        let update = self
            .from
            .prepare_update(PrepareClientUpdate {
                correlation: self.correlation,
                client_id: self.client_id.clone(),
                trusted_height: self.client.latest_height,
                anchor: self.client.anchor.clone(),
                target: self.plan.proof_height,
                signer: self.to.signer.clone(),
            })
            .await?;
        for e in proofs {
            datagrams::check(Forwarded {
                chain: self.from.chain.as_str(),
                format: &self.from.proofs,
                prefix: &self.from.prefix,
                path: e.path,
                proven: e.proven,
                root: &update.app_hash,
                specs: &self.client.proof_specs,
                expect: e.value,
            })
            .inspect_err(|refused| self.from.refused(Check::Proof, refused))?;
        }
        self.from.verified(Check::Proof);
        Ok(update)
    }
}
