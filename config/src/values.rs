//! Value types that check themselves while the file is read, so a bad value is reported at its own key.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Reads a string with `FromStr` and reports the parse error as a serde error at the current key.
macro_rules! deserialize_from_str {
    ($ty:ty) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(de::Error::custom)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

/// Reads `host:port` with a numeric host, naming the expected form when it does not parse.
pub fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<std::net::SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        de::Error::custom(format!(
            "{text:?} is not a socket address such as \"127.0.0.1:3000\""
        ))
    })
}

/// A span of time written like `10s`, `500ms` or `336h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s)
            .map(Self)
            .map_err(|_| format!("{s:?} is not a duration such as \"10s\", \"500ms\" or \"336h\""))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}
deserialize_from_str!(HumanDuration);

/// A duration that must be longer than zero: timeouts, periods and intervals where zero would mean spinning
/// or expiring at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PositiveDuration(pub Duration);

impl PositiveDuration {
    /// Wraps a duration known to be positive; used for built-in defaults.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// Wraps a duration known to be positive; used for built-in defaults.
    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    /// The duration itself.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for PositiveDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let HumanDuration(d) = s.parse()?;
        if d.is_zero() {
            return Err(format!("{s:?} must be greater than zero"));
        }
        Ok(Self(d))
    }
}

impl fmt::Display for PositiveDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}
deserialize_from_str!(PositiveDuration);

/// A fee price per unit of gas, written `<amount><denom>` as the Cosmos SDK does, e.g. `0.025stake`.
#[derive(Debug, Clone, PartialEq)]
pub struct GasPrice {
    /// Amount of `denom` paid per unit of gas.
    pub amount: f64,
    /// The fee denomination.
    pub denom: String,
}

impl FromStr for GasPrice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("{s:?} is not <amount><denom>, e.g. \"0.025stake\"");
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (amount, denom) = s.split_at(split);
        let amount: f64 = amount.parse().map_err(|_| err())?;
        // The SDK's denom rule: a letter, then 2..=127 of letters, digits and / : . _ -
        let denom_ok = denom.len() >= 3
            && denom.len() <= 128
            && denom.starts_with(|c: char| c.is_ascii_alphabetic())
            && denom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/:._-".contains(c));
        if !amount.is_finite() || !denom_ok {
            return Err(err());
        }
        Ok(Self {
            amount,
            denom: denom.to_owned(),
        })
    }
}

impl fmt::Display for GasPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.denom)
    }
}
deserialize_from_str!(GasPrice);

/// An amount of one denom, written `<integer><denom>` as the Cosmos SDK writes coins, e.g. `1000000stake`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// Amount in the denom's base unit.
    pub amount: u128,
    /// The denomination.
    pub denom: String,
}

impl FromStr for Coin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("{s:?} is not <integer amount><denom>, e.g. \"1000000stake\"");
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (amount, denom) = s.split_at(split);
        let amount: u128 = amount.parse().map_err(|_| err())?;
        if !denom.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(err());
        }
        // The denom rule is GasPrice's; a coin is a gas price with a whole amount.
        let price: GasPrice = format!("0{denom}").parse().map_err(|_| err())?;
        Ok(Self {
            amount,
            denom: price.denom,
        })
    }
}

impl fmt::Display for Coin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.denom)
    }
}
deserialize_from_str!(Coin);

/// The share of validator power a light client must see signing a header it did not verify step by step.
/// Light client security needs it in (1/3, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustThreshold {
    /// Numerator of the fraction.
    pub numerator: u64,
    /// Denominator of the fraction.
    pub denominator: u64,
}

impl TrustThreshold {
    /// The usual two thirds.
    pub const TWO_THIRDS: Self = Self {
        numerator: 2,
        denominator: 3,
    };
}

impl FromStr for TrustThreshold {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s.split_once('/').and_then(|(n, d)| {
            Some((n.trim().parse::<u64>().ok()?, d.trim().parse::<u64>().ok()?))
        });
        let Some((numerator, denominator)) = parsed.filter(|(_, d)| *d > 0) else {
            return Err(format!("{s:?} is not a fraction such as \"2/3\""));
        };
        // n/d > 1/3 and n/d <= 1, in integers to avoid rounding.
        let (n, d) = (u128::from(numerator), u128::from(denominator));
        if 3 * n <= d || n > d {
            return Err(format!("{s:?} is outside (1/3, 1]"));
        }
        Ok(Self {
            numerator,
            denominator,
        })
    }
}

impl fmt::Display for TrustThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}
deserialize_from_str!(TrustThreshold);

/// A node address. `host:port` without a scheme (as in ADR-002's example) means plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(url::Url);

impl Address {
    /// The full URL, scheme included.
    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The same host and port with another scheme and path, e.g. the WebSocket endpoint of an RPC node.
    pub fn with_scheme_and_path(&self, scheme: &str, path: &str) -> Option<Self> {
        let host = self.0.host_str()?;
        let port = self.0.port_or_known_default()?;
        let text = format!("{scheme}://{host}:{port}{path}");
        url::Url::parse(&text).ok().map(Self)
    }
}

impl FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || {
            format!("{s:?} is not an address; expected host:port or a URL such as \"http://127.0.0.1:26657\"")
        };
        let text = if s.contains("://") {
            s.to_owned()
        } else {
            format!("http://{s}")
        };
        let url = url::Url::parse(&text).map_err(|_| err())?;
        let known = ["http", "https", "ws", "wss", "grpc", "tcp"];
        if !known.contains(&url.scheme()) || url.host_str().is_none_or(str::is_empty) {
            return Err(err());
        }
        Ok(Self(url))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Url always adds a trailing slash to an empty path; operators wrote none.
        let text = self.0.as_str();
        f.write_str(text.strip_suffix('/').unwrap_or(text))
    }
}
deserialize_from_str!(Address);

/// A `port/channel` pattern for packet filters; `*` matches any run of characters and `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPattern {
    /// Pattern for the port id.
    pub port: String,
    /// Pattern for the channel id.
    pub channel: String,
}

impl ChannelPattern {
    /// Whether the pattern covers this port and channel.
    pub fn matches(&self, port: &str, channel: &str) -> bool {
        wildcard_match(self.port.as_bytes(), port.as_bytes())
            && wildcard_match(self.channel.as_bytes(), channel.as_bytes())
    }
}

impl FromStr for ChannelPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('/') {
            Some((port, channel))
                if !port.is_empty() && !channel.is_empty() && !channel.contains('/') =>
            {
                Ok(Self {
                    port: port.to_owned(),
                    channel: channel.to_owned(),
                })
            }
            _ => Err(format!(
                "{s:?} is not a <port>/<channel> pattern such as \"transfer/channel-*\""
            )),
        }
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.channel)
    }
}
deserialize_from_str!(ChannelPattern);

/// Glob matching with `*` and `?`, iterative with one backtrack point, so it is linear in practice and never
/// recurses on hostile patterns.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject() {
        assert_eq!(
            "336h".parse::<PositiveDuration>().unwrap().get(),
            Duration::from_secs(336 * 3600)
        );
        assert_eq!(
            "0s".parse::<PositiveDuration>().unwrap_err(),
            "\"0s\" must be greater than zero"
        );
        assert!("0s".parse::<HumanDuration>().is_ok());
        assert!("ten".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn coins() {
        let c: Coin = "1000000stake".parse().unwrap();
        assert_eq!((c.amount, c.denom.as_str()), (1_000_000, "stake"));
        assert_eq!(c.to_string(), "1000000stake");
        for bad in ["stake", "1.5stake", "100", "-1stake", "10x", ""] {
            assert!(bad.parse::<Coin>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn gas_prices() {
        let p: GasPrice = "0.025stake".parse().unwrap();
        assert_eq!((p.amount, p.denom.as_str()), (0.025, "stake"));
        let ibc: GasPrice = "1ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2"
            .parse()
            .unwrap();
        assert!(ibc.denom.starts_with("ibc/"));
        for bad in ["abc", "0.025", "stake", "1.2.3stake", "1st", "1 stake"] {
            assert!(bad.parse::<GasPrice>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn trust_threshold_bounds() {
        assert_eq!(
            "2/3".parse::<TrustThreshold>().unwrap(),
            TrustThreshold::TWO_THIRDS
        );
        assert!("1/1".parse::<TrustThreshold>().is_ok());
        assert!("34/100".parse::<TrustThreshold>().is_ok());
        assert_eq!(
            "1/3".parse::<TrustThreshold>().unwrap_err(),
            "\"1/3\" is outside (1/3, 1]"
        );
        assert!("4/3".parse::<TrustThreshold>().is_err());
        assert!("1/0".parse::<TrustThreshold>().is_err());
        assert!("half".parse::<TrustThreshold>().is_err());
    }

    #[test]
    fn addresses_default_to_http() {
        let a: Address = "localhost:26657".parse().unwrap();
        assert_eq!(a.to_string(), "http://localhost:26657");
        let ws = a.with_scheme_and_path("ws", "/websocket").unwrap();
        assert_eq!(ws.to_string(), "ws://localhost:26657/websocket");
        assert!("https://rpc.example.org".parse::<Address>().is_ok());
        assert!("ftp://x:1".parse::<Address>().is_err());
        assert!("not an address".parse::<Address>().is_err());
    }

    #[test]
    fn wildcards() {
        let p: ChannelPattern = "transfer/channel-*".parse().unwrap();
        assert!(p.matches("transfer", "channel-0"));
        assert!(p.matches("transfer", "channel-"));
        assert!(!p.matches("transfer", "chan-0"));
        assert!(!p.matches("ica", "channel-0"));
        let q: ChannelPattern = "*/channel-?".parse().unwrap();
        assert!(q.matches("icahost", "channel-7"));
        assert!(!q.matches("icahost", "channel-17"));
        let r: ChannelPattern = "a*b*c/*".parse().unwrap();
        assert!(r.matches("axxbyyc", "x"));
        assert!(!r.matches("axxbyy", "x"));
        assert!("transfer".parse::<ChannelPattern>().is_err());
        assert!("/channel-0".parse::<ChannelPattern>().is_err());
    }
}
