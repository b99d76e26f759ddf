//! The life of one packet from its source chain to its destination and back (seed 000's lifecycle):
//! Detected → ProofGenerated → Submitted → Confirmed → Acknowledged, or TimedOut / Failed.
//!
//! ADR-002's proof-height rule (`crate::proof_height`) drives it: the commitment is proven for the height the rule
//! picks (h + 1 for a query at h on Cosmos, a verified head for a query at its parent on NEAR), the destination's
//! client of the source must hold a consensus state there, and the updates plus the datagram go out in one
//! transaction. If another relayer was first, the event is consumed, not retried.

use relayd_messages::{Height, Packet, PacketState as RecordState};

/// Where a packet is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Seen on the source; its commitment proof is being fetched.
    Detected,
    /// Proven at a height; the destination client is being brought to `proof_height`.
    ProofGenerated,
    /// `MsgRecvPacket` (with client updates) sent to the destination.
    Submitted,
    /// Received on the destination; waiting for its acknowledgement to reach the source.
    Confirmed,
    /// The source processed the acknowledgement. Final.
    Acknowledged,
    /// The source processed a timeout. Final.
    TimedOut,
    /// Gave up, with the reason. Final; the packet goes to the dead-letter queue.
    Failed(String),
}

impl Phase {
    /// The phase as lifecycle records and the admin API name it.
    pub fn state(&self) -> RecordState {
        match self {
            Self::Detected => RecordState::Detected,
            Self::ProofGenerated => RecordState::ProofGenerated,
            Self::Submitted => RecordState::Submitted,
            Self::Confirmed => RecordState::Confirmed,
            Self::Acknowledged => RecordState::Acknowledged,
            Self::TimedOut => RecordState::TimedOut,
            Self::Failed(_) => RecordState::Failed,
        }
    }

    /// The phase's name in lifecycle records and the admin API.
    pub fn name(&self) -> &'static str {
        self.state().as_str()
    }

    /// Whether nothing more will happen to the packet.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Acknowledged | Self::TimedOut | Self::Failed(_))
    }
}

/// What the builder learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The destination's current height and time (ns), against which timeouts are judged.
    DestinationTip {
        /// Latest destination height.
        height: Height,
        /// Latest destination block time, ns since the epoch.
        time_ns: u64,
    },
    /// The commitment was read for `proof_height` (the height the proof-height rule chose), present with a
    /// verified proof, or gone (the packet was already acknowledged or timed out by someone).
    CommitmentProven {
        /// The height the datagram names (`proof_height::Plan::proof_height`).
        proof_height: u64,
        /// Whether the commitment was there.
        present: bool,
    },
    /// The destination client of the source now holds a consensus state at `height` (updates prepared).
    ClientUpdated {
        /// The consensus height available.
        height: u64,
    },
    /// The receive transaction was included and succeeded.
    RecvConfirmed,
    /// The receive transaction failed.
    RecvFailed {
        /// Another relayer delivered the packet first.
        already_relayed: bool,
        /// The destination refused it as timed out (its height or time passed the packet's timeout before the
        /// relayer learnt of it): the packet is to be timed out on the source instead.
        timed_out: bool,
        /// Sending again may succeed.
        retryable: bool,
        /// Whether the transaction reached the chain at all: a submitter that stopped (restarting, shutting
        /// down) before sending does not use up one of the packet's attempts.
        sent: bool,
        /// Why.
        reason: String,
    },
    /// The destination wrote the acknowledgement.
    AckWritten,
    /// The source processed the acknowledgement (whoever relayed it).
    AckProcessed,
    /// The source processed a timeout for the packet (whoever relayed it).
    TimeoutProcessed,
    /// The proof in hand can no longer be used (the client moved past its height); prove again.
    ProofStale,
    /// The destination's channel end is closed: the packet can never be received there, and is timed out on
    /// the source with a proof of the closure (ICS-04 timeout-on-close).
    DestinationClosed,
    /// Work on the packet failed for good (retries exhausted, a client unusable).
    GiveUp {
        /// Why.
        reason: String,
    },
}

/// What the builder asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Prove the commitment at the height the proof-height rule picks, checked before use.
    QueryCommitment,
    /// Make sure the destination's client of the source has a consensus state at `height`.
    UpdateClientTo {
        /// The proof height the rule chose.
        height: u64,
    },
    /// Send `MsgRecvPacket` with the proof at `proof_height` (after the prepared updates, in one tx).
    SubmitRecv {
        /// The proof height.
        proof_height: u64,
    },
    /// Relay the written acknowledgement back to the source (reading it from the destination's transaction
    /// index when its event was not heard).
    RelayAck,
    /// Prove the packet was not received and send `MsgTimeout` to the source (`MsgTimeoutOnClose` when the
    /// destination's channel end is closed).
    SubmitTimeout,
    /// The packet reached a final phase.
    Finished(Phase),
}

/// One packet's builder state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketState {
    /// The packet.
    pub packet: Packet,
    /// Where it is.
    pub phase: Phase,
    /// The proof height in use, once proven.
    pub proof_height: Option<u64>,
    /// Receive attempts so far.
    pub attempts: u32,
    /// Attempts allowed before the packet fails.
    pub max_attempts: u32,
    /// Whether a timeout was already requested (so it is asked for once).
    pub timeout_requested: bool,
}

impl PacketState {
    /// A packet just seen on the source.
    pub fn detected(packet: Packet, max_attempts: u32) -> Self {
        Self {
            packet,
            phase: Phase::Detected,
            proof_height: None,
            attempts: 0,
            max_attempts: max_attempts.max(1),
            timeout_requested: false,
        }
    }

    fn expired_at(&self, height: Height, time_ns: u64) -> bool {
        expired(&self.packet, height, time_ns)
    }
}

/// ICS-04's timeout rule: the destination at `height` and block time `time_ns` can no longer receive `packet`.
pub fn expired(packet: &Packet, height: Height, time_ns: u64) -> bool {
    let by_height = packet.timeout_height.is_some_and(|t| height >= t);
    let by_time = packet.timeout_timestamp_ns != 0 && time_ns >= packet.timeout_timestamp_ns;
    by_height || by_time
}

fn finish(mut state: PacketState, phase: Phase) -> (PacketState, Vec<Effect>) {
    state.phase = phase.clone();
    (state, vec![Effect::Finished(phase)])
}

/// Advances one packet by one input.
pub fn step(mut state: PacketState, input: Input) -> (PacketState, Vec<Effect>) {
    if state.phase.is_final() {
        // Replays and late events change nothing once the packet is done.
        return (state, Vec::new());
    }
    match input {
        // Outcomes on the source end the packet whoever caused them.
        Input::AckProcessed => finish(state, Phase::Acknowledged),
        Input::TimeoutProcessed => finish(state, Phase::TimedOut),
        Input::GiveUp { reason } => finish(state, Phase::Failed(reason)),
        Input::ProofStale => {
            if state.phase != Phase::ProofGenerated {
                return (state, Vec::new());
            }
            state.phase = Phase::Detected;
            state.proof_height = None;
            (state, vec![Effect::QueryCommitment])
        }
        Input::DestinationClosed => {
            // A receive in flight fails on the closed channel; the timeout does not wait for that failure.
            let receivable = matches!(
                state.phase,
                Phase::Detected | Phase::ProofGenerated | Phase::Submitted
            );
            if !receivable || state.timeout_requested {
                return (state, Vec::new());
            }
            state.phase = Phase::Detected;
            state.proof_height = None;
            state.timeout_requested = true;
            (state, vec![Effect::SubmitTimeout])
        }
        Input::DestinationTip { height, time_ns } => {
            let receivable = matches!(state.phase, Phase::Detected | Phase::ProofGenerated);
            if receivable && state.expired_at(height, time_ns) && !state.timeout_requested {
                state.timeout_requested = true;
                return (state, vec![Effect::SubmitTimeout]);
            }
            if state.phase == Phase::Detected
                && !state.timeout_requested
                && state.proof_height.is_none()
            {
                return (state, vec![Effect::QueryCommitment]);
            }
            (state, Vec::new())
        }
        Input::CommitmentProven {
            proof_height,
            present,
        } => {
            if state.phase != Phase::Detected {
                return (state, Vec::new());
            }
            if !present {
                // Gone from the source: acknowledged or timed out already; nothing left to relay.
                return finish(state, Phase::Acknowledged);
            }
            let target = proof_height;
            state.phase = Phase::ProofGenerated;
            state.proof_height = Some(target);
            (state, vec![Effect::UpdateClientTo { height: target }])
        }
        Input::ClientUpdated { height } => match (state.phase.clone(), state.proof_height) {
            (Phase::ProofGenerated, Some(target)) if height >= target => {
                state.phase = Phase::Submitted;
                state.attempts += 1;
                (
                    state,
                    vec![Effect::SubmitRecv {
                        proof_height: target,
                    }],
                )
            }
            _ => (state, Vec::new()),
        },
        Input::RecvConfirmed => {
            if state.phase == Phase::Submitted {
                state.phase = Phase::Confirmed;
            }
            (state, Vec::new())
        }
        Input::RecvFailed {
            already_relayed,
            timed_out,
            retryable,
            sent,
            reason,
        } => {
            if state.phase != Phase::Submitted {
                return (state, Vec::new());
            }
            if !sent {
                state.attempts = state.attempts.saturating_sub(1);
            }
            if timed_out && !already_relayed {
                state.phase = Phase::Detected;
                state.proof_height = None;
                if state.timeout_requested {
                    return (state, Vec::new());
                }
                state.timeout_requested = true;
                return (state, vec![Effect::SubmitTimeout]);
            }
            if already_relayed {
                // ADR-002: another relayer was first; consume the event. The ack it caused may have gone by
                // before this builder could hear of it (a restart, a lost reply), so it is sought now.
                state.phase = Phase::Confirmed;
                return (state, vec![Effect::RelayAck]);
            }
            if !retryable || state.attempts >= state.max_attempts {
                let why = format!("after {} attempt(s): {reason}", state.attempts);
                return finish(state, Phase::Failed(why));
            }
            // Query again at a newer height and go through the proof-height rule once more.
            state.phase = Phase::Detected;
            state.proof_height = None;
            (state, vec![Effect::QueryCommitment])
        }
        // The destination wrote the ack: whoever delivered the packet (us, or another relayer while we were
        // still proving), the ack is what remains to relay.
        Input::AckWritten => {
            state.phase = Phase::Confirmed;
            (state, vec![Effect::RelayAck])
        }
    }
}

#[cfg(test)]
mod tests;
