//! Who may change things through the admin server: the bearer token from `[admin] token_file` (compared in
//! constant time), one-time authorisations that each mutating request consumes, a per-token rate limit, and a
//! per-source limit on failed authentications so a token cannot be guessed by trying many.
//! Pure logic with the clock passed in, so it is tested without a server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long an issued authorisation stays usable.
pub const AUTHORISATION_TTL: Duration = Duration::from_secs(60);
/// Requests a token may make in a burst (issuing authorisations and mutating requests both count).
pub const RATE_BURST: f64 = 10.0;
/// Requests a token regains per second after a burst.
pub const RATE_PER_SEC: f64 = 0.5;

/// Failed authentications a source may make in a burst before it is refused without its token being looked at.
pub const FAILURE_BURST: f64 = 5.0;
/// Failed authentications a source regains per second (one every 12 s).
pub const FAILURE_PER_SEC: f64 = 1.0 / 12.0;
/// Sources whose failures are remembered at most; beyond it the oldest are forgotten, so a flood of addresses
/// cannot grow the table without bound.
const MAX_SOURCES: usize = 4096;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The service has no token file, so nothing may be changed.
    #[error("mutating endpoints are disabled: [admin] token_file is not set")]
    Disabled,
    /// No or a wrong bearer token.
    #[error("missing or wrong bearer token")]
    Token,
    /// No one-time authorisation, or one that was used, expired or never issued.
    #[error("missing, used or expired one-time authorisation (POST /authorisations issues one)")]
    Authorisation,
    /// The token made too many requests.
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited {
        /// When a request will be allowed again.
        retry_after_secs: u64,
    },
}

/// Equality whose time does not depend on where the inputs differ (or on their lengths): both are hashed and
/// the digests compared with every byte folded in.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The token from a `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Refills at `rate` up to `burst`, then takes one if there is one; else says how long until there is.
    fn take(&mut self, burst: f64, rate: f64, now: Instant) -> Result<(), Denied> {
        self.refill(burst, rate, now);
        if self.tokens < 1.0 {
            let wait = ((1.0 - self.tokens) / rate).ceil().max(1.0);
            return Err(Denied::RateLimited {
                retry_after_secs: wait as u64,
            });
        }
        self.tokens -= 1.0;
        Ok(())
    }

    fn refill(&mut self, burst: f64, rate: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
    }
}

/// The admin server's authorisation state.
pub struct Gate {
    token: Option<String>,
    issued: HashMap<String, Instant>,
    buckets: HashMap<[u8; 32], Bucket>,
    failures: HashMap<IpAddr, Bucket>,
}

impl Gate {
    /// A gate for `token` (`None`: mutating endpoints disabled).
    pub fn new(token: Option<String>) -> Self {
        Self {
            token,
            issued: HashMap::new(),
            buckets: HashMap::new(),
            failures: HashMap::new(),
        }
    }

    /// Whether mutating endpoints are enabled.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    fn check_token(&self, presented: Option<&str>) -> Result<(), Denied> {
        let Some(expected) = &self.token else {
            return Err(Denied::Disabled);
        };
        match presented {
            Some(p) if constant_time_eq(p.as_bytes(), expected.as_bytes()) => Ok(()),
            _ => Err(Denied::Token),
        }
    }

    /// Counts one request of `token` against its rate limit.
    fn spend(&mut self, token: &str, now: Instant) -> Result<(), Denied> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.buckets
            .entry(key)
            .or_insert(Bucket {
                tokens: RATE_BURST,
                at: now,
            })
            .take(RATE_BURST, RATE_PER_SEC, now)
    }

    /// Refuses `source` while it has used up its failed authentications; then checks the token, counting a
    /// wrong one against the source.
    fn authenticate(
        &mut self,
        source: IpAddr,
        presented: Option<&str>,
        now: Instant,
    ) -> Result<(), Denied> {
        if let Some(bucket) = self.failures.get_mut(&source) {
            bucket.refill(FAILURE_BURST, FAILURE_PER_SEC, now);
            if bucket.tokens < 1.0 {
                return bucket.take(FAILURE_BURST, FAILURE_PER_SEC, now);
            }
        }
        let checked = self.check_token(presented);
        if checked == Err(Denied::Token) {
            if self.failures.len() >= MAX_SOURCES && !self.failures.contains_key(&source) {
                // Forget the source that failed longest ago.
                if let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, b)| b.at)
                    .map(|(ip, _)| *ip)
                {
                    self.failures.remove(&oldest);
                }
            }
            let bucket = self.failures.entry(source).or_insert(Bucket {
                tokens: FAILURE_BURST,
                at: now,
            });
            // A failure spends one; the refusal of this request stays "wrong token".
            let _ = bucket.take(FAILURE_BURST, FAILURE_PER_SEC, now);
        }
        checked
    }

    /// Issues a one-time authorisation to the holder of the token; `random` is fresh randomness.
    pub fn issue(
        &mut self,
        source: IpAddr,
        presented: Option<&str>,
        random: [u8; 16],
        now: Instant,
    ) -> Result<String, Denied> {
        self.authenticate(source, presented, now)?;
        self.spend(presented.unwrap_or_default(), now)?;
        self.issued
            .retain(|_, at| now.saturating_duration_since(*at) < AUTHORISATION_TTL);
        let nonce = hex::encode(random);
        self.issued.insert(nonce.clone(), now);
        Ok(nonce)
    }

    /// Admits a mutating request: right token, an unused and unexpired authorisation (consumed here), and
    /// within the rate limit. Requests from `source` are refused while it has failed to authenticate too often.
    pub fn admit(
        &mut self,
        source: IpAddr,
        presented: Option<&str>,
        authorisation: Option<&str>,
        now: Instant,
    ) -> Result<(), Denied> {
        self.authenticate(source, presented, now)?;
        let issued = authorisation
            .and_then(|a| self.issued.remove(a))
            .ok_or(Denied::Authorisation)?;
        if now.saturating_duration_since(issued) >= AUTHORISATION_TTL {
            return Err(Denied::Authorisation);
        }
        self.spend(presented.unwrap_or_default(), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret-longer"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("abc")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn without_a_token_everything_is_disabled() {
        let mut gate = Gate::new(None);
        let now = Instant::now();
        assert_eq!(
            gate.issue(HERE, Some("x"), [0; 16], now),
            Err(Denied::Disabled)
        );
        assert_eq!(
            gate.admit(HERE, Some("x"), Some("y"), now),
            Err(Denied::Disabled)
        );
    }

    #[test]
    fn an_authorisation_is_used_once_and_needs_the_token() {
        let mut gate = Gate::new(Some("t0k".into()));
        let now = Instant::now();
        assert_eq!(
            gate.issue(HERE, Some("bad"), [1; 16], now),
            Err(Denied::Token)
        );
        let a = gate.issue(HERE, Some("t0k"), [1; 16], now).unwrap();
        assert_eq!(
            gate.admit(HERE, Some("bad"), Some(&a), now),
            Err(Denied::Token)
        );
        assert_eq!(
            gate.admit(HERE, Some("t0k"), None, now),
            Err(Denied::Authorisation)
        );
        assert_eq!(gate.admit(HERE, Some("t0k"), Some(&a), now), Ok(()));
        assert_eq!(
            gate.admit(HERE, Some("t0k"), Some(&a), now),
            Err(Denied::Authorisation)
        );
    }

    #[test]
    fn an_authorisation_expires() {
        let mut gate = Gate::new(Some("t".into()));
        let now = Instant::now();
        let a = gate.issue(HERE, Some("t"), [2; 16], now).unwrap();
        let later = now + AUTHORISATION_TTL;
        assert_eq!(
            gate.admit(HERE, Some("t"), Some(&a), later),
            Err(Denied::Authorisation)
        );
    }

    #[test]
    fn failed_authentications_are_throttled_per_source() {
        let mut gate = Gate::new(Some("t".into()));
        let now = Instant::now();
        for i in 0..FAILURE_BURST as u8 {
            assert_eq!(
                gate.issue(HERE, Some("guess"), [i; 16], now),
                Err(Denied::Token)
            );
        }
        // Refused without the token being looked at: the right one is refused too, and says when to retry.
        assert_eq!(
            gate.issue(HERE, Some("t"), [50; 16], now),
            Err(Denied::RateLimited {
                retry_after_secs: 12
            })
        );
        assert!(matches!(
            gate.admit(HERE, Some("guess"), None, now),
            Err(Denied::RateLimited { .. })
        ));
        // Another source is not affected, and the source recovers with time.
        assert!(gate.issue(THERE, Some("t"), [51; 16], now).is_ok());
        let later = now + Duration::from_secs(12);
        assert!(gate.issue(HERE, Some("t"), [52; 16], later).is_ok());
        assert_eq!(
            gate.issue(HERE, Some("guess"), [53; 16], later),
            Err(Denied::Token)
        );
        assert!(matches!(
            gate.issue(HERE, Some("guess"), [54; 16], later),
            Err(Denied::RateLimited { .. })
        ));
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let mut gate = Gate::new(Some("t".into()));
        let now = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = gate.issue(ip, Some("guess"), [0; 16], now);
        }
        assert_eq!(gate.failures.len(), MAX_SOURCES);
    }

    #[test]
    fn the_rate_limit_refills_over_time() {
        let mut gate = Gate::new(Some("t".into()));
        let now = Instant::now();
        for i in 0..RATE_BURST as u8 {
            gate.issue(HERE, Some("t"), [i; 16], now).unwrap();
        }
        assert!(matches!(
            gate.issue(HERE, Some("t"), [99; 16], now),
            Err(Denied::RateLimited {
                retry_after_secs: 2
            })
        ));
        let later = now + Duration::from_secs(2);
        assert!(gate.issue(HERE, Some("t"), [98; 16], later).is_ok());
    }
}
