//! Scoring a chain's RPC endpoints and choosing the one reads and the event subscription use: pure (no IO, no
//! clock, no actix), so every rule below is a plain function of what was recorded and the time passed in.
//!
//! An endpoint is *failing* after [`PoolSettings::fail_after`] consecutive failed requests, or while its height
//! lags the highest height any endpoint reported by more than [`PoolSettings::lag_tolerance`] blocks; it is
//! *quarantined* for [`PoolSettings::quarantine`] once it served data the light client refused. Among the
//! endpoints that are neither, the lowest score wins; the current endpoint is kept while it is healthy and not
//! clearly worse than the best, so that reads and the subscription do not flap between two similar nodes.

use std::time::{Duration, Instant};

/// The rules of one pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolSettings {
    /// Consecutive failed requests after which an endpoint counts as failing.
    pub fail_after: u32,
    /// Blocks an endpoint may lag the highest reported height and still count as healthy.
    pub lag_tolerance: u64,
    /// How long an endpoint that served refused data is left out.
    pub quarantine: Duration,
    /// The current endpoint is left for a healthy one only when its score exceeds twice the other's plus this.
    pub switch_margin: f64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            fail_after: 1,
            lag_tolerance: 5,
            quarantine: Duration::from_secs(300),
            switch_margin: 50.0,
        }
    }
}

/// An endpoint's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Answers, and is not behind.
    Healthy,
    /// Its last requests failed, or it lags the others.
    Failing,
    /// It served a header or proof the light client refused; left out until the quarantine ends.
    Quarantined,
}

impl Health {
    /// The name shown by the admin API and the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Failing => "failing",
            Self::Quarantined => "quarantined",
        }
    }
}

/// Score points per unit of recent error rate (1.0 = every recent request failed).
const ERROR_WEIGHT: f64 = 1000.0;
/// Score points per block of lag behind the highest reported height.
const LAG_WEIGHT: f64 = 200.0;
/// The latency assumed for an endpoint never measured, in ms.
const UNMEASURED_MS: f64 = 100.0;
/// Weight of the newest sample in the moving averages of latency and error rate.
const ALPHA: f64 = 0.3;

/// What is recorded about one endpoint.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    url: String,
    latency_ms: Option<f64>,
    error_rate: f64,
    consecutive_errors: u32,
    errors: u64,
    height: Option<u64>,
    last_error: Option<String>,
    quarantined_until: Option<Instant>,
    quarantine_reason: Option<String>,
}

/// One endpoint as shown to operators.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EndpointView {
    /// The address.
    pub url: String,
    /// Its standing.
    pub state: Health,
    /// Lower is better: latency in ms, plus penalties for recent errors and lag.
    pub score: f64,
    /// The latest height it reported.
    pub height: Option<u64>,
    /// Moving average of its `status` latency, ms.
    pub latency_ms: Option<f64>,
    /// Failed requests since start.
    pub errors: u64,
    /// Whether reads and the subscription go to it now.
    pub current: bool,
    /// Its last error.
    pub last_error: Option<String>,
    /// Why it is quarantined, while it is.
    pub quarantine_reason: Option<String>,
    /// Seconds of quarantine left.
    pub quarantined_for_secs: Option<u64>,
}

/// The endpoints of one chain and the choice among them.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolState {
    settings: PoolSettings,
    records: Vec<Record>,
    current: usize,
    switches: u64,
}

impl PoolState {
    /// A pool of `urls` (at least one; an empty list is given one unusable entry so indices stay valid), the first
    /// current.
    pub fn new(urls: &[String], settings: PoolSettings) -> Self {
        let mut records: Vec<Record> = urls
            .iter()
            .map(|url| Record {
                url: url.clone(),
                latency_ms: None,
                error_rate: 0.0,
                consecutive_errors: 0,
                errors: 0,
                height: None,
                last_error: None,
                quarantined_until: None,
                quarantine_reason: None,
            })
            .collect();
        if records.is_empty() {
            records.push(Record {
                url: String::new(),
                latency_ms: None,
                error_rate: 1.0,
                consecutive_errors: settings.fail_after,
                errors: 0,
                height: None,
                last_error: Some("no endpoint configured".into()),
                quarantined_until: None,
                quarantine_reason: None,
            });
        }
        Self {
            settings,
            records,
            current: 0,
            switches: 0,
        }
    }

    /// How many endpoints there are.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Always false: a pool has at least one endpoint.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The address of endpoint `i`.
    pub fn url(&self, i: usize) -> Option<&str> {
        self.records.get(i).map(|r| r.url.as_str())
    }

    /// The endpoint reads and the subscription use now.
    pub fn current(&self) -> usize {
        self.current
    }

    /// How often the current endpoint changed.
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// A request to endpoint `i` got an answer.
    pub fn succeeded(&mut self, i: usize) {
        if let Some(r) = self.records.get_mut(i) {
            r.consecutive_errors = 0;
            r.error_rate *= 1.0 - ALPHA;
        }
    }

    /// A request to endpoint `i` got no usable answer.
    pub fn failed(&mut self, i: usize, error: &str) {
        if let Some(r) = self.records.get_mut(i) {
            r.consecutive_errors = r.consecutive_errors.saturating_add(1);
            r.errors += 1;
            r.error_rate = r.error_rate * (1.0 - ALPHA) + ALPHA;
            r.last_error = Some(error.to_owned());
        }
    }

    /// Endpoint `i` reported `height` in `latency` (a `status` probe); it also counts as an answer.
    pub fn probed(&mut self, i: usize, height: u64, latency: Duration) {
        self.succeeded(i);
        if let Some(r) = self.records.get_mut(i) {
            let ms = latency.as_secs_f64() * 1000.0;
            r.latency_ms = Some(match r.latency_ms {
                Some(avg) => avg * (1.0 - ALPHA) + ms * ALPHA,
                None => ms,
            });
            r.height = Some(height);
        }
    }

    /// Endpoint `i` served data the light client refused: it is left out until `now + quarantine`.
    pub fn quarantine(&mut self, i: usize, reason: &str, now: Instant) {
        if let Some(r) = self.records.get_mut(i) {
            r.quarantined_until = Some(now + self.settings.quarantine);
            r.quarantine_reason = Some(reason.to_owned());
        }
    }

    fn highest(&self) -> Option<u64> {
        self.records.iter().filter_map(|r| r.height).max()
    }

    fn lag(&self, r: &Record) -> u64 {
        match (self.highest(), r.height) {
            (Some(top), Some(h)) => top.saturating_sub(h),
            _ => 0,
        }
    }

    /// Endpoint `i`'s standing at `now`.
    pub fn health(&self, i: usize, now: Instant) -> Health {
        let Some(r) = self.records.get(i) else {
            return Health::Failing;
        };
        if r.quarantined_until.is_some_and(|until| now < until) {
            Health::Quarantined
        } else if r.consecutive_errors >= self.settings.fail_after
            || self.lag(r) > self.settings.lag_tolerance
        {
            Health::Failing
        } else {
            Health::Healthy
        }
    }

    /// Endpoint `i`'s score (lower is better): moving-average latency in ms, plus [`ERROR_WEIGHT`] times its
    /// recent error rate, plus [`LAG_WEIGHT`] per block it lags.
    pub fn score(&self, i: usize) -> f64 {
        let Some(r) = self.records.get(i) else {
            return f64::INFINITY;
        };
        r.latency_ms.unwrap_or(UNMEASURED_MS)
            + ERROR_WEIGHT * r.error_rate
            + LAG_WEIGHT * self.lag(r) as f64
    }

    /// Standing first, then score: the order in which endpoints are worth trying.
    fn rank(&self, now: Instant) -> Vec<usize> {
        let mut all: Vec<usize> = (0..self.records.len()).collect();
        all.sort_by(|&a, &b| {
            self.health(a, now)
                .cmp(&self.health(b, now))
                .then(self.score(a).total_cmp(&self.score(b)))
                .then(a.cmp(&b))
        });
        all
    }

    /// Re-decides the current endpoint at `now` and returns it: kept while healthy and not clearly worse than the
    /// best healthy one; otherwise the best by standing and score.
    pub fn choose(&mut self, now: Instant) -> usize {
        let ranked = self.rank(now);
        let best = ranked.first().copied().unwrap_or(0);
        let keep = best == self.current
            || (self.health(self.current, now) == Health::Healthy
                && self.health(best, now) == Health::Healthy
                && self.score(self.current)
                    <= 2.0 * self.score(best) + self.settings.switch_margin);
        if !keep {
            self.current = best;
            self.switches += 1;
        }
        self.current
    }

    /// The endpoints a request tries, in order: the current one (re-decided at `now`) first, then the others by
    /// standing and score. Quarantined endpoints are left out unless every endpoint is quarantined.
    pub fn order(&mut self, now: Instant) -> Vec<usize> {
        let current = self.choose(now);
        let mut out = vec![current];
        out.extend(self.rank(now).into_iter().filter(|&i| i != current));
        let usable: Vec<usize> = out
            .iter()
            .copied()
            .filter(|&i| self.health(i, now) != Health::Quarantined)
            .collect();
        if usable.is_empty() {
            out
        } else {
            usable
        }
    }

    /// Every endpoint as operators see it at `now`.
    pub fn view(&self, now: Instant) -> Vec<EndpointView> {
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let state = self.health(i, now);
                EndpointView {
                    url: r.url.clone(),
                    state,
                    score: (self.score(i) * 10.0).round() / 10.0,
                    height: r.height,
                    latency_ms: r.latency_ms.map(|l| (l * 10.0).round() / 10.0),
                    errors: r.errors,
                    current: i == self.current,
                    last_error: r.last_error.clone(),
                    quarantine_reason: match state {
                        Health::Quarantined => r.quarantine_reason.clone(),
                        _ => None,
                    },
                    quarantined_for_secs: r
                        .quarantined_until
                        .filter(|until| now < *until)
                        .map(|until| until.duration_since(now).as_secs()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> PoolState {
        let urls: Vec<String> = (0..n).map(|i| format!("http://node-{i}")).collect();
        PoolState::new(&urls, PoolSettings::default())
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_endpoint_is_current_until_something_is_known() {
        let mut p = pool(3);
        let now = Instant::now();
        assert_eq!(p.current(), 0);
        assert_eq!(p.order(now), [0, 1, 2]);
        assert!(p.view(now).iter().all(|e| e.state == Health::Healthy));
    }

    #[test]
    fn a_failed_request_moves_reads_to_the_next_endpoint_and_an_answer_brings_it_back_to_healthy() {
        let mut p = pool(2);
        let now = Instant::now();
        p.failed(0, "connection refused");
        assert_eq!(p.health(0, now), Health::Failing);
        assert_eq!(p.order(now), [1, 0]);
        assert_eq!(p.current(), 1);
        assert_eq!(p.switches(), 1);
        // Back and healthy, but the current endpoint stays while it is healthy and not clearly worse.
        p.probed(0, 10, 5 * MS);
        p.probed(1, 10, 5 * MS);
        assert_eq!(p.health(0, now), Health::Healthy);
        assert_eq!(p.order(now), [1, 0]);
        assert_eq!(p.switches(), 1);
    }

    #[test]
    fn a_much_faster_endpoint_takes_over_a_slow_one_but_a_slightly_faster_one_does_not() {
        let mut p = pool(3);
        let now = Instant::now();
        p.probed(0, 10, 400 * MS);
        p.probed(1, 10, 300 * MS);
        p.probed(2, 10, 20 * MS);
        assert_eq!(p.choose(now), 2);
        for _ in 0..15 {
            p.probed(1, 10, 12 * MS);
        }
        // 1 is now faster than 2 but not by enough to move.
        assert!(p.score(1) < p.score(2));
        assert_eq!(p.choose(now), 2);
    }

    #[test]
    fn an_endpoint_lagging_beyond_the_tolerance_is_failing_and_left() {
        let mut p = pool(2);
        let now = Instant::now();
        p.probed(0, 100, 5 * MS);
        p.probed(1, 100, 50 * MS);
        assert_eq!(p.choose(now), 0);
        p.probed(1, 120, 50 * MS);
        p.probed(0, 114, 5 * MS);
        assert_eq!(p.health(0, now), Health::Failing);
        assert_eq!(p.choose(now), 1);
        // Within the tolerance it is healthy again (and scored by its lag).
        p.probed(0, 118, 5 * MS);
        assert_eq!(p.health(0, now), Health::Healthy);
        assert!(p.score(0) > 5.0);
    }

    #[test]
    fn a_quarantined_endpoint_is_not_tried_until_its_quarantine_ends() {
        let mut p = pool(2);
        let now = Instant::now();
        p.quarantine(0, "header refused", now);
        assert_eq!(p.health(0, now), Health::Quarantined);
        assert_eq!(p.order(now), [1]);
        let view = p.view(now);
        assert_eq!(view[0].quarantine_reason.as_deref(), Some("header refused"));
        assert_eq!(view[0].quarantined_for_secs, Some(300));
        assert!(view[1].current);
        let later = now + Duration::from_secs(301);
        assert_eq!(p.health(0, later), Health::Healthy);
        assert_eq!(p.order(later), [1, 0]);
        assert_eq!(p.view(later)[0].quarantine_reason, None);
    }

    #[test]
    fn with_every_endpoint_quarantined_they_are_still_tried() {
        let mut p = pool(2);
        let now = Instant::now();
        p.quarantine(0, "x", now);
        p.quarantine(1, "y", now);
        assert_eq!(p.order(now).len(), 2);
    }

    #[test]
    fn failing_endpoints_stay_in_the_order_behind_the_healthy_ones() {
        let mut p = pool(3);
        let now = Instant::now();
        p.failed(0, "down");
        p.failed(1, "down");
        assert_eq!(p.order(now), [2, 0, 1]);
        p.failed(2, "down");
        // All failing: the one with the fewest recent errors leads, and every one is still tried.
        assert_eq!(p.order(now).len(), 3);
    }

    #[test]
    fn errors_raise_the_score_and_decay_with_answers() {
        let mut p = pool(1);
        p.probed(0, 1, 10 * MS);
        let clean = p.score(0);
        p.failed(0, "timeout");
        let hurt = p.score(0);
        assert!(hurt > clean + 200.0, "{hurt} vs {clean}");
        for _ in 0..20 {
            p.succeeded(0);
        }
        assert!(p.score(0) < clean + 1.0);
        assert_eq!(p.view(Instant::now())[0].errors, 1);
    }

    #[test]
    fn an_empty_list_still_has_one_failing_entry() {
        let mut p = PoolState::new(&[], PoolSettings::default());
        let now = Instant::now();
        assert_eq!(p.len(), 1);
        assert_eq!(p.health(0, now), Health::Failing);
        assert_eq!(p.order(now), [0]);
    }
}
