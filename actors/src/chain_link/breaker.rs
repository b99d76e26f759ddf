//! A circuit breaker per chain: after a run of node failures, requests to that chain fail at once for a
//! cool-down instead of piling more load on a node that is down; then one probe is let through, and its outcome
//! closes the circuit or opens it again for longer. Pure: time is passed in.

use std::time::{Duration, Instant};

/// Consecutive node failures that open the circuit.
pub const FAILURE_THRESHOLD: u32 = 5;
/// First cool-down; it doubles each time a probe fails, up to [`MAX_COOLDOWN`].
pub const COOLDOWN: Duration = Duration::from_secs(1);
/// Longest cool-down.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(30);

/// Where the circuit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests fail at once until the cool-down ends.
    Open,
    /// One probe request is in flight; others fail at once.
    HalfOpen,
}

/// What the admin API and logs show of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BreakerStatus {
    /// Where the circuit is.
    pub state: BreakerState,
    /// Node failures in a row.
    pub consecutive_failures: u32,
    /// Times the circuit opened.
    pub opened: u64,
}

/// The breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    max_cooldown: Duration,
    state: BreakerState,
    consecutive: u32,
    opened_at: Option<Instant>,
    current_cooldown: Duration,
    opened: u64,
    probe_at: Option<Instant>,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(FAILURE_THRESHOLD, COOLDOWN, MAX_COOLDOWN)
    }
}

impl CircuitBreaker {
    /// A closed breaker opening after `threshold` failures in a row, for `cooldown` (doubling up to `max`).
    pub fn new(threshold: u32, cooldown: Duration, max: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            max_cooldown: max.max(cooldown),
            state: BreakerState::Closed,
            consecutive: 0,
            opened_at: None,
            current_cooldown: cooldown,
            opened: 0,
            probe_at: None,
        }
    }

    /// Whether a request may go to the node at `now`. In the half-open state only the first caller gets
    /// through (the probe).
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            // A probe whose caller went away never reports; after the longest cool-down another one may go.
            BreakerState::HalfOpen => {
                let lost = self
                    .probe_at
                    .is_none_or(|t| now.duration_since(t) >= self.max_cooldown);
                if lost {
                    self.probe_at = Some(now);
                }
                lost
            }
            BreakerState::Open => {
                let due = self
                    .opened_at
                    .is_none_or(|t| now.duration_since(t) >= self.current_cooldown);
                if due {
                    self.state = BreakerState::HalfOpen;
                    self.probe_at = Some(now);
                }
                due
            }
        }
    }

    /// The outcome of a request that was allowed: `node_failed` for failures of the node itself.
    pub fn record(&mut self, node_failed: bool, now: Instant) {
        if !node_failed {
            self.state = BreakerState::Closed;
            self.consecutive = 0;
            self.current_cooldown = self.cooldown;
            return;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        match self.state {
            BreakerState::HalfOpen => {
                self.current_cooldown = (self.current_cooldown * 2).min(self.max_cooldown);
                self.open(now);
            }
            BreakerState::Closed if self.consecutive >= self.threshold => self.open(now),
            _ => {}
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.opened += 1;
    }

    /// The breaker as reported.
    pub fn status(&self) -> BreakerStatus {
        BreakerStatus {
            state: self.state,
            consecutive_failures: self.consecutive,
            opened: self.opened,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(3, Duration::from_secs(1), Duration::from_secs(4))
    }

    #[test]
    fn opens_after_the_threshold_and_fails_fast_during_the_cooldown() {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..2 {
            assert!(b.allow(t0));
            b.record(true, t0);
        }
        assert_eq!(b.status().state, BreakerState::Closed);
        assert!(b.allow(t0));
        b.record(true, t0);
        assert_eq!(b.status().state, BreakerState::Open);
        assert!(!b.allow(t0 + Duration::from_millis(999)));
        assert_eq!(b.status().opened, 1);
    }

    #[test]
    fn a_success_in_between_resets_the_count() {
        let (mut b, t0) = (breaker(), Instant::now());
        for ok in [false, false, true, false, false] {
            assert!(b.allow(t0));
            b.record(!ok, t0);
        }
        assert_eq!(b.status().state, BreakerState::Closed);
    }

    #[test]
    fn one_probe_after_the_cooldown_closes_or_reopens_for_longer() {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..3 {
            b.allow(t0);
            b.record(true, t0);
        }
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.allow(t1), "the probe goes through");
        assert!(!b.allow(t1), "only one probe at a time");
        b.record(true, t1);
        assert_eq!(b.status().state, BreakerState::Open);
        // The cool-down doubled: 1 s later is too early, 2 s later is due.
        assert!(!b.allow(t1 + Duration::from_secs(1)));
        let t2 = t1 + Duration::from_secs(2);
        assert!(b.allow(t2));
        b.record(false, t2);
        assert_eq!(b.status().state, BreakerState::Closed);
        assert!(b.allow(t2));
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced_after_the_longest_cooldown() {
        let (mut b, t0) = (breaker(), Instant::now());
        for _ in 0..3 {
            b.allow(t0);
            b.record(true, t0);
        }
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.allow(t1));
        assert!(!b.allow(t1 + Duration::from_secs(3)));
        assert!(b.allow(t1 + Duration::from_secs(4)));
    }

    #[test]
    fn the_cooldown_is_capped() {
        let (mut b, mut t) = (breaker(), Instant::now());
        for _ in 0..3 {
            b.allow(t);
            b.record(true, t);
        }
        for _ in 0..10 {
            t += Duration::from_secs(4);
            assert!(b.allow(t), "a probe is due within the cap");
            b.record(true, t);
        }
        assert_eq!(b.status().opened, 11);
    }
}
