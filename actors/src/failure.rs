//! Why a chain refused a transaction, decided once where the refusal arises (the chain backends) so that the
//! builders match on a type instead of the chain's text.
//!
//! Cosmos SDK refusals carry codes (`sdk` codespace: 32 sequence mismatch, 11 out of gas, 13 insufficient fee);
//! IBC refusals from ibc-rs hosts carry one code for every IBC error (and ibc-go's channel codes differ between
//! versions), so those are told apart by the host's message, here and nowhere else.

pub use relayd_messages::Refusal;

/// The Cosmos SDK's own codespace.
const SDK: &str = "sdk";

/// The refusal a chain reported with `codespace` / `code` and `log`, when relayd acts on it differently from
/// any other refusal.
pub fn classify(codespace: &str, code: u32, log: &str) -> Option<Refusal> {
    if codespace == SDK {
        match code {
            32 => return Some(Refusal::SequenceMismatch),
            11 => return Some(Refusal::OutOfGas),
            13 => return Some(Refusal::InsufficientFee),
            _ => {}
        }
    }
    from_message(log)
}

/// The IBC refusal a host's message names (ibc-rs 0.57 and ibc-go wordings).
pub fn from_message(message: &str) -> Option<Refusal> {
    let m = message.to_ascii_lowercase();
    if m.contains("insufficient packet timeout height")
        || m.contains("expired packet timestamp")
        || m.contains(": packet timeout")
    {
        return Some(Refusal::TimedOut);
    }
    if m.contains("actual `closed`")
        || m.contains("state_closed")
        || m.contains("channel is closed")
    {
        return Some(Refusal::ChannelClosed);
    }
    if m.contains("mismatched packet sequence") || m.contains("next receive sequence") {
        return Some(Refusal::OutOfOrder);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_refusals_are_told_by_their_codes() {
        assert_eq!(
            classify("sdk", 32, "account sequence mismatch"),
            Some(Refusal::SequenceMismatch)
        );
        assert_eq!(
            classify("sdk", 11, "out of gas in location: ReadFlat"),
            Some(Refusal::OutOfGas)
        );
        assert_eq!(
            classify("sdk", 13, "insufficient fees"),
            Some(Refusal::InsufficientFee)
        );
        assert_eq!(classify("sdk", 5, "insufficient funds"), None);
    }

    #[test]
    fn closed_channels_and_out_of_order_receives_are_recognised() {
        assert_eq!(
            classify("ibc", 4, "failed to execute message; message index: 1: ICS04 Channel error: invalid channel state: expected `OPEN`, actual `CLOSED`"),
            Some(Refusal::ChannelClosed)
        );
        assert_eq!(
            from_message(
                "ICS04 Channel error: mismatched packet sequence: expected `3`, actual `4`"
            ),
            Some(Refusal::OutOfOrder)
        );
        assert_eq!(
            from_message("invalid channel state: expected `OPEN`, actual `INIT`"),
            None
        );
        assert_eq!(
            from_message("packet sequence 4 ≠ next receive sequence 3"),
            Some(Refusal::OutOfOrder)
        );
    }

    #[test]
    fn receives_refused_as_timed_out_are_recognised() {
        assert_eq!(
            classify("ibc", 4, "failed to execute message; message index: 1: ICS04 Channel error: insufficient packet timeout height: should have `1-22` > `1-26`"),
            Some(Refusal::TimedOut)
        );
        assert_eq!(
            from_message(
                "ICS04 Channel error: expired packet timestamp: should be greater than `x`"
            ),
            Some(Refusal::TimedOut)
        );
        assert_eq!(
            from_message("ibc-go: packet timeout"),
            Some(Refusal::TimedOut)
        );
        assert_eq!(from_message("out of gas in location: ReadFlat"), None);
    }
}
