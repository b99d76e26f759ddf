//! Why a Cosmos transaction failed, classified by the SDK's codes so that callers know what to retry and what
//! already happened.

use std::time::Duration;

use crate::failure::{self, Refusal};

/// Why a transaction failed, as relayd acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The account's sequence moved on (another signer with the same key, or a lost confirmation).
    #[error("{chain}: account sequence mismatch, the chain expects {expected:?}")]
    Sequence {
        /// The chain.
        chain: String,
        /// The sequence the chain expects, when it said so.
        expected: Option<u64>,
    },
    /// The gas limit was too low.
    #[error("{chain}: out of gas: {log}")]
    OutOfGas {
        /// The chain.
        chain: String,
        /// The node's message.
        log: String,
    },
    /// The fee was below the node's minimum.
    #[error("{chain}: insufficient fee: {log}")]
    InsufficientFee {
        /// The chain.
        chain: String,
        /// The fee the node asked for, when it said so (in the fee denomination).
        required: Option<u128>,
        /// The node's message.
        log: String,
    },
    /// Another relayer delivered the same packets first; the work is done.
    #[error("{chain}: already relayed: {log}")]
    AlreadyRelayed {
        /// The chain.
        chain: String,
        /// The node's message.
        log: String,
    },
    /// The chain refused the transaction for a reason retrying will not fix.
    #[error("{chain}: rejected with {codespace} code {code}: {log}")]
    Rejected {
        /// The chain.
        chain: String,
        /// ABCI code.
        code: u32,
        /// ABCI codespace.
        codespace: String,
        /// The node's message.
        log: String,
        /// Why, when relayd acts on the reason.
        refusal: Option<Refusal>,
    },
    /// The node could not be reached, or answered garbage.
    #[error("{chain}: {reason}")]
    Rpc {
        /// The chain.
        chain: String,
        /// What failed.
        reason: String,
    },
    /// Broadcast succeeded but the transaction was not seen in a block in time.
    #[error("{chain}: tx {hash} not included within {waited:?}")]
    Unconfirmed {
        /// The chain.
        chain: String,
        /// The transaction hash.
        hash: String,
        /// How long relayd waited.
        waited: Duration,
    },
}

impl TxError {
    /// Whether sending again (after adjusting sequence, gas or fee) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Sequence { .. }
                | Self::OutOfGas { .. }
                | Self::InsufficientFee { .. }
                | Self::Rpc { .. }
                | Self::Unconfirmed { .. }
        )
    }
}

/// Classifies a failed CheckTx / DeliverTx by its codespace and code (`failure::classify`, the one table).
pub fn classify(chain: &str, code: u32, codespace: &str, log: &str) -> TxError {
    let chain = chain.to_owned();
    let refusal = failure::classify(codespace, code);
    match refusal {
        Some(Refusal::SequenceMismatch) => TxError::Sequence {
            chain,
            expected: number_after(log, "expected "),
        },
        Some(Refusal::OutOfGas) => TxError::OutOfGas {
            chain,
            log: log.to_owned(),
        },
        Some(Refusal::InsufficientFee) => TxError::InsufficientFee {
            chain,
            required: number_after(log, "required: "),
            log: log.to_owned(),
        },
        // Someone else did the work (ibc-go's redundant-relay and "already" codes).
        Some(Refusal::AlreadyRelayed) => TxError::AlreadyRelayed {
            chain,
            log: log.to_owned(),
        },
        _ => TxError::Rejected {
            chain,
            code,
            codespace: codespace.to_owned(),
            log: log.to_owned(),
            refusal,
        },
    }
}

/// The integer right after `marker` in `text`, e.g. the `7` in "expected 7, got 5".
fn number_after<T: std::str::FromStr>(text: &str, marker: &str) -> Option<T> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_failures_are_classified() {
        let seq = classify(
            "c",
            32,
            "sdk",
            "account sequence mismatch, expected 7, got 5: incorrect account sequence",
        );
        assert_eq!(
            seq,
            TxError::Sequence {
                chain: "c".into(),
                expected: Some(7)
            }
        );
        assert!(seq.is_retryable());
        let fee = classify(
            "c",
            13,
            "sdk",
            "insufficient fees; got: 10stake required: 200stake: insufficient fee",
        );
        assert!(matches!(
            fee,
            TxError::InsufficientFee {
                required: Some(200),
                ..
            }
        ));
        assert!(matches!(
            classify("c", 11, "sdk", "out of gas in location: x"),
            TxError::OutOfGas { .. }
        ));
        let dup = classify("c", 22, "channel", "packet messages are redundant");
        assert!(matches!(dup, TxError::AlreadyRelayed { .. }) && !dup.is_retryable());
        let other = classify("c", 4, "channel", "invalid proof");
        assert!(matches!(other, TxError::Rejected { code: 4, .. }) && !other.is_retryable());
        let timed_out = classify("c", 40, "channel", "packet timeout elapsed");
        assert!(matches!(
            timed_out,
            TxError::Rejected {
                refusal: Some(Refusal::TimedOut),
                ..
            }
        ));
        // Code 32 from another codespace is not the SDK's sequence error.
        assert!(matches!(
            classify("c", 32, "wasm", "x"),
            TxError::Rejected { .. }
        ));
    }
}
