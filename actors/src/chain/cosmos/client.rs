//! Messages that keep a Tendermint IBC client of this chain (hosted on a counterparty) up to date: each verified
//! header becomes one `MsgUpdateClient`, trusted from the header before it.

use ibc_proto::google::protobuf::Any;
use ibc_proto::ibc::core::client::v1::{Height, MsgUpdateClient};
use ibc_proto::ibc::lightclients::tendermint::v1::Header;
use prost::Message;
use tendermint_light_client_verifier::types::LightBlock;

/// Type URL of a Tendermint client header.
pub const TM_HEADER_TYPE_URL: &str = "/ibc.lightclients.tendermint.v1.Header";
/// Type URL of `MsgUpdateClient`.
pub const UPDATE_CLIENT_TYPE_URL: &str = "/ibc.core.client.v1.MsgUpdateClient";

/// The revision encoded in a chain id's `-N` suffix (ICS-02), 0 without one.
fn revision_of(chain_id: &str) -> u64 {
    relayd_messages::ChainId::new(chain_id).map_or(0, |id| id.revision_number())
}

/// One `MsgUpdateClient` for `client_id`, moving it from `trusted` (a height the client already has) to `target`.
/// The client checks `target` against the validators that `trusted` named as next, exactly as relayd's light
/// client did before calling this.
pub fn update_client_msg(
    client_id: &str,
    trusted: &LightBlock,
    target: &LightBlock,
    signer: &str,
) -> Any {
    let revision = revision_of(target.signed_header.header.chain_id.as_str());
    let header = Header {
        signed_header: Some(target.signed_header.clone().into()),
        validator_set: Some(target.validators.clone().into()),
        trusted_height: Some(Height {
            revision_number: revision,
            revision_height: trusted.height().value(),
        }),
        trusted_validators: Some(trusted.next_validators.clone().into()),
    };
    let msg = MsgUpdateClient {
        client_id: client_id.to_owned(),
        client_message: Some(Any {
            type_url: TM_HEADER_TYPE_URL.to_owned(),
            value: header.encode_to_vec(),
        }),
        signer: signer.to_owned(),
    };
    Any {
        type_url: UPDATE_CLIENT_TYPE_URL.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// The updates that carry a client from `trusted` through each of `headers` (as `headers_to` returns them).
pub fn update_client_msgs(
    client_id: &str,
    trusted: &LightBlock,
    headers: &[LightBlock],
    signer: &str,
) -> Vec<Any> {
    let mut from = trusted;
    headers
        .iter()
        .map(|target| {
            let msg = update_client_msg(client_id, from, target, signer);
            from = target;
            msg
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::revision_of;

    #[test]
    fn revisions_follow_the_chain_id_suffix() {
        assert_eq!(revision_of("ibc-1"), 1);
        assert_eq!(revision_of("cosmoshub-4"), 4);
        assert_eq!(revision_of("chain_A"), 0);
        assert_eq!(revision_of("test-01"), 0);
    }
}
