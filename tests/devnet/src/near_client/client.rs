//! The NEAR client behind ibc-rs's client traits: what 02-client's handlers call to create, update, freeze and
//! expire a NEAR client and to verify proofs of NEAR state. The rules themselves are in `verify`.

use std::time::Duration;

use ibc::core::client::context::client_state::{
    ClientStateCommon, ClientStateExecution, ClientStateValidation,
};
use ibc::core::client::context::consensus_state::ConsensusState;
use ibc::core::client::context::Convertible;
use ibc::core::client::context::{ClientExecutionContext, ExtClientValidationContext};
use ibc::core::client::types::error::ClientError;
use ibc::core::client::types::{Height, Status};
use ibc::core::commitment_types::commitment::{
    CommitmentPrefix, CommitmentProofBytes, CommitmentRoot,
};
use ibc::core::host::types::identifiers::{ClientId, ClientType};
use ibc::core::host::types::path::{ClientConsensusStatePath, ClientStatePath, Path, PathBytes};
use ibc::core::primitives::Timestamp;
use ibc_proto::google::protobuf::Any;
use near_primitives::hash::CryptoHash;

use super::types::{NearClientState, NearConsensusState, NearHeader, NEAR_CLIENT_TYPE};
use super::verify::{verify_header, verify_state};

fn specific(description: impl std::fmt::Display) -> ClientError {
    ClientError::ClientSpecific {
        description: description.to_string(),
    }
}

/// The NEAR client's type, `12-near`.
pub fn near_client_type() -> ClientType {
    // A constant that satisfies ClientType's identifier rules (a unit test builds it).
    #[allow(clippy::expect_used)]
    ClientType::new(NEAR_CLIENT_TYPE).expect("12-near is a valid client type")
}

fn near_height(h: u64) -> Result<Height, ClientError> {
    Height::new(0, h).map_err(|_| ClientError::InvalidHeight)
}

fn timestamp(ns: u64) -> Result<Timestamp, ClientError> {
    Ok(Timestamp::from_nanoseconds(ns))
}

/// Whether a consensus state of `timestamp_ns` is past `trusting_period` at `now`.
fn expired(timestamp_ns: u64, trusting_period: Duration, now: &Timestamp) -> bool {
    let ends = u128::from(timestamp_ns).saturating_add(trusting_period.as_nanos());
    u128::from(now.nanoseconds()) > ends
}

impl ConsensusState for NearConsensusState {
    fn root(&self) -> &CommitmentRoot {
        self.commitment_root()
    }

    fn timestamp(&self) -> Result<Timestamp, ClientError> {
        timestamp(self.timestamp_ns())
    }
}

fn root_hash(root: &CommitmentRoot) -> Result<CryptoHash, ClientError> {
    let bytes: [u8; 32] = root
        .as_bytes()
        .try_into()
        .map_err(|_| specific("the consensus root is not 32 bytes"))?;
    Ok(CryptoHash(bytes))
}

fn state_key(prefix: &CommitmentPrefix, path: &PathBytes) -> Vec<u8> {
    let mut key = prefix.as_bytes().to_vec();
    key.extend_from_slice(path.as_ref());
    key
}

impl ClientStateCommon for NearClientState {
    fn verify_consensus_state(
        &self,
        consensus_state: Any,
        host_timestamp: &Timestamp,
    ) -> Result<(), ClientError> {
        let cs = NearConsensusState::try_from(consensus_state)?;
        if expired(cs.timestamp_ns(), self.trusting_period, host_timestamp) {
            return Err(ClientError::InvalidStatus(Status::Expired));
        }
        Ok(())
    }

    fn client_type(&self) -> ClientType {
        near_client_type()
    }

    fn latest_height(&self) -> Height {
        near_height(self.latest_height).unwrap_or_else(|_| Height::min(0))
    }

    fn validate_proof_height(&self, proof_height: Height) -> Result<(), ClientError> {
        let latest = self.latest_height();
        if proof_height > latest {
            return Err(ClientError::InsufficientProofHeight {
                expected: latest,
                actual: proof_height,
            });
        }
        Ok(())
    }

    fn verify_upgrade_client(
        &self,
        _upgraded_client_state: Any,
        _upgraded_consensus_state: Any,
        _proof_upgrade_client: CommitmentProofBytes,
        _proof_upgrade_consensus_state: CommitmentProofBytes,
        _root: &CommitmentRoot,
    ) -> Result<(), ClientError> {
        Err(specific("the NEAR client does not support upgrades"))
    }

    fn serialize_path(&self, path: Path) -> Result<PathBytes, ClientError> {
        Ok(PathBytes::from_bytes(path.to_string().as_bytes()))
    }

    fn verify_membership_raw(
        &self,
        prefix: &CommitmentPrefix,
        proof: &CommitmentProofBytes,
        root: &CommitmentRoot,
        path: PathBytes,
        value: Vec<u8>,
    ) -> Result<(), ClientError> {
        let proof: Vec<u8> = proof.clone().into();
        verify_state(
            &root_hash(root)?,
            &state_key(prefix, &path),
            Some(&value),
            &proof,
        )
        .map_err(specific)
    }

    fn verify_non_membership_raw(
        &self,
        prefix: &CommitmentPrefix,
        proof: &CommitmentProofBytes,
        root: &CommitmentRoot,
        path: PathBytes,
    ) -> Result<(), ClientError> {
        let proof: Vec<u8> = proof.clone().into();
        verify_state(&root_hash(root)?, &state_key(prefix, &path), None, &proof).map_err(specific)
    }
}

/// The consensus state a header follows: the one just below its height.
fn trusted_below<V>(
    ctx: &V,
    client_id: &ClientId,
    height: &Height,
) -> Result<NearConsensusState, ClientError>
where
    V: ExtClientValidationContext,
    NearConsensusState: Convertible<V::ConsensusStateRef>,
    <NearConsensusState as TryFrom<V::ConsensusStateRef>>::Error: Into<ClientError>,
{
    let cs = ctx
        .prev_consensus_state(client_id, height)?
        .ok_or_else(|| specific(format!("no consensus state below height {height}")))?;
    cs.try_into().map_err(Into::into)
}

fn stored<V>(
    ctx: &V,
    client_id: &ClientId,
    height: &Height,
) -> Result<Option<NearConsensusState>, ClientError>
where
    V: ExtClientValidationContext,
    NearConsensusState: Convertible<V::ConsensusStateRef>,
    <NearConsensusState as TryFrom<V::ConsensusStateRef>>::Error: Into<ClientError>,
{
    let path = ClientConsensusStatePath::new(
        client_id.clone(),
        height.revision_number(),
        height.revision_height(),
    );
    match ctx.consensus_state(&path) {
        Ok(cs) => Ok(Some(cs.try_into().map_err(Into::into)?)),
        Err(_) => Ok(None),
    }
}

/// Verifies `header` against the state below it and returns the consensus state it makes.
fn verified<V>(
    ctx: &V,
    client_id: &ClientId,
    header: &NearHeader,
) -> Result<NearConsensusState, ClientError>
where
    V: ExtClientValidationContext,
    NearConsensusState: Convertible<V::ConsensusStateRef>,
    <NearConsensusState as TryFrom<V::ConsensusStateRef>>::Error: Into<ClientError>,
{
    let height = header.height()?;
    let trusted = trusted_below(ctx, client_id, &height)?;
    verify_header(&trusted, header).map_err(|e| ClientError::FailedToVerifyHeader {
        description: e.to_string(),
    })
}

impl<V> ClientStateValidation<V> for NearClientState
where
    V: ExtClientValidationContext,
    NearConsensusState: Convertible<V::ConsensusStateRef>,
    <NearConsensusState as TryFrom<V::ConsensusStateRef>>::Error: Into<ClientError>,
{
    fn verify_client_message(
        &self,
        ctx: &V,
        client_id: &ClientId,
        client_message: Any,
    ) -> Result<(), ClientError> {
        let header = NearHeader::try_from(client_message)?;
        verified(ctx, client_id, &header).map(|_| ())
    }

    fn check_for_misbehaviour(
        &self,
        ctx: &V,
        client_id: &ClientId,
        client_message: Any,
    ) -> Result<bool, ClientError> {
        // Called only on a header that verified: another valid block stored at its height is a fork.
        let header = NearHeader::try_from(client_message)?;
        let height = header.height()?;
        Ok(match stored(ctx, client_id, &height)? {
            Some(existing) => existing.header().block.hash() != header.block.hash(),
            None => false,
        })
    }

    fn status(&self, ctx: &V, client_id: &ClientId) -> Result<Status, ClientError> {
        if self.frozen_height.is_some() {
            return Ok(Status::Frozen);
        }
        let Some(latest) = stored(ctx, client_id, &self.latest_height())? else {
            return Ok(Status::Expired);
        };
        let now = ctx.host_timestamp()?;
        Ok(
            if expired(latest.timestamp_ns(), self.trusting_period, &now) {
                Status::Expired
            } else {
                Status::Active
            },
        )
    }

    fn check_substitute(&self, _ctx: &V, _substitute: Any) -> Result<(), ClientError> {
        Err(specific("the NEAR client does not support recovery"))
    }
}

impl<E> ClientStateExecution<E> for NearClientState
where
    E: ExtClientValidationContext + ClientExecutionContext,
    E::ClientStateRef: From<NearClientState>,
    NearConsensusState: Convertible<E::ConsensusStateRef>,
    <NearConsensusState as TryFrom<E::ConsensusStateRef>>::Error: Into<ClientError>,
{
    fn initialise(
        &self,
        ctx: &mut E,
        client_id: &ClientId,
        consensus_state: Any,
    ) -> Result<(), ClientError> {
        let cs = <NearConsensusState as TryFrom<Any>>::try_from(consensus_state)?;
        if cs.header().block.height() != self.latest_height {
            return Err(specific(format!(
                "consensus state of height {} for a client at height {}",
                cs.header().block.height(),
                self.latest_height
            )));
        }
        let height = self.latest_height();
        let host_timestamp = ExtClientValidationContext::host_timestamp(ctx)?;
        let host_height = ExtClientValidationContext::host_height(ctx)?;
        ctx.store_client_state(ClientStatePath::new(client_id.clone()), self.clone().into())?;
        ctx.store_consensus_state(
            ClientConsensusStatePath::new(
                client_id.clone(),
                height.revision_number(),
                height.revision_height(),
            ),
            cs.into(),
        )?;
        ctx.store_update_meta(client_id.clone(), height, host_timestamp, host_height)?;
        Ok(())
    }

    fn update_state(
        &self,
        ctx: &mut E,
        client_id: &ClientId,
        header: Any,
    ) -> Result<Vec<Height>, ClientError> {
        let header = NearHeader::try_from(header)?;
        let height = header.height()?;
        if stored(ctx, client_id, &height)?.is_some() {
            // The same block again: nothing changes (a different one was caught as misbehaviour).
            return Ok(vec![height]);
        }
        let cs = verified(ctx, client_id, &header)?;
        let host_timestamp = ExtClientValidationContext::host_timestamp(ctx)?;
        let host_height = ExtClientValidationContext::host_height(ctx)?;
        let mut client = self.clone();
        if header.block.height() > client.latest_height {
            client.latest_height = header.block.height();
            client.latest_timestamp = cs.timestamp_ns();
        }
        ctx.store_consensus_state(
            ClientConsensusStatePath::new(
                client_id.clone(),
                height.revision_number(),
                height.revision_height(),
            ),
            cs.into(),
        )?;
        ctx.store_client_state(ClientStatePath::new(client_id.clone()), client.into())?;
        ctx.store_update_meta(client_id.clone(), height, host_timestamp, host_height)?;
        Ok(vec![height])
    }

    fn update_state_on_misbehaviour(
        &self,
        ctx: &mut E,
        client_id: &ClientId,
        client_message: Any,
    ) -> Result<(), ClientError> {
        let header = NearHeader::try_from(client_message)?;
        let mut client = self.clone();
        client.frozen_height = Some(header.height()?);
        ctx.store_client_state(ClientStatePath::new(client_id.clone()), client.into())?;
        Ok(())
    }

    fn update_state_on_upgrade(
        &self,
        _ctx: &mut E,
        _client_id: &ClientId,
        _upgraded_client_state: Any,
        _upgraded_consensus_state: Any,
    ) -> Result<Height, ClientError> {
        Err(specific("the NEAR client does not support upgrades"))
    }

    fn update_on_recovery(
        &self,
        _ctx: &mut E,
        _subject_client_id: &ClientId,
        _substitute_client_state: Any,
        _substitute_consensus_state: Any,
    ) -> Result<(), ClientError> {
        Err(specific("the NEAR client does not support recovery"))
    }
}
