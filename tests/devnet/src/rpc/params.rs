//! The method table and argument decoding: one place that knows each method's argument names and wire types, so
//! JSON-RPC objects, JSON-RPC arrays and URI query strings all decode the way CometBFT decodes them.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use serde_json::{Map, Value};
use tendermint::Hash;

use super::error::RpcError;

/// How an argument is encoded on the wire, following CometBFT's Go types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `int`/`int64`: a JSON string of digits (amino JSON), a JSON number is accepted too.
    Int,
    /// `string`.
    Str,
    /// `[]byte`: base64 in JSON.
    Bytes,
    /// `bytes.HexBytes`: hex in JSON.
    HexBytes,
    /// `bool`.
    Bool,
    /// A 32-byte hash: CometBFT takes `[]byte` (base64) for `tx`/`block_by_hash` and `HexBytes` for
    /// `header_by_hash`, and clients mix them up, so either encoding is accepted.
    HashBytes,
}

/// One RPC method: its name, its arguments in positional order, and whether it only exists on WebSockets.
#[derive(Debug)]
pub(crate) struct MethodSpec {
    pub name: &'static str,
    pub args: &'static [(&'static str, Kind)],
    pub ws_only: bool,
}

const fn m(name: &'static str, args: &'static [(&'static str, Kind)]) -> MethodSpec {
    MethodSpec {
        name,
        args,
        ws_only: false,
    }
}

const fn ws(name: &'static str, args: &'static [(&'static str, Kind)]) -> MethodSpec {
    MethodSpec {
        name,
        args,
        ws_only: true,
    }
}

use Kind::*;

/// Every served method, with CometBFT v0.38's argument names and order.
pub(crate) const METHODS: &[MethodSpec] = &[
    ws("subscribe", &[("query", Str)]),
    ws("unsubscribe", &[("query", Str)]),
    ws("unsubscribe_all", &[]),
    m("health", &[]),
    m("status", &[]),
    m("net_info", &[]),
    m("blockchain", &[("minHeight", Int), ("maxHeight", Int)]),
    m("genesis", &[]),
    m("block", &[("height", Int)]),
    m("block_by_hash", &[("hash", HashBytes)]),
    m("block_results", &[("height", Int)]),
    m("commit", &[("height", Int)]),
    m("header", &[("height", Int)]),
    m("header_by_hash", &[("hash", HashBytes)]),
    m("tx", &[("hash", HashBytes), ("prove", Bool)]),
    m(
        "tx_search",
        &[
            ("query", Str),
            ("prove", Bool),
            ("page", Int),
            ("per_page", Int),
            ("order_by", Str),
        ],
    ),
    m(
        "block_search",
        &[
            ("query", Str),
            ("page", Int),
            ("per_page", Int),
            ("order_by", Str),
        ],
    ),
    m(
        "validators",
        &[("height", Int), ("page", Int), ("per_page", Int)],
    ),
    m("consensus_params", &[("height", Int)]),
    m("broadcast_tx_commit", &[("tx", Bytes)]),
    m("broadcast_tx_sync", &[("tx", Bytes)]),
    m("broadcast_tx_async", &[("tx", Bytes)]),
    m(
        "abci_query",
        &[
            ("path", Str),
            ("data", HexBytes),
            ("height", Int),
            ("prove", Bool),
        ],
    ),
    m("abci_info", &[]),
];

/// Looks a method up by name.
pub(crate) fn spec(name: &str) -> Option<&'static MethodSpec> {
    METHODS.iter().find(|s| s.name == name)
}

/// A method's decoded arguments, each already checked against its [`Kind`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Params {
    values: Map<String, Value>,
}

fn json_err(msg: impl std::fmt::Display) -> RpcError {
    RpcError::InvalidParams(format!("error converting json params to arguments: {msg}"))
}

fn http_err(msg: impl std::fmt::Display) -> RpcError {
    RpcError::InvalidParams(format!("error converting http params to arguments: {msg}"))
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(s)
        .ok()
        .or_else(|| STANDARD_NO_PAD.decode(s).ok())
}

/// Checks that a JSON value can be read as `kind`; returns why not.
fn check(kind: Kind, v: &Value) -> Result<(), String> {
    let ok = match kind {
        Int => as_int(v).is_some(),
        Str => v.is_string(),
        Bytes => v.as_str().and_then(decode_base64).is_some(),
        HexBytes => v.as_str().and_then(|s| hex::decode(s).ok()).is_some(),
        Bool => as_bool(v).is_some(),
        HashBytes => v.as_str().and_then(decode_hash).is_some(),
    };
    if ok {
        Ok(())
    } else {
        let expected = match kind {
            Int => "an int64 (string or number)",
            Str => "a string",
            Bytes => "base64-encoded bytes",
            HexBytes => "hex-encoded bytes",
            Bool => "a bool",
            HashBytes => "a 32-byte hash, base64 or hex",
        };
        Err(format!("expected {expected}, got {v}"))
    }
}

/// Base64 that decodes to 32 bytes, else 64 hex digits; a 64-digit hex string is also valid base64 (48 bytes), so
/// the length decides and the two never clash.
fn decode_hash(s: &str) -> Option<[u8; 32]> {
    decode_base64(s)
        .filter(|b| b.len() == 32)
        .or_else(|| hex::decode(s).ok().filter(|b| b.len() == 32))
        .and_then(|b| b.try_into().ok())
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

impl Params {
    /// Decodes JSON-RPC `params`: an object by name, an array by position, or absent.
    pub(crate) fn from_json(spec: &MethodSpec, params: Option<&Value>) -> Result<Self, RpcError> {
        let mut values = Map::new();
        match params {
            None | Some(Value::Null) => {}
            Some(Value::Object(obj)) => {
                for (name, kind) in spec.args {
                    if let Some(v) = obj.get(*name).filter(|v| !v.is_null()) {
                        check(*kind, v).map_err(|e| json_err(format!("{name}: {e}")))?;
                        values.insert((*name).to_owned(), v.clone());
                    }
                }
            }
            Some(Value::Array(arr)) => {
                if arr.len() != spec.args.len() {
                    let names: Vec<&str> = spec.args.iter().map(|(n, _)| *n).collect();
                    return Err(json_err(format!(
                        "expected {} parameters ({names:?}), got {}",
                        spec.args.len(),
                        arr.len()
                    )));
                }
                for ((name, kind), v) in spec.args.iter().zip(arr) {
                    if v.is_null() {
                        continue;
                    }
                    check(*kind, v).map_err(|e| json_err(format!("{name}: {e}")))?;
                    values.insert((*name).to_owned(), v.clone());
                }
            }
            Some(other) => {
                return Err(json_err(format!(
                    "unknown type for JSON params: {other}. Expected map or array"
                )))
            }
        }
        Ok(Self { values })
    }

    /// Decodes URI query arguments with CometBFT's conventions: integers bare, strings quoted, bytes as `0x`-hex
    /// or as a quoted string, anything else as JSON.
    pub(crate) fn from_uri(
        spec: &MethodSpec,
        query: &[(String, String)],
    ) -> Result<Self, RpcError> {
        let mut values = Map::new();
        for (name, kind) in spec.args {
            // Go's url.Values.Get returns the first value of a repeated key.
            let Some(raw) = query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
            else {
                continue;
            };
            if raw.is_empty() {
                continue;
            }
            let v = uri_value(*kind, raw).map_err(|e| http_err(format!("{name}: {e}")))?;
            check(*kind, &v).map_err(|e| http_err(format!("{name}: {e}")))?;
            values.insert((*name).to_owned(), v);
        }
        Ok(Self { values })
    }

    /// An integer argument, `None` when absent.
    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        self.values.get(name).and_then(as_int)
    }

    /// A string argument, `None` when absent.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// A `[]byte` argument (base64 on the wire), `None` when absent.
    pub(crate) fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.values
            .get(name)
            .and_then(Value::as_str)
            .and_then(decode_base64)
    }

    /// A `HexBytes` argument, `None` when absent.
    pub(crate) fn hex(&self, name: &str) -> Option<Vec<u8>> {
        self.values
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| hex::decode(s).ok())
    }

    /// A bool argument, false when absent (Go's zero value).
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.values.get(name).and_then(as_bool).unwrap_or(false)
    }

    /// A 32-byte hash argument, `None` when absent.
    pub(crate) fn hash(&self, name: &str) -> Option<Hash> {
        self.values
            .get(name)
            .and_then(Value::as_str)
            .and_then(decode_hash)
            .map(Hash::Sha256)
    }
}

/// Turns one URI argument into the JSON value a JSON-RPC client would have sent for it.
fn uri_value(kind: Kind, raw: &str) -> Result<Value, String> {
    let is_int = {
        let digits = raw.strip_prefix('-').unwrap_or(raw);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    let is_quoted = raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"');
    let hex_body = raw
        .get(..2)
        .filter(|p| p.eq_ignore_ascii_case("0x"))
        .map(|_| &raw[2..]);

    if is_int && kind == Int {
        return Ok(Value::String(raw.to_owned()));
    }
    if let Some(body) = hex_body {
        let bytes = match kind {
            Str | Bytes | HexBytes | HashBytes => hex::decode(body).map_err(|e| e.to_string())?,
            Int | Bool => return Err(format!("got a hex string arg, but expected {kind:?}")),
        };
        return Ok(bytes_value(kind, bytes));
    }
    if is_quoted && matches!(kind, Bytes | HexBytes | HashBytes) {
        let s: String = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        return Ok(bytes_value(kind, s.into_bytes()));
    }
    serde_json::from_str(raw).map_err(|e| format!("{e} (in {raw:?})"))
}

fn bytes_value(kind: Kind, bytes: Vec<u8>) -> Value {
    match kind {
        HexBytes | HashBytes => Value::String(hex::encode(bytes)),
        Str => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        _ => Value::String(STANDARD.encode(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn uri_conventions_decode_like_cometbft() {
        let spec = spec("abci_query").expect("abci_query is served");
        let p = Params::from_uri(
            spec,
            &pairs(&[
                ("path", "\"store/ibc/key\""),
                ("data", "0xABCD"),
                ("height", "7"),
                ("prove", "true"),
            ]),
        )
        .expect("valid uri params");
        assert_eq!(p.string("path").as_deref(), Some("store/ibc/key"));
        assert_eq!(p.hex("data"), Some(vec![0xab, 0xcd]));
        assert_eq!(p.int("height"), Some(7));
        assert!(p.bool("prove"));

        let tx = Params::from_uri(
            super::spec("broadcast_tx_sync").expect("served"),
            &pairs(&[("tx", "\"a=b\"")]),
        )
        .expect("quoted bytes");
        assert_eq!(tx.bytes("tx"), Some(b"a=b".to_vec()));
    }

    #[test]
    fn bad_arguments_are_invalid_params() {
        let spec = spec("block").expect("served");
        let err = Params::from_uri(spec, &pairs(&[("height", "0x10")])).unwrap_err();
        assert_eq!(err.code(), -32602);
        let err = Params::from_json(spec, Some(&serde_json::json!({"height": "ten"}))).unwrap_err();
        assert_eq!(err.code(), -32602);
        let err = Params::from_json(spec, Some(&serde_json::json!(["1", "2"]))).unwrap_err();
        assert!(err.to_string().contains("expected 1 parameters"));
        let err = Params::from_json(spec, Some(&serde_json::json!(5))).unwrap_err();
        assert!(err.to_string().contains("Expected map or array"));
    }

    #[test]
    fn hash_accepts_base64_and_hex() {
        let spec = spec("tx").expect("served");
        let raw = [7u8; 32];
        let b64 = Params::from_json(
            spec,
            Some(&serde_json::json!({"hash": STANDARD.encode(raw)})),
        )
        .expect("base64");
        let hexed = Params::from_json(
            spec,
            Some(&serde_json::json!({"hash": hex::encode_upper(raw)})),
        )
        .expect("hex");
        assert_eq!(b64.hash("hash"), Some(Hash::Sha256(raw)));
        assert_eq!(hexed.hash("hash"), Some(Hash::Sha256(raw)));
        let uri = Params::from_uri(
            spec,
            &pairs(&[("hash", &format!("0x{}", hex::encode(raw)))]),
        )
        .expect("uri");
        assert_eq!(uri.hash("hash"), Some(Hash::Sha256(raw)));
        assert!(Params::from_json(spec, Some(&serde_json::json!({"hash": "AAAA"}))).is_err());
    }
}
