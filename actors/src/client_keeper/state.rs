//! Whether an IBC client relayd relays through needs work, judged from its state alone: refresh it before a
//! fraction of its trusting period has passed, raise the alarm and refresh it first when expiry is near, and
//! stop its paths when it is expired or frozen (no update can revive either, so retrying would only loop).

use std::time::Duration;

/// What the judgement needs from a hosted client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientView {
    /// Whether misbehaviour froze it.
    pub frozen: bool,
    /// Its trusting period.
    pub trusting_period: Duration,
    /// The block time of its latest consensus state, ns since the epoch (unknown: unreadable or absent).
    pub consensus_time_ns: Option<u64>,
}

/// When clients are refreshed and when their expiry raises the alarm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientPolicy {
    /// Refresh once this fraction of the trusting period has passed since the latest consensus state.
    pub refresh_fraction: f64,
    /// Below this much time to expiry the client is in alarm and its refresh goes first. For a client whose
    /// trusting period is short against it, the threshold is lowered to half that period
    /// ([`ClientPolicy::alarm_for`]): otherwise a freshly updated client would be in alarm, and updated again, at
    /// every check.
    pub alarm_below: Duration,
}

impl ClientPolicy {
    /// The alarm threshold for a client with `trusting_period`: `alarm_below`, at most half the period, so a
    /// client that was just updated is never in alarm.
    pub fn alarm_for(&self, trusting_period: Duration) -> Duration {
        self.alarm_below.min(trusting_period / 2)
    }
}

/// The verdict on one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientHealth {
    /// Nothing to do yet.
    Fresh {
        /// Time left before it expires.
        expires_in: Duration,
    },
    /// Due for its periodic refresh.
    RefreshDue {
        /// Time left before it expires.
        expires_in: Duration,
    },
    /// Close to expiry: alarm, and refresh ahead of any other work on the host chain.
    Alarm {
        /// Time left before it expires.
        expires_in: Duration,
    },
    /// Past its trusting period: only governance can revive it; its paths stop.
    Expired {
        /// How long ago it expired.
        ago: Duration,
    },
    /// Frozen by misbehaviour; its paths stop.
    Frozen,
    /// The host chain has no such client (queried as not found, e.g. the chain was reset); its paths stop until
    /// it exists again.
    Missing,
    /// Its consensus state's time is unknown, so nothing can be judged.
    Unknown,
}

impl ClientHealth {
    /// The verdict's name in logs, the admin API and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fresh { .. } => "fresh",
            Self::RefreshDue { .. } => "refresh_due",
            Self::Alarm { .. } => "alarm",
            Self::Expired { .. } => "expired",
            Self::Frozen => "frozen",
            Self::Missing => "missing",
            Self::Unknown => "unknown",
        }
    }

    /// Whether packets may still be relayed through the client.
    pub fn usable(&self) -> bool {
        !matches!(self, Self::Expired { .. } | Self::Frozen | Self::Missing)
    }

    /// Why no packet can go through a client with this verdict (expired or frozen), if so; it reads after the
    /// client's name ("… is frozen").
    pub fn unusable_reason(&self) -> Option<String> {
        match self {
            Self::Frozen => Some("is frozen".into()),
            Self::Missing => Some("does not exist (queried as not found)".into()),
            Self::Expired { ago } => Some(format!(
                "expired {}s ago (its trusting period passed with no update)",
                ago.as_secs()
            )),
            _ => None,
        }
    }

    /// Whether an update should be sent now.
    pub fn needs_update(&self) -> bool {
        matches!(self, Self::RefreshDue { .. } | Self::Alarm { .. })
    }

    /// Seconds to expiry (negative once expired), when known.
    pub fn expires_in_secs(&self) -> Option<i64> {
        let secs = |d: &Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        match self {
            Self::Fresh { expires_in }
            | Self::RefreshDue { expires_in }
            | Self::Alarm { expires_in } => Some(secs(expires_in)),
            Self::Expired { ago } => Some(-secs(ago)),
            Self::Frozen | Self::Missing | Self::Unknown => None,
        }
    }
}

/// What a failed read of a client says about it: a client its host chain does not have is [`ClientHealth::Missing`];
/// any other failure says nothing (`None`: its paths keep their state).
pub fn unreadable(kind: relayd_messages::ErrorKind) -> Option<ClientHealth> {
    (kind == relayd_messages::ErrorKind::NotFound).then_some(ClientHealth::Missing)
}

/// Judges `client` at `now_ns` (ns since the epoch) under `policy`.
pub fn assess(client: &ClientView, now_ns: u64, policy: &ClientPolicy) -> ClientHealth {
    if client.frozen {
        return ClientHealth::Frozen;
    }
    let Some(at) = client.consensus_time_ns else {
        return ClientHealth::Unknown;
    };
    // A consensus time ahead of the local clock (clock drift) counts as just made.
    let age = Duration::from_nanos(now_ns.saturating_sub(at));
    let Some(expires_in) = client
        .trusting_period
        .checked_sub(age)
        .filter(|d| !d.is_zero())
    else {
        return ClientHealth::Expired {
            ago: age.saturating_sub(client.trusting_period),
        };
    };
    if expires_in < policy.alarm_for(client.trusting_period) {
        ClientHealth::Alarm { expires_in }
    } else if age.as_secs_f64() >= client.trusting_period.as_secs_f64() * policy.refresh_fraction {
        ClientHealth::RefreshDue { expires_in }
    } else {
        ClientHealth::Fresh { expires_in }
    }
}

impl ClientView {
    /// What the judgement needs from a client as the Querier summarises it.
    pub fn of(summary: &relayd_messages::ClientSummary) -> Self {
        Self {
            frozen: summary.frozen,
            trusting_period: Duration::from_secs(summary.trusting_period_secs),
            consensus_time_ns: summary.consensus_time_ns,
        }
    }
}

/// Why no packet can go through `client` at `now_ns` (expired or frozen), if so.
pub fn unusable(client: &ClientView, now_ns: u64) -> Option<String> {
    let judge_only = ClientPolicy {
        refresh_fraction: 1.0,
        alarm_below: Duration::ZERO,
    };
    assess(client, now_ns, &judge_only).unusable_reason()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn view(age_secs: u64, trusting_secs: u64) -> (ClientView, u64) {
        let now = 1_000_000 * S;
        (
            ClientView {
                frozen: false,
                trusting_period: Duration::from_secs(trusting_secs),
                consensus_time_ns: Some(now - age_secs * S),
            },
            now,
        )
    }

    fn policy(fraction: f64, alarm_secs: u64) -> ClientPolicy {
        ClientPolicy {
            refresh_fraction: fraction,
            alarm_below: Duration::from_secs(alarm_secs),
        }
    }

    #[test]
    fn a_client_goes_fresh_then_due_then_alarm_then_expired_as_it_ages() {
        let p = policy(1.0 / 3.0, 100);
        let judge = |age| {
            let (v, now) = view(age, 900);
            assess(&v, now, &p)
        };
        assert_eq!(
            judge(10),
            ClientHealth::Fresh {
                expires_in: Duration::from_secs(890)
            }
        );
        assert_eq!(
            judge(300),
            ClientHealth::RefreshDue {
                expires_in: Duration::from_secs(600)
            }
        );
        assert_eq!(
            judge(801),
            ClientHealth::Alarm {
                expires_in: Duration::from_secs(99)
            }
        );
        assert_eq!(
            judge(900),
            ClientHealth::Expired {
                ago: Duration::ZERO
            }
        );
        assert_eq!(judge(950).expires_in_secs(), Some(-50));
        assert!(!judge(950).usable() && judge(801).usable());
        assert!(
            judge(801).needs_update() && judge(300).needs_update() && !judge(10).needs_update()
        );
    }

    #[test]
    fn an_alarm_threshold_above_the_trusting_period_is_lowered_to_an_overdue_refresh() {
        // A 1 h client under the default 24 h alarm: fresh after an update, due at 20 min, alarm once less than
        // half its period is left.
        let p = policy(1.0 / 3.0, 24 * 3600);
        let judge = |age| {
            let (v, now) = view(age, 3600);
            assess(&v, now, &p)
        };
        assert!(matches!(judge(2), ClientHealth::Fresh { .. }));
        assert!(matches!(judge(1300), ClientHealth::RefreshDue { .. }));
        assert!(matches!(judge(1790), ClientHealth::RefreshDue { .. }));
        let h = judge(1810);
        assert!(matches!(h, ClientHealth::Alarm { .. }) && h.usable() && h.needs_update());
        // A long trusting period keeps the configured threshold.
        assert_eq!(
            p.alarm_for(Duration::from_secs(14 * 86_400)),
            Duration::from_secs(24 * 3600)
        );
    }

    #[test]
    fn frozen_wins_and_an_unknown_time_judges_nothing() {
        let (mut v, now) = view(950, 900);
        v.frozen = true;
        assert_eq!(assess(&v, now, &policy(0.3, 10)), ClientHealth::Frozen);
        v.frozen = false;
        v.consensus_time_ns = None;
        let h = assess(&v, now, &policy(0.3, 10));
        assert_eq!(h, ClientHealth::Unknown);
        assert!(h.usable() && !h.needs_update() && h.expires_in_secs().is_none());
    }

    #[test]
    fn a_client_queried_as_not_found_is_missing_and_stops_its_paths_other_failures_say_nothing() {
        use relayd_messages::ErrorKind;
        let h = unreadable(ErrorKind::NotFound).expect("judged");
        assert_eq!(h, ClientHealth::Missing);
        assert!(!h.usable() && !h.needs_update() && h.expires_in_secs().is_none());
        assert_eq!(h.name(), "missing");
        assert!(h.unusable_reason().is_some_and(|r| r.contains("not found")));
        for kind in [
            ErrorKind::Unavailable,
            ErrorKind::Unverified,
            ErrorKind::ClientUnusable,
            ErrorKind::Stopped,
        ] {
            assert_eq!(unreadable(kind), None, "{kind:?}");
        }
    }

    #[test]
    fn unusable_names_expiry_and_freezing_only() {
        let (v, now) = view(950, 900);
        assert!(unusable(&v, now).is_some_and(|r| r.contains("expired 50s ago")));
        let (v, now) = view(899, 900);
        assert_eq!(unusable(&v, now), None);
        let (mut v, now) = view(1, 900);
        v.frozen = true;
        assert_eq!(unusable(&v, now).as_deref(), Some("is frozen"));
    }

    #[test]
    fn a_consensus_time_ahead_of_the_clock_is_fresh() {
        let (mut v, now) = view(0, 900);
        v.consensus_time_ns = Some(now + 5 * S);
        assert_eq!(
            assess(&v, now, &policy(0.3, 10)),
            ClientHealth::Fresh {
                expires_in: Duration::from_secs(900)
            }
        );
    }
}
