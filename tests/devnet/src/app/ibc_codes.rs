//! The ABCI codespace and code a refused IBC message is answered with: ibc-go's, for the ibc-rs error kind the
//! handler returned. ibc-go registers its errors per module (codespaces `client`, `connection`, `channel`,
//! `port`), and relayers act on those codes (a receive refused as timed out, a redundant relay), so the devnet
//! answers with the code an ibc-go chain gives for the same refusal rather than one code for every IBC error.
//!
//! Sources: ibc-go's `modules/core/02-client/types/errors.go`, `03-connection/types/errors.go`,
//! `04-channel/types/errors.go` and `05-port/types/errors.go`, and `04-channel/keeper/packet.go` / `timeout.go`
//! for which of them each handler returns (v8.1 and later: a receive past its timeout is `ErrTimeoutElapsed`,
//! a timeout before it `ErrTimeoutNotReached`).

use ibc::core::channel::types::error::ChannelError;
use ibc::core::channel::types::msgs::PacketMsg;
use ibc::core::client::types::error::ClientError;
use ibc::core::client::types::Status;
use ibc::core::connection::types::error::ConnectionError;
use ibc::core::handler::types::error::HandlerError;
use ibc::core::handler::types::msgs::MsgEnvelope;
use ibc::core::router::types::error::RouterError;

/// ibc-go 02-client's codespace.
pub const CLIENT: &str = "client";
/// ibc-go 03-connection's codespace.
pub const CONNECTION: &str = "connection";
/// ibc-go 04-channel's codespace.
pub const CHANNEL: &str = "channel";
/// ibc-go 05-port's codespace.
pub const PORT: &str = "port";

/// The codespace and code ibc-go answers `msg` refused with `e`.
pub fn of(e: &HandlerError, msg: &MsgEnvelope) -> (&'static str, u32) {
    match e {
        HandlerError::Client(e) => client(e),
        HandlerError::Connection(e) => connection(e),
        HandlerError::Channel(e) => channel(e, msg),
        // ErrInvalidRoute: no module is bound to the port.
        HandlerError::Router(RouterError::MissingModule) => (PORT, 5),
        // ErrPortNotFound.
        HandlerError::Router(RouterError::Host(_)) => (PORT, 3),
    }
}

fn client(e: &ClientError) -> (&'static str, u32) {
    let code = match e {
        ClientError::DuplicateClientState(_) => 2, // ErrClientExists
        ClientError::InvalidStatus(Status::Frozen) => 5, // ErrClientFrozen
        ClientError::InvalidStatus(_) => 29,       // ErrClientNotActive
        ClientError::InvalidClientStateType(_) => 10, // ErrInvalidClientType
        ClientError::InvalidHeaderType(_)
        | ClientError::InvalidUpdateClientMessage
        | ClientError::FailedToVerifyHeader { .. } => 12, // ErrInvalidHeader
        ClientError::FailedToHandleMisbehaviour { .. } => 13, // ErrInvalidMisbehaviour
        ClientError::MissingLocalConsensusState(_) => 22, // ErrSelfConsensusStateNotFound
        ClientError::Upgrade(_) => 25,             // ErrInvalidUpgradeClient
        ClientError::InvalidHeight | ClientError::InsufficientProofHeight { .. } => 26, // ErrInvalidHeight
        ClientError::InvalidClientRecoveryHeights { .. }
        | ClientError::FailedToVerifyClientRecoveryStates => 27, // ErrInvalidSubstitute
        ClientError::FailedICS23Verification(_) => 30, // ErrFailedMembershipVerification
        _ => 3,                                        // ErrInvalidClient
    };
    (CLIENT, code)
}

fn connection(e: &ConnectionError) -> (&'static str, u32) {
    let code = match e {
        ConnectionError::Client(e) => return client(e),
        ConnectionError::InvalidState { .. }
        | ConnectionError::MismatchedConnectionStates { .. } => 6, // ErrInvalidConnectionState
        ConnectionError::InvalidCounterparty | ConnectionError::MissingCounterparty => 7, // ErrInvalidCounterparty
        ConnectionError::MissingFeatures => 9, // ErrInvalidVersion
        ConnectionError::MissingCommonVersion => 10, // ErrVersionNegotiationFailed
        // ErrInvalidHeight: the counterparty's claimed consensus height is ahead of this chain.
        ConnectionError::InsufficientConsensusHeight { .. } => return (CLIENT, 26),
        _ => 8, // ErrInvalidConnection
    };
    (CONNECTION, code)
}

fn channel(e: &ChannelError, msg: &MsgEnvelope) -> (&'static str, u32) {
    let timeout = matches!(
        msg,
        MsgEnvelope::Packet(PacketMsg::Timeout(_) | PacketMsg::TimeoutOnClose(_))
    );
    let code = match e {
        ChannelError::Client(e) => return client(e),
        ChannelError::Connection(e) => return connection(e),
        ChannelError::InvalidState { .. } => 5, // ErrInvalidChannelState (closed or not yet open alike)
        ChannelError::MismatchedCounterparty { .. } | ChannelError::MissingCounterparty => 7, // ErrInvalidCounterparty
        ChannelError::MismatchedPacketCommitment { .. } => 13, // ErrInvalidPacket
        ChannelError::InvalidConnectionHopsLength { .. } => 15, // ErrTooManyConnectionHops
        ChannelError::MissingAcknowledgmentStatus => 16,       // ErrInvalidAcknowledgement
        ChannelError::DuplicateAcknowledgment(_) => 17,        // ErrAcknowledgementExists
        // A timeout for a packet the ordered destination already took (next receive sequence past it).
        ChannelError::MismatchedPacketSequence { .. } if timeout => 19, // ErrPacketReceived
        ChannelError::MismatchedPacketSequence { .. } => 21, // ErrPacketSequenceOutOfOrder
        ChannelError::UnsupportedVersion { .. } => 24,       // ErrInvalidChannelVersion
        ChannelError::MissingTimeout => 26,                  // ErrInvalidTimeout
        ChannelError::InsufficientPacketTimeout { .. } => 39, // ErrTimeoutNotReached
        ChannelError::InsufficientPacketHeight { .. } | ChannelError::ExpiredPacketTimestamp => 40, // ErrTimeoutElapsed
        _ => 4, // ErrInvalidChannel
    };
    (CHANNEL, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibc::core::channel::types::timeout::TimeoutHeight;
    use ibc::core::client::types::Height;
    use ibc::core::host::types::identifiers::Sequence;

    fn any_msg() -> MsgEnvelope {
        MsgEnvelope::Client(ibc::core::client::types::msgs::ClientMsg::UpdateClient(
            ibc::core::client::types::msgs::MsgUpdateClient {
                client_id: "07-tendermint-0".parse().unwrap(),
                client_message: ibc_proto::google::protobuf::Any {
                    type_url: String::new(),
                    value: Vec::new(),
                },
                signer: String::new().into(),
            },
        ))
    }

    #[test]
    fn packet_refusals_get_ibc_go_channel_codes() {
        let h = Height::new(1, 5).unwrap();
        let m = any_msg();
        assert_eq!(
            of(
                &HandlerError::Channel(ChannelError::InsufficientPacketHeight {
                    chain_height: h,
                    timeout_height: TimeoutHeight::At(h),
                }),
                &m
            ),
            ("channel", 40)
        );
        assert_eq!(
            of(
                &HandlerError::Channel(ChannelError::ExpiredPacketTimestamp),
                &m
            ),
            ("channel", 40)
        );
        assert_eq!(
            of(
                &HandlerError::Channel(ChannelError::InvalidState {
                    expected: "OPEN".into(),
                    actual: "CLOSED".into()
                }),
                &m
            ),
            ("channel", 5)
        );
        let seq = ChannelError::MismatchedPacketSequence {
            expected: Sequence::from(3),
            actual: Sequence::from(4),
        };
        assert_eq!(of(&HandlerError::Channel(seq), &m), ("channel", 21));
        assert_eq!(
            of(
                &HandlerError::Channel(ChannelError::DuplicateAcknowledgment(Sequence::from(1))),
                &m
            ),
            ("channel", 17)
        );
        assert_eq!(
            of(
                &HandlerError::Client(ClientError::InvalidStatus(Status::Expired)),
                &m
            ),
            ("client", 29)
        );
        assert_eq!(
            of(&HandlerError::Router(RouterError::MissingModule), &m),
            ("port", 5)
        );
    }
}
