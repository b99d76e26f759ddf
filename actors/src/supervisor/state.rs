//! Restart bookkeeping for supervised actors, as in Erlang/OTP: a child may restart at most
//! `restart_intensity` times within `restart_period`; one more failure escalates to its parent.
//!
//! Pure: time is passed in, so the rules are tested without clocks or actors.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;
use relayd_config::SupervisionConfig;

/// What a supervisor does about one child failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart the child after `delay`; `attempt` counts failures inside the current window.
    Restart {
        /// How long to wait before the restart.
        delay: Duration,
        /// Failures within the window, this one included.
        attempt: u32,
    },
    /// Too many failures within the period: give up on the child and report to the parent.
    Escalate {
        /// Failures within the window, this one included.
        failures: u32,
    },
}

/// The failure history of one supervised child.
#[derive(Debug)]
pub struct RestartWindow {
    intensity: u32,
    period: Duration,
    failures: VecDeque<Instant>,
    backoff: ExponentialBackoff,
}

impl RestartWindow {
    /// A window with the policy's intensity, period and backoff. `jitter` is the backoff's randomisation
    /// factor in [0, 1): supervisors use some so that siblings do not restart in lock-step.
    pub fn new(policy: &SupervisionConfig, jitter: f64) -> Self {
        let backoff =
            crate::retry::exponential(policy.backoff_base.get(), policy.backoff_cap.get(), jitter);
        Self {
            intensity: policy.restart_intensity,
            period: policy.restart_period.get(),
            failures: VecDeque::new(),
            backoff,
        }
    }

    /// Records a failure at `now` and decides what to do about it.
    pub fn on_failure(&mut self, now: Instant) -> RestartDecision {
        while let Some(&oldest) = self.failures.front() {
            if now.saturating_duration_since(oldest) >= self.period {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        if self.failures.is_empty() {
            // A quiet period is proof of health: start the next backoff from the base again.
            self.backoff.reset();
        }
        self.failures.push_back(now);
        let failures = u32::try_from(self.failures.len()).unwrap_or(u32::MAX);
        if failures > self.intensity {
            return RestartDecision::Escalate { failures };
        }
        let delay = self
            .backoff
            .next_backoff()
            .unwrap_or(self.backoff.max_interval);
        RestartDecision::Restart {
            delay,
            attempt: failures,
        }
    }

    /// Failures currently inside the window.
    pub fn recent_failures(&self) -> usize {
        self.failures.len()
    }
}

/// When a stopped child is restarted (OTP restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartType {
    /// Always: per-chain actors and the coordinator must run for relaying to go on.
    Permanent,
    /// Only after a failure; a child that finished its work stays stopped (packet builders).
    Transient,
    /// Never.
    Temporary,
}

impl RestartType {
    /// Whether a child that exited (`clean`: on purpose) is restarted.
    pub fn restarts(self, clean: bool) -> bool {
        match self {
            Self::Permanent => true,
            Self::Transient => !clean,
            Self::Temporary => false,
        }
    }
}

/// The children (by start order) a failure of child `failed` restarts, out of `count`.
pub fn affected(
    strategy: relayd_config::RestartStrategy,
    failed: usize,
    count: usize,
) -> std::ops::Range<usize> {
    match strategy {
        relayd_config::RestartStrategy::OneForOne => failed..(failed + 1).min(count),
        relayd_config::RestartStrategy::RestForOne => failed..count,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn restart_types_follow_otp() {
        use super::RestartType::*;
        assert!(Permanent.restarts(true) && Permanent.restarts(false));
        assert!(!Transient.restarts(true) && Transient.restarts(false));
        assert!(!Temporary.restarts(true) && !Temporary.restarts(false));
    }

    #[test]
    fn strategies_pick_the_children_to_restart() {
        use relayd_config::RestartStrategy::*;
        assert_eq!(super::affected(OneForOne, 1, 4), 1..2);
        assert_eq!(super::affected(RestForOne, 1, 4), 1..4);
        assert_eq!(super::affected(RestForOne, 3, 4), 3..4);
    }

    use super::*;
    use relayd_config::values::PositiveDuration;

    fn policy(intensity: u32) -> SupervisionConfig {
        SupervisionConfig {
            restart_intensity: intensity,
            restart_period: PositiveDuration::from_secs(60),
            backoff_base: PositiveDuration::from_millis(100),
            backoff_cap: PositiveDuration::from_millis(500),
            ..SupervisionConfig::default()
        }
    }

    #[test]
    fn restarts_with_doubling_capped_backoff_then_escalates() {
        let mut w = RestartWindow::new(&policy(4), 0.0);
        let t0 = Instant::now();
        let delays: Vec<_> = (0..4)
            .map(|i| match w.on_failure(t0 + Duration::from_secs(i)) {
                RestartDecision::Restart { delay, attempt } => {
                    assert_eq!(attempt, i as u32 + 1);
                    delay.as_millis()
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 500]);
        assert_eq!(
            w.on_failure(t0 + Duration::from_secs(5)),
            RestartDecision::Escalate { failures: 5 }
        );
    }

    #[test]
    fn failures_older_than_the_period_are_forgiven() {
        let mut w = RestartWindow::new(&policy(1), 0.0);
        let t0 = Instant::now();
        assert!(matches!(w.on_failure(t0), RestartDecision::Restart { .. }));
        assert!(matches!(
            w.on_failure(t0 + Duration::from_secs(30)),
            RestartDecision::Escalate { failures: 2 }
        ));
        // Both earlier failures have aged out by t0 + 91s, and backoff restarts from its base.
        assert_eq!(
            w.on_failure(t0 + Duration::from_secs(91)),
            RestartDecision::Restart {
                delay: Duration::from_millis(100),
                attempt: 1
            }
        );
        assert_eq!(w.recent_failures(), 1);
    }

    #[test]
    fn zero_intensity_escalates_on_first_failure() {
        let mut w = RestartWindow::new(&policy(0), 0.0);
        assert_eq!(
            w.on_failure(Instant::now()),
            RestartDecision::Escalate { failures: 1 }
        );
    }
}
