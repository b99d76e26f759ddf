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
mod tests {
    use super::*;
    use relayd_messages::{ChannelId, PortId, Sequence};

    fn packet(timeout_height: Option<Height>, timeout_ns: u64) -> Packet {
        Packet {
            sequence: Sequence(7),
            source_port: PortId::new("transfer").unwrap(),
            source_channel: ChannelId::new("channel-0").unwrap(),
            destination_port: PortId::new("transfer").unwrap(),
            destination_channel: ChannelId::new("channel-1").unwrap(),
            data: b"{}".to_vec(),
            timeout_height,
            timeout_timestamp_ns: timeout_ns,
        }
    }

    fn run(mut s: PacketState, inputs: Vec<Input>) -> (PacketState, Vec<Effect>) {
        let mut all = Vec::new();
        for input in inputs {
            let (next, effects) = step(s, input);
            s = next;
            all.extend(effects);
        }
        (s, all)
    }

    fn tip(h: u64) -> Input {
        Input::DestinationTip {
            height: Height::new(1, h),
            time_ns: 1_000,
        }
    }

    #[test]
    fn the_happy_path_follows_the_proof_height_rule() {
        let s = PacketState::detected(packet(Some(Height::new(1, 100)), 0), 3);
        let (s, effects) = run(
            s,
            vec![
                tip(10),
                Input::CommitmentProven {
                    proof_height: 42,
                    present: true,
                },
                Input::ClientUpdated { height: 41 },
                Input::ClientUpdated { height: 42 },
                Input::RecvConfirmed,
                Input::AckWritten,
                Input::AckProcessed,
            ],
        );
        assert_eq!(
            effects,
            vec![
                Effect::QueryCommitment,
                Effect::UpdateClientTo { height: 42 },
                Effect::SubmitRecv { proof_height: 42 },
                Effect::RelayAck,
                Effect::Finished(Phase::Acknowledged),
            ]
        );
        assert_eq!(s.phase, Phase::Acknowledged);
        assert_eq!(s.attempts, 1);
    }

    #[test]
    fn another_relayer_first_is_consumed_not_retried() {
        let s = PacketState::detected(packet(None, 5_000), 3);
        let (s, effects) = run(
            s,
            vec![
                Input::CommitmentProven {
                    proof_height: 10,
                    present: true,
                },
                Input::ClientUpdated { height: 10 },
                Input::RecvFailed {
                    already_relayed: true,
                    timed_out: false,
                    retryable: false,
                    sent: true,
                    reason: "redundant".into(),
                },
            ],
        );
        assert_eq!(s.phase, Phase::Confirmed);
        assert!(!effects.contains(&Effect::QueryCommitment));
        assert_eq!(effects.last(), Some(&Effect::RelayAck));
        let (s, _) = step(s, Input::AckProcessed);
        assert_eq!(s.phase, Phase::Acknowledged);
    }

    #[test]
    fn retryable_failures_requery_until_attempts_run_out() {
        let s = PacketState::detected(packet(None, 5_000), 2);
        let fail = || Input::RecvFailed {
            already_relayed: false,
            timed_out: false,
            retryable: true,
            sent: true,
            reason: "out of gas".into(),
        };
        let (s, effects) = run(
            s,
            vec![
                Input::CommitmentProven {
                    proof_height: 10,
                    present: true,
                },
                Input::ClientUpdated { height: 10 },
                fail(),
                Input::CommitmentProven {
                    proof_height: 13,
                    present: true,
                },
                Input::ClientUpdated { height: 13 },
                fail(),
            ],
        );
        assert!(
            effects.contains(&Effect::SubmitRecv { proof_height: 13 }),
            "second try uses the newer height"
        );
        assert_eq!(
            s.phase,
            Phase::Failed("after 2 attempt(s): out of gas".into())
        );
        assert_eq!(effects.last(), Some(&Effect::Finished(s.phase.clone())));
    }

    #[test]
    fn a_receive_the_submitter_never_sent_uses_up_no_attempt() {
        let mut s = PacketState::detected(packet(None, 5_000), 1);
        for round in 0..5 {
            let (next, _) = run(
                s,
                vec![
                    Input::CommitmentProven {
                        proof_height: 10 + round,
                        present: true,
                    },
                    Input::ClientUpdated { height: 10 + round },
                    Input::RecvFailed {
                        already_relayed: false,
                        timed_out: false,
                        retryable: true,
                        sent: false,
                        reason: "the tx submitter is restarting".into(),
                    },
                ],
            );
            assert_eq!((next.phase.clone(), next.attempts), (Phase::Detected, 0));
            s = next;
        }
    }

    #[test]
    fn expired_packets_time_out_once_and_a_vanished_commitment_ends_the_packet() {
        let s = PacketState::detected(packet(Some(Height::new(1, 50)), 0), 3);
        let (s, effects) = run(s, vec![tip(50), tip(51), Input::TimeoutProcessed]);
        assert_eq!(
            effects,
            vec![Effect::SubmitTimeout, Effect::Finished(Phase::TimedOut)]
        );
        assert_eq!(s.phase, Phase::TimedOut);

        let by_time = PacketState::detected(packet(None, 900), 3);
        let (_, effects) = step(by_time, tip(1));
        assert_eq!(effects, vec![Effect::SubmitTimeout]);

        let gone = PacketState::detected(packet(None, 5_000), 3);
        let (s, effects) = step(
            gone,
            Input::CommitmentProven {
                proof_height: 4,
                present: false,
            },
        );
        assert_eq!(
            (s.phase, effects),
            (
                Phase::Acknowledged,
                vec![Effect::Finished(Phase::Acknowledged)]
            )
        );
    }

    #[test]
    fn a_closed_destination_times_the_packet_out_once_unless_it_was_received() {
        let s = PacketState::detected(packet(None, u64::MAX), 3);
        let (s, effects) = run(
            s,
            vec![
                Input::CommitmentProven {
                    proof_height: 10,
                    present: true,
                },
                Input::DestinationClosed,
                Input::DestinationClosed,
            ],
        );
        assert_eq!(
            effects,
            vec![Effect::UpdateClientTo { height: 10 }, Effect::SubmitTimeout]
        );
        assert_eq!((s.phase.clone(), s.proof_height), (Phase::Detected, None));
        let (s, effects) = step(s, Input::TimeoutProcessed);
        assert_eq!(effects, vec![Effect::Finished(Phase::TimedOut)]);
        assert_eq!(s.phase, Phase::TimedOut);

        // Received before the close: its acknowledgement is what remains.
        let received = PacketState {
            phase: Phase::Confirmed,
            ..PacketState::detected(packet(None, u64::MAX), 3)
        };
        assert_eq!(step(received, Input::DestinationClosed).1, vec![]);
    }

    #[test]
    fn a_receive_refused_as_timed_out_becomes_a_timeout() {
        let s = PacketState {
            phase: Phase::Submitted,
            ..PacketState::detected(packet(Some(Height::new(1, 100)), 0), 3)
        };
        let (s, effects) = step(
            s,
            Input::RecvFailed {
                already_relayed: false,
                timed_out: true,
                retryable: false,
                sent: true,
                reason: "insufficient packet timeout height".into(),
            },
        );
        assert_eq!(effects, vec![Effect::SubmitTimeout]);
        assert!(!s.phase.is_final());
        let (s, _) = step(s, Input::TimeoutProcessed);
        assert_eq!(s.phase, Phase::TimedOut);
    }

    /// Every input sequence: no panic, final phases absorb everything, SubmitRecv only for the proven height.
    #[test]
    fn arbitrary_input_orders_and_replays_keep_the_invariants() {
        let inputs = [
            tip(10),
            tip(200),
            Input::CommitmentProven {
                proof_height: 6,
                present: true,
            },
            Input::CommitmentProven {
                proof_height: 9,
                present: false,
            },
            Input::ClientUpdated { height: 3 },
            Input::ClientUpdated { height: 6 },
            Input::RecvConfirmed,
            Input::RecvFailed {
                already_relayed: false,
                timed_out: false,
                retryable: true,
                sent: true,
                reason: "x".into(),
            },
            Input::RecvFailed {
                already_relayed: true,
                timed_out: false,
                retryable: false,
                sent: true,
                reason: "y".into(),
            },
            Input::RecvFailed {
                already_relayed: false,
                timed_out: true,
                retryable: false,
                sent: true,
                reason: "timed out".into(),
            },
            Input::AckWritten,
            Input::AckProcessed,
            Input::TimeoutProcessed,
            Input::DestinationClosed,
        ];
        // A small deterministic generator: every sequence of length 6 over a rotating window of inputs.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..5_000 {
            let mut s = PacketState::detected(packet(Some(Height::new(1, 100)), 0), 3);
            let (mut finished, mut timeouts) = (0, 0);
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let input = inputs[(seed % inputs.len() as u64) as usize].clone();
                let was_final = s.phase.is_final();
                let before = s.clone();
                let (next, effects) = step(s, input);
                if was_final {
                    assert_eq!(next, before, "final phases absorb every input");
                    assert!(effects.is_empty());
                }
                for e in &effects {
                    if let Effect::SubmitRecv { proof_height } = e {
                        assert_eq!(Some(*proof_height), next.proof_height);
                        assert_eq!(next.phase, Phase::Submitted);
                    }
                    if matches!(e, Effect::Finished(_)) {
                        finished += 1;
                    }
                    if matches!(e, Effect::SubmitTimeout) {
                        timeouts += 1;
                    }
                }
                assert!(next.attempts <= next.max_attempts);
                s = next;
            }
            assert!(finished <= 1, "a packet finishes at most once");
            assert!(timeouts <= 1, "a timeout is asked for at most once");
        }
    }
}
