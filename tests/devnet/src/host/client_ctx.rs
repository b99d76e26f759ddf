//! The host as ibc-rs's client context: client states, consensus states and update metadata of any client the
//! devnet hosts, stored at ibc-go's paths in ibc-go's encoding (protobuf `Any`), where ibc-testkit's typed
//! stores (and so the queries built on them) read Tendermint clients as before.

use basecoin_store::context::Store;
use basecoin_store::types::{Height as StoreHeight, Path as StorePath};
use ibc::core::client::context::{
    ClientExecutionContext, ClientValidationContext, ExtClientValidationContext,
};
use ibc::core::client::types::Height;
use ibc::core::host::types::error::HostError;
use ibc::core::host::types::identifiers::ClientId;
use ibc::core::host::types::path::{
    ClientConsensusStatePath, ClientStatePath, ClientUpdateHeightPath, ClientUpdateTimePath, Path,
};
use ibc::core::host::ValidationContext;
use ibc::core::primitives::Timestamp;
use ibc::primitives::proto::Protobuf;
use ibc_proto::google::protobuf::Any;

use super::DevnetHost;
use crate::clients::{AnyClientState, AnyConsensusState};
use basecoin_store::context::ProvableStore;

impl<S: ProvableStore + core::fmt::Debug> DevnetHost<'_, S> {
    fn read_any<T>(&self, path: String, what: &str) -> Result<T, HostError>
    where
        T: TryFrom<Any>,
        <T as TryFrom<Any>>::Error: core::fmt::Display,
    {
        let bytes = self
            .store
            .store
            .get(StoreHeight::Pending, &StorePath::from(path.clone()))
            .ok_or_else(|| HostError::failed_to_retrieve(format!("{what} at {path}")))?;
        let any = <Any as prost::Message>::decode(bytes.as_slice())
            .map_err(|e| HostError::failed_to_retrieve(format!("{what} at {path}: {e}")))?;
        T::try_from(any)
            .map_err(|e| HostError::failed_to_retrieve(format!("{what} at {path}: {e}")))
    }

    fn write(&mut self, path: String, bytes: Vec<u8>) -> Result<(), HostError> {
        self.store
            .store
            .set(StorePath::from(path), bytes)
            .map(|_| ())
            .map_err(|e| HostError::failed_to_store(format!("{e:?}")))
    }

    /// Heights of `client_id`'s consensus states, ascending.
    fn heights(&self, client_id: &ClientId) -> Result<Vec<Height>, HostError> {
        let prefix = StorePath::from(format!("clients/{client_id}/consensusStates"));
        let mut heights = self
            .store
            .store
            .get_keys(&prefix)
            .into_iter()
            .filter_map(|p| match p.to_string().parse::<Path>() {
                Ok(Path::ClientConsensusState(c)) => Some(c),
                _ => None,
            })
            .map(|c| {
                Height::new(c.revision_number, c.revision_height).map_err(HostError::invalid_state)
            })
            .collect::<Result<Vec<_>, _>>()?;
        heights.sort();
        Ok(heights)
    }

    fn consensus_at(
        &self,
        client_id: &ClientId,
        height: Option<Height>,
    ) -> Result<Option<AnyConsensusState>, HostError> {
        height
            .map(|h| {
                self.consensus_state(&ClientConsensusStatePath::new(
                    client_id.clone(),
                    h.revision_number(),
                    h.revision_height(),
                ))
            })
            .transpose()
    }
}

impl<S: ProvableStore + core::fmt::Debug> ClientValidationContext for DevnetHost<'_, S> {
    type ClientStateRef = AnyClientState;
    type ConsensusStateRef = AnyConsensusState;

    fn client_state(&self, client_id: &ClientId) -> Result<AnyClientState, HostError> {
        self.read_any(
            ClientStatePath::new(client_id.clone()).to_string(),
            "client state",
        )
    }

    fn consensus_state(
        &self,
        path: &ClientConsensusStatePath,
    ) -> Result<AnyConsensusState, HostError> {
        self.read_any(path.to_string(), "consensus state")
    }

    fn client_update_meta(
        &self,
        client_id: &ClientId,
        height: &Height,
    ) -> Result<(Timestamp, Height), HostError> {
        let time_path = ClientUpdateTimePath::new(
            client_id.clone(),
            height.revision_number(),
            height.revision_height(),
        );
        let height_path = ClientUpdateHeightPath::new(
            client_id.clone(),
            height.revision_number(),
            height.revision_height(),
        );
        let missing =
            || HostError::failed_to_retrieve(format!("update metadata of {client_id} at {height}"));
        let time = self
            .store
            .client_processed_times
            .get(StoreHeight::Pending, &time_path)
            .ok_or_else(missing)?;
        let at = self
            .store
            .client_processed_heights
            .get(StoreHeight::Pending, &height_path)
            .ok_or_else(missing)?;
        Ok((time, at))
    }
}

impl<S: ProvableStore + core::fmt::Debug> ExtClientValidationContext for DevnetHost<'_, S> {
    fn host_timestamp(&self) -> Result<Timestamp, HostError> {
        ValidationContext::host_timestamp(self)
    }

    fn host_height(&self) -> Result<Height, HostError> {
        ValidationContext::host_height(self)
    }

    fn consensus_state_heights(&self, client_id: &ClientId) -> Result<Vec<Height>, HostError> {
        self.heights(client_id)
    }

    fn next_consensus_state(
        &self,
        client_id: &ClientId,
        height: &Height,
    ) -> Result<Option<AnyConsensusState>, HostError> {
        let next = self.heights(client_id)?.into_iter().find(|h| h > height);
        self.consensus_at(client_id, next)
    }

    fn prev_consensus_state(
        &self,
        client_id: &ClientId,
        height: &Height,
    ) -> Result<Option<AnyConsensusState>, HostError> {
        let prev = self
            .heights(client_id)?
            .into_iter()
            .rev()
            .find(|h| h < height);
        self.consensus_at(client_id, prev)
    }
}

impl<S: ProvableStore + core::fmt::Debug> ClientExecutionContext for DevnetHost<'_, S> {
    type ClientStateMut = AnyClientState;

    fn store_client_state(
        &mut self,
        path: ClientStatePath,
        client_state: AnyClientState,
    ) -> Result<(), HostError> {
        self.write(path.to_string(), client_state.encode_vec())
    }

    fn store_consensus_state(
        &mut self,
        path: ClientConsensusStatePath,
        consensus_state: AnyConsensusState,
    ) -> Result<(), HostError> {
        self.write(path.to_string(), consensus_state.encode_vec())
    }

    fn delete_consensus_state(&mut self, path: ClientConsensusStatePath) -> Result<(), HostError> {
        self.store.store.delete(&StorePath::from(path.to_string()));
        Ok(())
    }

    fn store_update_meta(
        &mut self,
        client_id: ClientId,
        height: Height,
        host_timestamp: Timestamp,
        host_height: Height,
    ) -> Result<(), HostError> {
        let time_path = ClientUpdateTimePath::new(
            client_id.clone(),
            height.revision_number(),
            height.revision_height(),
        );
        let height_path = ClientUpdateHeightPath::new(
            client_id,
            height.revision_number(),
            height.revision_height(),
        );
        self.store
            .client_processed_times
            .set(time_path, host_timestamp)
            .map_err(|e| HostError::failed_to_store(format!("{e:?}")))?;
        self.store
            .client_processed_heights
            .set(height_path, host_height)
            .map_err(|e| HostError::failed_to_store(format!("{e:?}")))?;
        Ok(())
    }

    fn delete_update_meta(&mut self, client_id: ClientId, height: Height) -> Result<(), HostError> {
        self.store
            .client_processed_times
            .delete(ClientUpdateTimePath::new(
                client_id.clone(),
                height.revision_number(),
                height.revision_height(),
            ));
        self.store
            .client_processed_heights
            .delete(ClientUpdateHeightPath::new(
                client_id,
                height.revision_number(),
                height.revision_height(),
            ));
        Ok(())
    }
}
