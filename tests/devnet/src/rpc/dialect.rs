//! The CometBFT version the devnet answers as (`--cometbft 0.34|0.37|0.38|1.0|sei`). Answers are built in 0.38's
//! shape and adapted here, where the versions differ on the wire in what a relayer reads:
//!
//! - `status` reports the version (relayers pick their RPC dialect from it);
//! - before 0.38, `block_results` lists block events as `begin_block_events` / `end_block_events` instead of
//!   `finalize_block_events`, has no `app_hash`, and `broadcast_tx_commit` names the result `deliver_tx`; the
//!   `NewBlock` event carries `result_begin_block` / `result_end_block` and no `block_id`;
//! - 0.34 writes event attribute keys and values in base64 everywhere (results, searches, WebSocket events) and
//!   has no `header` / `header_by_hash` methods;
//! - 1.0 answers these methods as 0.38 does;
//! - `sei` mixes them as Sei does: 0.38's version and shapes, with 0.34's base64 attributes.

use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// A CometBFT version's RPC dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// CometBFT 0.34 (Tendermint Core's successor): base64 attributes, begin/end block events.
    V0_34,
    /// CometBFT 0.37: plain attributes, begin/end block events.
    V0_37,
    /// CometBFT 0.38: plain attributes, `finalize_block_events`.
    #[default]
    V0_38,
    /// CometBFT 1.0: as 0.38 for the methods the devnet serves.
    V1_0,
    /// Sei's mix: reports 0.38 and answers in 0.38's shapes, but writes attributes in base64 as 0.34 does.
    Sei,
}

/// Why a `--cometbft` value names no dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown CometBFT version {0:?}; expected 0.34, 0.37, 0.38, 1.0 or sei")]
pub struct UnknownDialect(String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0.34" => Ok(Self::V0_34),
            "0.37" => Ok(Self::V0_37),
            "0.38" => Ok(Self::V0_38),
            "1.0" => Ok(Self::V1_0),
            "sei" => Ok(Self::Sei),
            other => Err(UnknownDialect(other.to_owned())),
        }
    }
}

impl Dialect {
    /// The version `status` reports.
    pub fn node_version(self) -> &'static str {
        match self {
            Self::V0_34 => "0.34.35",
            Self::V0_37 => "0.37.15",
            Self::V0_38 | Self::Sei => crate::node::NODE_VERSION,
            Self::V1_0 => "1.0.1",
        }
    }

    fn begin_end_blocks(self) -> bool {
        matches!(self, Self::V0_34 | Self::V0_37)
    }

    fn base64_attributes(self) -> bool {
        matches!(self, Self::V0_34 | Self::Sei)
    }

    /// Whether `method` exists in this version.
    pub(crate) fn has_method(self, method: &str) -> bool {
        !(self == Self::V0_34 && matches!(method, "header" | "header_by_hash"))
    }

    /// Adapts the 0.38-shaped `result` of `method`.
    pub(crate) fn adapt_result(self, method: &str, result: &mut Value) {
        match method {
            // 0.38 is what the node itself reports.
            "status" if !matches!(self, Self::V0_38 | Self::Sei) => {
                result["node_info"]["version"] = json!(self.node_version())
            }
            "block_results" if self.begin_end_blocks() => {
                if let Some(obj) = result.as_object_mut() {
                    let events = obj.remove("finalize_block_events").unwrap_or(Value::Null);
                    obj.remove("app_hash");
                    obj.insert("begin_block_events".into(), events);
                    obj.insert("end_block_events".into(), Value::Null);
                }
            }
            "broadcast_tx_commit" if self.begin_end_blocks() => {
                if let Some(obj) = result.as_object_mut() {
                    if let Some(r) = obj.remove("tx_result") {
                        obj.insert("deliver_tx".into(), r);
                    }
                }
            }
            _ => {}
        }
        if self.base64_attributes() {
            base64_attributes(result);
        }
    }

    /// Adapts a 0.38-shaped WebSocket event frame's `result`.
    pub(crate) fn adapt_event(self, frame: &mut Value) {
        let data = &mut frame["data"];
        if self.begin_end_blocks() && data["type"] == "tendermint/event/NewBlock" {
            if let Some(value) = data["value"].as_object_mut() {
                value.remove("block_id");
                let finalize = value.remove("result_finalize_block").unwrap_or(Value::Null);
                let mut end = Map::new();
                if let Some(updates) = finalize.get("validator_updates") {
                    end.insert("validator_updates".into(), updates.clone());
                }
                let begin = match finalize.get("events") {
                    Some(events) => json!({ "events": events }),
                    None => json!({}),
                };
                value.insert("result_begin_block".into(), begin);
                value.insert("result_end_block".into(), Value::Object(end));
            }
        }
        if self.base64_attributes() {
            base64_attributes(data);
        }
    }
}

/// Rewrites every ABCI event's attribute keys and values to base64, as CometBFT 0.34 serialises them: any
/// `events` (or block-level `*_events`) array of objects with `type` and `attributes`, at any depth.
fn base64_attributes(v: &mut Value) {
    match v {
        Value::Object(obj) => {
            for (key, child) in obj.iter_mut() {
                match child {
                    Value::Array(events) if key == "events" || key.ends_with("_events") => {
                        for event in events.iter_mut() {
                            if let Some(Value::Array(attrs)) = event.get_mut("attributes") {
                                for attr in attrs.iter_mut() {
                                    for field in ["key", "value"] {
                                        if let Some(Value::String(s)) = attr.get_mut(field) {
                                            *s = STANDARD.encode(s.as_bytes());
                                        }
                                    }
                                }
                            }
                        }
                    }
                    _ => base64_attributes(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(base64_attributes),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Value {
        json!({
            "height": "5",
            "txs_results": [{"code": 0, "events": [
                {"type": "send_packet", "attributes": [{"key": "packet_sequence", "value": "1", "index": true}]}
            ]}],
            "finalize_block_events": null,
            "validator_updates": null,
            "consensus_param_updates": null,
            "app_hash": "AAAA"
        })
    }

    #[test]
    fn block_results_per_version() {
        let mut v38 = results();
        Dialect::V1_0.adapt_result("block_results", &mut v38);
        assert_eq!(v38, results());

        let mut v37 = results();
        Dialect::V0_37.adapt_result("block_results", &mut v37);
        assert!(v37.get("finalize_block_events").is_none() && v37.get("app_hash").is_none());
        assert_eq!(v37["begin_block_events"], Value::Null);
        assert_eq!(
            v37["txs_results"][0]["events"][0]["attributes"][0]["key"],
            "packet_sequence"
        );

        let mut v34 = results();
        Dialect::V0_34.adapt_result("block_results", &mut v34);
        let attr = &v34["txs_results"][0]["events"][0]["attributes"][0];
        assert_eq!(
            (attr["key"].as_str(), attr["value"].as_str()),
            (Some("cGFja2V0X3NlcXVlbmNl"), Some("MQ=="))
        );
        assert_eq!(attr["index"], true);

        // Sei: 0.38's shape and version, 0.34's attributes, block-level events included.
        let mut sei = results();
        sei["finalize_block_events"] =
            json!([{"type": "t", "attributes": [{"key": "k", "value": "v"}]}]);
        Dialect::Sei.adapt_result("block_results", &mut sei);
        assert_eq!(sei["app_hash"], "AAAA");
        assert_eq!(sei["txs_results"][0]["events"][0]["attributes"][0], *attr);
        assert_eq!(
            sei["finalize_block_events"][0]["attributes"][0],
            json!({"key": "aw==", "value": "dg=="})
        );
        let mut status = json!({"node_info": {"version": "0.38.12"}});
        Dialect::Sei.adapt_result("status", &mut status);
        assert_eq!(status["node_info"]["version"], "0.38.12");
    }

    #[test]
    fn versions_parse_and_report() {
        let all = ["0.34", "0.37", "0.38", "1.0", "sei"].map(|s| s.parse::<Dialect>().unwrap());
        assert_eq!(
            all.map(Dialect::node_version),
            ["0.34.35", "0.37.15", "0.38.12", "1.0.1", "0.38.12"]
        );
        assert!("0.35".parse::<Dialect>().is_err());
        assert!(!Dialect::V0_34.has_method("header") && Dialect::V0_37.has_method("header"));
    }
}
