//! Why a chain refused a transaction, decided once where the refusal arises (the chain backends) so that the
//! builders match on a type instead of the chain's text.
//!
//! Cosmos chains answer every refusal with an ABCI codespace and code, registered per module: the SDK's own
//! (`sdk`) and ibc-go's per IBC module (`channel`, `client`, ...). [`classify`] reads those and nothing else.
//! NEAR's IBC contract reports a refused message in its logs only, with no code: [`from_near_contract_log`]
//! reads the one structured thing it gives, the ibc-rs error it logged, and is the only place that reads text.

pub use relayd_messages::Refusal;

/// The Cosmos SDK's own codespace.
const SDK: &str = "sdk";
/// ibc-go's 04-channel codespace.
const CHANNEL: &str = "channel";

/// The refusal a Cosmos chain reported with `codespace` / `code`, when relayd acts on it differently from any
/// other refusal. The table (codes as registered in cosmos-sdk `types/errors/errors.go` and ibc-go
/// `modules/core/04-channel/types/errors.go`):
///
/// | codespace | code | registered as                 | refusal            |
/// |-----------|------|-------------------------------|--------------------|
/// | `sdk`     | 11   | `ErrOutOfGas`                 | `OutOfGas`         |
/// | `sdk`     | 13   | `ErrInsufficientFee`          | `InsufficientFee`  |
/// | `sdk`     | 19   | `ErrTxInMempoolCache`         | `TxInMempool`      |
/// | `sdk`     | 32   | `ErrWrongSequence`            | `SequenceMismatch` |
/// | `channel` | 5    | `ErrInvalidChannelState`      | `ChannelNotOpen`   |
/// | `channel` | 14   | `ErrPacketTimeout`            | `TimedOut`         |
/// | `channel` | 40   | `ErrTimeoutElapsed`           | `TimedOut`         |
/// | `channel` | 21   | `ErrPacketSequenceOutOfOrder` | `OutOfOrder`       |
/// | `channel` | 17   | `ErrAcknowledgementExists`    | `AlreadyRelayed`   |
/// | `channel` | 19   | `ErrPacketReceived`           | `AlreadyRelayed`   |
/// | `channel` | 20   | `ErrPacketCommitmentNotFound` | `AlreadyRelayed`   |
/// | `channel` | 22   | `ErrRedundantTx`              | `AlreadyRelayed`   |
/// | `channel` | 23   | `ErrNoOpMsg`                  | `AlreadyRelayed`   |
///
/// ibc-go up to v8.0 refuses a receive past its timeout with `ErrPacketTimeout` (14), later versions with
/// `ErrTimeoutElapsed` (40); both are read. (v7 also answers a timeout sent too early with 14: the builders
/// read `TimedOut` on receives only.) A closed channel and one whose handshake is unfinished share code 5;
/// the timeout that follows proves the channel end's state and decides between a timeout and a
/// timeout-on-close.
pub fn classify(codespace: &str, code: u32) -> Option<Refusal> {
    // A node that leaves the codespace empty reports the SDK's own codes.
    match (codespace, code) {
        (SDK | "", 11) => Some(Refusal::OutOfGas),
        (SDK | "", 13) => Some(Refusal::InsufficientFee),
        (SDK | "", 19) => Some(Refusal::TxInMempool),
        (SDK | "", 32) => Some(Refusal::SequenceMismatch),
        (CHANNEL, 5) => Some(Refusal::ChannelNotOpen),
        (CHANNEL, 14 | 40) => Some(Refusal::TimedOut),
        (CHANNEL, 21) => Some(Refusal::OutOfOrder),
        (CHANNEL, 17 | 19 | 20 | 22 | 23) => Some(Refusal::AlreadyRelayed),
        _ => None,
    }
}

/// The refusal one log line of NEAR's IBC contract names. near-ibc runs ibc-rs and logs a refused message's
/// error as ibc-rs displays it; no code exists on that chain, so the ibc-rs error kinds are recognised by
/// their display (ibc-rs 0.57's `ChannelError` variants `InsufficientPacketHeight`, `ExpiredPacketTimestamp`,
/// `InvalidState`, `MismatchedPacketSequence`, `DuplicateAcknowledgment`), here and nowhere else.
pub fn from_near_contract_log(line: &str) -> Option<Refusal> {
    const KINDS: [(&str, Refusal); 5] = [
        ("insufficient packet timeout height", Refusal::TimedOut),
        ("expired packet timestamp", Refusal::TimedOut),
        ("invalid channel state", Refusal::ChannelNotOpen),
        ("mismatched packet sequence", Refusal::OutOfOrder),
        (
            "packet acknowledgment for sequence",
            Refusal::AlreadyRelayed,
        ),
    ];
    let line = line.to_ascii_lowercase();
    if !line.contains("ics04 channel error") {
        return None;
    }
    KINDS
        .iter()
        .find(|(display, _)| line.contains(display))
        .map(|(_, refusal)| *refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classification_table() {
        let table = [
            ("sdk", 11, Some(Refusal::OutOfGas)),
            ("sdk", 13, Some(Refusal::InsufficientFee)),
            ("sdk", 19, Some(Refusal::TxInMempool)),
            ("sdk", 32, Some(Refusal::SequenceMismatch)),
            ("", 32, Some(Refusal::SequenceMismatch)),
            ("sdk", 5, None),
            ("channel", 5, Some(Refusal::ChannelNotOpen)),
            ("channel", 14, Some(Refusal::TimedOut)),
            ("channel", 40, Some(Refusal::TimedOut)),
            ("channel", 21, Some(Refusal::OutOfOrder)),
            ("channel", 17, Some(Refusal::AlreadyRelayed)),
            ("channel", 19, Some(Refusal::AlreadyRelayed)),
            ("channel", 20, Some(Refusal::AlreadyRelayed)),
            ("channel", 22, Some(Refusal::AlreadyRelayed)),
            ("channel", 23, Some(Refusal::AlreadyRelayed)),
            ("channel", 4, None),
            ("channel", 39, None),
            ("channel", 32, None),
            ("client", 29, None),
            // The same numbers in other codespaces are other errors.
            ("wasm", 32, None),
            ("connection", 5, None),
            ("ibc", 4, None),
            ("transfer", 21, None),
        ];
        for (codespace, code, want) in table {
            assert_eq!(classify(codespace, code), want, "{codespace} {code}");
        }
    }

    #[test]
    fn near_contract_logs_name_ibc_rs_error_kinds() {
        let log = |e: &str| {
            format!("Error occurred in processing message 0 (/ibc.core.channel.v1.MsgRecvPacket): ICS04 Channel error: {e}")
        };
        assert_eq!(
            from_near_contract_log(&log(
                "insufficient packet timeout height: should have `1-22` > `1-26`"
            )),
            Some(Refusal::TimedOut)
        );
        assert_eq!(
            from_near_contract_log(&log(
                "expired packet timestamp: should be greater than chain block timestamp"
            )),
            Some(Refusal::TimedOut)
        );
        assert_eq!(
            from_near_contract_log(&log(
                "invalid channel state: expected `OPEN`, actual `CLOSED`"
            )),
            Some(Refusal::ChannelNotOpen)
        );
        assert_eq!(
            from_near_contract_log(&log("mismatched packet sequence: expected `3`, actual `4`")),
            Some(Refusal::OutOfOrder)
        );
        assert_eq!(
            from_near_contract_log(&log(
                "packet acknowledgment for sequence `4` already exists"
            )),
            Some(Refusal::AlreadyRelayed)
        );
        assert_eq!(
            from_near_contract_log(&log("host error: channel-0 already exists")),
            None
        );
        assert_eq!(
            from_near_contract_log("ICS02 Client error: client not found"),
            None
        );
        assert_eq!(from_near_contract_log("ERR_DELIVER_MESSAGE"), None);
    }
}
