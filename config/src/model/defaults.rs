//! Built-in defaults, in one place so `docs/config.md` can be checked against them.

use std::net::SocketAddr;

use crate::values::{HumanDuration, PositiveDuration, TrustThreshold};

/// Default IBC store key.
pub const STORE_PREFIX: &str = "ibc";
/// Default fallback gas limit.
pub const GAS: u64 = 200_000;
/// Default simulation multiplier.
pub const GAS_ADJUSTMENT: f64 = 1.3;
/// Default gas limit cap.
pub const MAX_GAS: u64 = 400_000;
/// Default bound on packet builders running at once.
pub const MAX_BUILDERS: usize = 512;
/// Default number of transactions admitted and waiting for their block at once.
pub const MAX_IN_FLIGHT: usize = 4;

pub(crate) fn timeout() -> PositiveDuration {
    PositiveDuration::from_secs(10)
}
pub(crate) fn max_builders() -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(MAX_BUILDERS).unwrap_or(std::num::NonZeroUsize::MIN)
}
pub(crate) fn record_retention() -> PositiveDuration {
    PositiveDuration::from_secs(7 * 24 * 3600)
}
/// Default `ics20_max_memo_size`, in bytes (Hermes' default).
pub const ICS20_MAX_MEMO_SIZE: u64 = 32_768;
/// Default `ics20_max_receiver_size`, in bytes (Hermes' default).
pub const ICS20_MAX_RECEIVER_SIZE: u64 = 2_048;

pub(crate) fn ics20_max_memo_size() -> u64 {
    ICS20_MAX_MEMO_SIZE
}
pub(crate) fn ics20_max_receiver_size() -> u64 {
    ICS20_MAX_RECEIVER_SIZE
}
pub(crate) fn admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}
pub(crate) fn yes() -> bool {
    true
}
pub(crate) fn latency_buckets() -> Vec<f64> {
    vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
}
pub(crate) fn restart_intensity() -> u32 {
    5
}
pub(crate) fn refresh_fraction() -> f64 {
    1.0 / 3.0
}
pub(crate) fn expiry_alarm() -> PositiveDuration {
    PositiveDuration::from_secs(24 * 3600)
}
pub(crate) fn check_interval() -> PositiveDuration {
    PositiveDuration::from_secs(30)
}
pub(crate) fn restart_period() -> PositiveDuration {
    PositiveDuration::from_secs(60)
}
pub(crate) fn backoff_base() -> PositiveDuration {
    PositiveDuration::from_millis(100)
}
pub(crate) fn backoff_cap() -> PositiveDuration {
    PositiveDuration::from_secs(30)
}
pub(crate) fn trusting_period() -> PositiveDuration {
    PositiveDuration::from_secs(336 * 3600)
}
pub(crate) fn trust_threshold() -> TrustThreshold {
    TrustThreshold::TWO_THIRDS
}
pub(crate) fn clock_drift() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}
pub(crate) fn max_block_time() -> PositiveDuration {
    PositiveDuration::from_secs(30)
}
pub(crate) fn poll_interval() -> PositiveDuration {
    PositiveDuration::from_secs(1)
}
pub(crate) fn clear_interval() -> u64 {
    100
}
pub(crate) fn max_msg_num() -> usize {
    30
}
pub(crate) fn max_tx_size() -> usize {
    2 * 1024 * 1024
}
