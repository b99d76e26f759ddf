//! The one proof-height rule (ADR-002): from what relayd's light client verified of the proving chain and the
//! judging client's latest height, which height to read proofs at, which height the datagram names, and whether
//! the client must first be updated to it. Packets (receive, acknowledgement), timeouts and every handshake step
//! go through it.
//!
//! A Cosmos chain proves the state after block H under the app hash of header H+1, and relayd's light client
//! verifies any header on demand. A NEAR chain proves the state after block P under the `prev_state_root` of the
//! block after P, and relayd's light client verifies only the final heads NEAR serves as light-client blocks: the
//! proof is read at the *parent* of a verified head, and the judging NEAR client must hold that head.

use relayd_messages::{Packet, VerifiedHead};

/// What relayd knows of the proving chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A Cosmos chain whose latest state was read at `latest`.
    Cosmos {
        /// The height of the newest state read from the node.
        latest: u64,
    },
    /// A NEAR chain and the heads relayd's light client verified (any order).
    Near {
        /// The verified heads.
        heads: &'a [VerifiedHead],
    },
}

/// Where to prove and what the judging client needs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The height to read every proof of the datagram at.
    pub query_height: u64,
    /// The height the datagram names (`proof_height`): the client's consensus state there holds the root.
    pub proof_height: u64,
    /// Whether the client must be updated to `proof_height` first (it holds an older latest height).
    pub update_client: bool,
    /// The proof height's block time where relayd verified it (NEAR heads), for timeouts by time.
    pub time_ns: Option<u64>,
}

/// Why no height can be proven now. Each is temporary: the chains or relayd's light client move on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoPlan {
    /// relayd's light client has verified no head of the proving chain at or above the client's height.
    #[error("no verified head at or above the client's height {client} yet")]
    NoVerifiedHead {
        /// The judging client's latest height.
        client: u64,
    },
    /// The judging client is past every height relayd can prove at (clients cannot go back).
    #[error("the client is at {client}, past the newest provable height {newest}")]
    ClientAhead {
        /// The judging client's latest height.
        client: u64,
        /// The newest height relayd could name.
        newest: u64,
    },
    /// The newest provable state is older than the state the datagram needs (the send, the write).
    #[error("the newest provable state is at {at}, before {needed}")]
    SourceBehind {
        /// Where proofs could be read.
        at: u64,
        /// The first height whose state carries what is proven.
        needed: u64,
    },
    /// The packet's timeout has not passed at the proof height, as far as relayd can tell.
    #[error("the timeout has not passed at proof height {proof_height}")]
    NotTimedOut {
        /// The proof height examined.
        proof_height: u64,
    },
}

/// Picks the heights for a datagram whose proofs must show the state at `not_before` or later, judged by a
/// client whose latest height is `client_latest`.
///
/// Cosmos: proofs at the latest read height H name H+1, updating the client unless it holds H+1; a client past
/// H+1 (another relayer, a node behind) is met at its own height, reading at its height - 1 with no update.
/// NEAR: the newest verified head V at or above the client's height; proofs at V's parent, naming V, updating
/// the client to V unless it is there already.
pub fn plan(source: Source<'_>, client_latest: u64, not_before: u64) -> Result<Plan, NoPlan> {
    let plan = match source {
        Source::Cosmos { latest } => {
            if client_latest > latest + 1 {
                Plan {
                    query_height: client_latest - 1,
                    proof_height: client_latest,
                    update_client: false,
                    time_ns: None,
                }
            } else {
                Plan {
                    query_height: latest,
                    proof_height: latest + 1,
                    update_client: client_latest < latest + 1,
                    time_ns: None,
                }
            }
        }
        Source::Near { heads } => {
            let newest = heads
                .iter()
                .max_by_key(|h| h.height)
                .ok_or(NoPlan::NoVerifiedHead {
                    client: client_latest,
                })?;
            if newest.height < client_latest {
                return Err(NoPlan::ClientAhead {
                    client: client_latest,
                    newest: newest.height,
                });
            }
            Plan {
                query_height: newest.parent,
                proof_height: newest.height,
                update_client: newest.height > client_latest,
                time_ns: Some(newest.time_ns),
            }
        }
    };
    if plan.query_height < not_before {
        return Err(NoPlan::SourceBehind {
            at: plan.query_height,
            needed: not_before,
        });
    }
    Ok(plan)
}

/// When a packet times out on the chain proving its absence (its destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadline {
    /// The timeout height (revision height; 0 when the packet's revision is older than the chain's), if any.
    pub height: Option<u64>,
    /// The timeout timestamp, ns since the epoch, if any.
    pub time_ns: Option<u64>,
    /// A height of the chain at which the packet was already seen timed out (from a block whose time relayd
    /// knows), for chains whose proof heights come without a time.
    pub passed_at: Option<u64>,
}

impl Deadline {
    /// `packet`'s timeout on its destination (revision `dst_revision`): a timeout height of an older revision has
    /// passed already, one of a newer revision cannot pass at these heights. `passed_at` is a destination height
    /// already seen past the timeout.
    pub fn of_packet(packet: &Packet, dst_revision: u64, passed_at: Option<u64>) -> Self {
        let height =
            packet
                .timeout_height
                .and_then(|t| match t.revision_number.cmp(&dst_revision) {
                    std::cmp::Ordering::Less => Some(0),
                    std::cmp::Ordering::Equal => Some(t.revision_height),
                    std::cmp::Ordering::Greater => None,
                });
        Self {
            height,
            time_ns: (packet.timeout_timestamp_ns != 0).then_some(packet.timeout_timestamp_ns),
            passed_at,
        }
    }
}

/// Checks that a timeout proven at `plan` is judged timed out: the proof height reaches the timeout height, or
/// its verified time reaches the timeout timestamp, or it is at or after a height already seen timed out (block
/// times do not go back). Timeouts on close need none of this.
pub fn timed_out(plan: &Plan, deadline: &Deadline) -> Result<(), NoPlan> {
    let by_height = deadline.height.is_some_and(|h| plan.proof_height >= h);
    let by_time = matches!((deadline.time_ns, plan.time_ns), (Some(t), Some(at)) if at >= t);
    let seen = deadline.passed_at.is_some_and(|h| plan.proof_height >= h);
    if by_height || by_time || seen {
        Ok(())
    } else {
        Err(NoPlan::NotTimedOut {
            proof_height: plan.proof_height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(height: u64, parent: u64) -> VerifiedHead {
        VerifiedHead {
            height,
            parent,
            time_ns: height * 1_000,
        }
    }

    #[test]
    fn cosmos_proves_at_the_latest_read_and_names_the_next_header() {
        // Client behind: update to H+1.
        assert_eq!(
            plan(Source::Cosmos { latest: 20 }, 7, 15),
            Ok(Plan {
                query_height: 20,
                proof_height: 21,
                update_client: true,
                time_ns: None
            })
        );
        // Client exactly at H+1: no update.
        assert_eq!(
            plan(Source::Cosmos { latest: 20 }, 21, 0).map(|p| (p.proof_height, p.update_client)),
            Ok((21, false))
        );
    }

    #[test]
    fn a_cosmos_client_ahead_is_met_at_its_own_height() {
        assert_eq!(
            plan(Source::Cosmos { latest: 20 }, 30, 0),
            Ok(Plan {
                query_height: 29,
                proof_height: 30,
                update_client: false,
                time_ns: None
            })
        );
    }

    #[test]
    fn state_older_than_needed_is_not_proven() {
        assert_eq!(
            plan(Source::Cosmos { latest: 9 }, 3, 10),
            Err(NoPlan::SourceBehind { at: 9, needed: 10 })
        );
        assert_eq!(
            plan(
                Source::Near {
                    heads: &[head(12, 11)]
                },
                3,
                12
            ),
            Err(NoPlan::SourceBehind { at: 11, needed: 12 })
        );
    }

    #[test]
    fn near_proves_at_the_parent_of_the_newest_verified_head() {
        // Heights skip on NEAR: the parent of 50 is 48, not 49. Order of the list does not matter.
        let heads = [head(40, 39), head(50, 48), head(45, 44)];
        assert_eq!(
            plan(Source::Near { heads: &heads }, 40, 30),
            Ok(Plan {
                query_height: 48,
                proof_height: 50,
                update_client: true,
                time_ns: Some(50_000)
            })
        );
    }

    #[test]
    fn a_near_client_at_the_head_needs_no_update() {
        assert_eq!(
            plan(
                Source::Near {
                    heads: &[head(50, 49)]
                },
                50,
                0
            )
            .map(|p| p.update_client),
            Ok(false)
        );
    }

    #[test]
    fn a_near_client_past_every_verified_head_waits() {
        assert_eq!(
            plan(
                Source::Near {
                    heads: &[head(50, 49)]
                },
                60,
                0
            ),
            Err(NoPlan::ClientAhead {
                client: 60,
                newest: 50
            })
        );
    }

    #[test]
    fn no_verified_near_head_means_no_proof() {
        assert_eq!(
            plan(Source::Near { heads: &[] }, 5, 0),
            Err(NoPlan::NoVerifiedHead { client: 5 })
        );
    }

    #[test]
    fn timeouts_by_height_need_the_proof_height_at_the_timeout() {
        let at = plan(Source::Cosmos { latest: 9 }, 0, 0).unwrap();
        let d = Deadline {
            height: Some(10),
            ..Deadline::default()
        };
        assert_eq!(timed_out(&at, &d), Ok(()));
        let d = Deadline {
            height: Some(11),
            ..Deadline::default()
        };
        assert_eq!(
            timed_out(&at, &d),
            Err(NoPlan::NotTimedOut { proof_height: 10 })
        );
    }

    #[test]
    fn timeouts_by_time_need_a_verified_time_or_a_height_seen_timed_out() {
        let near = plan(
            Source::Near {
                heads: &[head(50, 49)],
            },
            0,
            0,
        )
        .unwrap();
        let by_time = |t| Deadline {
            time_ns: Some(t),
            ..Deadline::default()
        };
        assert_eq!(timed_out(&near, &by_time(50_000)), Ok(()));
        assert!(timed_out(&near, &by_time(50_001)).is_err());
        // Cosmos proof heights carry no time: only a height already seen past the timestamp answers.
        let cosmos = plan(Source::Cosmos { latest: 9 }, 0, 0).unwrap();
        assert!(timed_out(&cosmos, &by_time(1)).is_err());
        let seen = |h| Deadline {
            time_ns: Some(1),
            passed_at: Some(h),
            ..Deadline::default()
        };
        assert_eq!(timed_out(&cosmos, &seen(10)), Ok(()));
        assert!(timed_out(&cosmos, &seen(11)).is_err());
        // Neither kind of timeout set: never timed out.
        assert!(timed_out(&near, &Deadline::default()).is_err());
    }

    #[test]
    fn a_packets_deadline_counts_heights_of_its_destinations_revision() {
        use relayd_messages::{ChannelId, Height, PortId, Sequence};
        let packet = |timeout_height, timeout_timestamp_ns| Packet {
            sequence: Sequence(1),
            source_port: PortId::new("transfer").unwrap(),
            source_channel: ChannelId::new("channel-0").unwrap(),
            destination_port: PortId::new("transfer").unwrap(),
            destination_channel: ChannelId::new("channel-0").unwrap(),
            data: Vec::new(),
            timeout_height,
            timeout_timestamp_ns,
        };
        let d = Deadline::of_packet(&packet(Some(Height::new(1, 40)), 0), 1, Some(7));
        assert_eq!(
            d,
            Deadline {
                height: Some(40),
                time_ns: None,
                passed_at: Some(7)
            }
        );
        assert_eq!(
            Deadline::of_packet(&packet(Some(Height::new(0, 40)), 0), 1, None).height,
            Some(0)
        );
        assert_eq!(
            Deadline::of_packet(&packet(Some(Height::new(2, 40)), 0), 1, None).height,
            None
        );
        assert_eq!(
            Deadline::of_packet(&packet(None, 9), 1, None).time_ns,
            Some(9)
        );
    }
}
