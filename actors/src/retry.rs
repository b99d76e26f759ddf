//! Every retry schedule relayd computes, in one place, so the backoff crate behind them can be swapped in one
//! file (it is flagged unmaintained, RUSTSEC-2025-0012, and kept for now).

use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;

/// An exponential schedule from `base`, doubling up to `cap`, with a randomisation factor `jitter` in [0, 1)
/// (some jitter keeps many retriers from acting in lock-step).
pub fn exponential(base: Duration, cap: Duration, jitter: f64) -> ExponentialBackoff {
    let mut b = ExponentialBackoff {
        current_interval: base,
        initial_interval: base,
        max_interval: cap.max(base),
        multiplier: 2.0,
        randomization_factor: jitter.clamp(0.0, 0.99),
        max_elapsed_time: None,
        ..ExponentialBackoff::default()
    };
    b.reset();
    b
}

/// The wait before retry number `attempt` (0 for the first retry) of a deterministic exponential schedule:
/// `base`, doubling each attempt, never more than `cap`.
pub fn delay(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let mut b = exponential(base, cap, 0.0);
    let mut wait = base.min(cap.max(base));
    // The schedule reaches the cap within 64 doublings of any base.
    for _ in 0..=attempt.min(64) {
        wait = b.next_backoff().unwrap_or(wait);
    }
    wait
}

/// The wait before retry number `attempt` of a linear schedule: `step` more each attempt, never more than `cap`.
pub fn linear(step: Duration, cap: Duration, attempt: u32) -> Duration {
    step.saturating_mul(attempt).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deterministic_schedule_doubles_from_the_base_up_to_the_cap() {
        let ms = Duration::from_millis;
        let got: Vec<u128> = (0..9)
            .map(|a| delay(ms(50), ms(6_400), a).as_millis())
            .collect();
        assert_eq!(got, [50, 100, 200, 400, 800, 1_600, 3_200, 6_400, 6_400]);
        assert_eq!(delay(ms(100), ms(5_000), 5), ms(3_200));
        assert_eq!(delay(ms(100), ms(5_000), 6), ms(5_000));
        assert_eq!(delay(ms(100), ms(5_000), u32::MAX), ms(5_000));
        // A cap below the base waits the base.
        assert_eq!(delay(ms(100), ms(10), 3), ms(100));
    }

    #[test]
    fn the_linear_schedule_grows_by_its_step_up_to_the_cap() {
        let ms = Duration::from_millis;
        assert_eq!(linear(ms(200), ms(2_000), 0), ms(0));
        assert_eq!(linear(ms(200), ms(2_000), 3), ms(600));
        assert_eq!(linear(ms(200), ms(2_000), 40), ms(2_000));
    }
}
