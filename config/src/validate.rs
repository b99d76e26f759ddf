//! Semantic checks that a well-formed file must also pass before relayd acts on it.

use std::collections::HashMap;

use crate::locate::KeyPath;
use crate::model::{ChainConfig, ChainType, Config, ConnectionEnd};

/// One semantic problem, at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where the problem is.
    pub path: KeyPath,
    /// What is wrong.
    pub message: String,
}

/// Every semantic problem in `config`, in file order as far as sections allow.
pub fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut report = |path: KeyPath, message: String| issues.push(Issue { path, message });
    check_paths(config, &mut report);
    check_supervision(config, &mut report);
    check_clients(config, &mut report);
    check_telemetry(config, &mut report);
    check_caps(config, &mut report);
    check_chains(config, &mut report);
    check_connections(config, &mut report);
    issues
}

/// File and folder names: the OS refuses a NUL byte in one, so it is reported here rather than at first use.
fn check_paths(config: &Config, report: &mut impl FnMut(KeyPath, String)) {
    let mut named = vec![
        (
            KeyPath::root().key("global").key("data_dir"),
            config.global.data_dir.as_ref(),
        ),
        (
            KeyPath::root().key("admin").key("token_file"),
            config.admin.token_file.as_ref(),
        ),
    ];
    for (i, chain) in config.chains.iter().enumerate() {
        named.push((
            KeyPath::root().key("chains").index(i).key("key_file"),
            chain.key_file.as_ref(),
        ));
        for (j, file) in chain.key_files.iter().flatten().enumerate() {
            named.push((
                KeyPath::root()
                    .key("chains")
                    .index(i)
                    .key("key_files")
                    .index(j),
                Some(file),
            ));
        }
    }
    for (path, value) in named {
        let Some(value) = value else { continue };
        if value.as_os_str().as_encoded_bytes().contains(&0) {
            report(
                path,
                "contains a NUL byte, which no file name may hold".to_owned(),
            );
        } else if value.as_os_str().is_empty() {
            report(path, "is empty; name a file or folder".to_owned());
        }
    }
}

fn check_supervision(config: &Config, report: &mut impl FnMut(KeyPath, String)) {
    let s = &config.supervision;
    if s.backoff_base > s.backoff_cap {
        report(
            KeyPath::root().key("supervision").key("backoff_base"),
            format!(
                "{} is longer than backoff_cap ({})",
                s.backoff_base, s.backoff_cap
            ),
        );
    }
}

fn check_clients(config: &Config, report: &mut impl FnMut(KeyPath, String)) {
    let f = config.clients.refresh_fraction;
    if !(f > 0.0 && f < 1.0) {
        report(
            KeyPath::root().key("clients").key("refresh_fraction"),
            format!("{f} is not between 0 and 1 (exclusive): a client must be refreshed before it expires"),
        );
    }
}

fn check_telemetry(config: &Config, report: &mut impl FnMut(KeyPath, String)) {
    let buckets = &config.telemetry.latency_buckets;
    let path = KeyPath::root().key("telemetry").key("latency_buckets");
    if buckets.is_empty() {
        report(path, "must list at least one bucket".to_owned());
    } else if buckets.iter().any(|b| !b.is_finite() || *b <= 0.0)
        || buckets.windows(2).any(|w| w[0] >= w[1])
    {
        report(
            path,
            "must be positive numbers of seconds in increasing order".to_owned(),
        );
    }
}

fn check_caps(config: &Config, report: &mut impl FnMut(KeyPath, String)) {
    let caps = [
        ("ics20_max_memo_size", config.global.ics20_max_memo_size),
        (
            "ics20_max_receiver_size",
            config.global.ics20_max_receiver_size,
        ),
    ];
    for (key, value) in caps {
        if value == 0 {
            report(
                KeyPath::root().key("global").key(key),
                "must be at least 1 byte".to_owned(),
            );
        }
    }
}

const COSMOS_ONLY: &[&str] = &[
    "websocket_addr",
    "grpc_addr",
    "account_prefix",
    "key_name",
    "key_names",
    "store_prefix",
    "gas",
    "gas_adjustment",
    "gas_price",
    "max_gas",
    "min_balance",
    "proof_specs",
];
/// Highest `max_in_flight`: more admitted transactions than this only queue in the node's mempool.
const MAX_IN_FLIGHT: usize = 64;
const NEAR_ONLY: &[&str] = &["contract_account", "signer_account", "key_file"];
/// Keys of NEAR chains only, required or not: a Cosmos entry setting any of them is refused.
const NEAR_KEYS: &[&str] = &[
    "contract_account",
    "signer_account",
    "key_file",
    "key_files",
    "trust_on_first_use",
];

/// Which type-specific keys a chain entry sets, by name.
fn present_keys(chain: &ChainConfig) -> Vec<&'static str> {
    let set = [
        ("websocket_addr", chain.websocket_addr.is_some()),
        ("grpc_addr", chain.grpc_addr.is_some()),
        ("account_prefix", chain.account_prefix.is_some()),
        ("key_name", chain.key_name.is_some()),
        ("key_names", chain.key_names.is_some()),
        ("store_prefix", chain.store_prefix.is_some()),
        ("gas", chain.gas.is_some()),
        ("gas_adjustment", chain.gas_adjustment.is_some()),
        ("gas_price", chain.gas_price.is_some()),
        ("max_gas", chain.max_gas.is_some()),
        ("max_in_flight", chain.max_in_flight.is_some()),
        ("min_balance", chain.min_balance.is_some()),
        ("proof_specs", chain.proof_specs.is_some()),
        ("contract_account", chain.contract_account.is_some()),
        ("signer_account", chain.signer_account.is_some()),
        ("key_file", chain.key_file.is_some()),
        ("key_files", chain.key_files.is_some()),
        ("trust_on_first_use", chain.trust_on_first_use.is_some()),
    ];
    set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect()
}

fn check_chains(config: &Config, report: &mut impl FnMut(KeyPath, String)) {
    if config.chains.is_empty() {
        report(
            KeyPath::root(),
            "no [[chains]] configured: relayd would have nothing to relay".to_owned(),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, chain) in config.chains.iter().enumerate() {
        let at = KeyPath::root().key("chains").index(i);
        if let Some(first) = seen.insert(chain.id.as_str(), i) {
            seen.insert(chain.id.as_str(), first);
            report(
                at.key("id"),
                format!(
                    "chain id {:?} is already used by chains[{first}]",
                    chain.id.as_str()
                ),
            );
        }

        let (required, foreign): (&[&str], &[&str]) = match chain.chain_type {
            ChainType::Cosmos => (&["account_prefix", "key_name", "gas_price"], NEAR_KEYS),
            ChainType::Near => (NEAR_ONLY, COSMOS_ONLY),
        };
        let present = present_keys(chain);
        // `key_names` stands for `key_name`, `key_files` for `key_file` (check_key_names and check_key_files
        // check the pairs).
        let missing = |k: &&&str| {
            let stands_in = (**k == "key_name" && chain.key_names.is_some())
                || (**k == "key_file" && chain.key_files.is_some());
            !(present.contains(k) || stands_in)
        };
        for key in required.iter().filter(missing) {
            report(
                at.clone(),
                format!(
                    "missing key `{key}` (required for {} chains)",
                    chain.chain_type.as_str()
                ),
            );
        }
        for key in present.iter().filter(|k| foreign.contains(k)) {
            report(
                at.key(key),
                format!(
                    "does not apply to a chain with type = \"{}\"",
                    chain.chain_type.as_str()
                ),
            );
        }

        check_rpc_addrs(chain, &at, report);
        match chain.chain_type {
            ChainType::Cosmos => check_key_names(chain, &at, report),
            ChainType::Near => check_key_files(chain, &at, report),
        }

        if chain.max_msg_num == 0 {
            report(at.key("max_msg_num"), "must be at least 1".to_owned());
        }
        if chain.max_tx_size == 0 {
            report(at.key("max_tx_size"), "must be at least 1".to_owned());
        }
        if let Some(n) = chain.max_in_flight {
            if !(1..=MAX_IN_FLIGHT).contains(&n) {
                report(
                    at.key("max_in_flight"),
                    format!("{n} must be between 1 and {MAX_IN_FLIGHT}"),
                );
            }
        }
        if let (Some(min), Some(price)) = (&chain.min_balance, &chain.gas_price) {
            if min.denom != price.denom {
                report(
                    at.key("min_balance"),
                    format!(
                        "is in {:?}, but fees are paid in gas_price's {:?}: the balance that matters is in the fee denom",
                        min.denom, price.denom
                    ),
                );
            }
        }
        if let Some(adj) = chain.gas_adjustment {
            if !adj.is_finite() || adj < 1.0 {
                report(
                    at.key("gas_adjustment"),
                    format!("{adj} must be at least 1.0"),
                );
            }
        }
        if chain.chain_type == ChainType::Cosmos {
            let gas = chain.gas.unwrap_or(crate::model::defaults::GAS);
            let max_gas = chain.max_gas.unwrap_or(crate::model::defaults::MAX_GAS);
            if gas > max_gas {
                let key = if chain.gas.is_some() {
                    "gas"
                } else {
                    "max_gas"
                };
                report(at.key(key), format!("gas {gas} is above max_gas {max_gas}"));
            }
        }
        for (key, value) in [
            ("contract_account", &chain.contract_account),
            ("signer_account", &chain.signer_account),
        ] {
            if let Some(account) = value {
                if !is_near_account(account) {
                    report(
                        at.key(key),
                        format!("{account:?} is not a NEAR account id (2-64 characters: a-z, 0-9 and separators . - _)"),
                    );
                }
            }
        }
    }
}

/// Exactly one of `rpc_addr` and `rpc_addrs`; a list of distinct addresses, at least one.
fn check_rpc_addrs(chain: &ChainConfig, at: &KeyPath, report: &mut impl FnMut(KeyPath, String)) {
    match (&chain.rpc_addr, &chain.rpc_addrs) {
        (Some(_), Some(_)) => report(
            at.key("rpc_addrs"),
            "set either rpc_addr (one endpoint) or rpc_addrs (several), not both".to_owned(),
        ),
        (None, None) => report(
            at.clone(),
            "missing key `rpc_addr` (or `rpc_addrs` for several endpoints)".to_owned(),
        ),
        (None, Some(list)) => {
            if list.is_empty() {
                report(
                    at.key("rpc_addrs"),
                    "must list at least one address".to_owned(),
                );
            }
            for (j, addr) in list.iter().enumerate() {
                if let Some(first) = list[..j].iter().position(|a| a == addr) {
                    report(
                        at.key("rpc_addrs").index(j),
                        format!("{addr} is listed twice (also rpc_addrs[{first}])"),
                    );
                }
            }
        }
        (Some(_), None) => {}
    }
    if chain.rpc_addrs.as_ref().is_some_and(|l| l.len() > 1) && chain.websocket_addr.is_some() {
        report(
            at.key("websocket_addr"),
            "names one WebSocket for several rpc_addrs; leave it out so that each endpoint's `/websocket` is used"
                .to_owned(),
        );
    }
}

/// Exactly one of `key_name` and `key_names` on a Cosmos chain; a list of distinct names, at least one. NEAR
/// chains take neither: their signer is `signer_account` with its `key_file` or `key_files`.
fn check_key_names(chain: &ChainConfig, at: &KeyPath, report: &mut impl FnMut(KeyPath, String)) {
    match (&chain.key_name, &chain.key_names) {
        (Some(_), Some(_)) => report(
            at.key("key_names"),
            "set either key_name (one signer) or key_names (several), not both".to_owned(),
        ),
        (None, Some(list)) => {
            if list.is_empty() {
                report(at.key("key_names"), "must list at least one key".to_owned());
            }
            for (j, name) in list.iter().enumerate() {
                if let Some(first) = list[..j].iter().position(|n| n == name) {
                    report(
                        at.key("key_names").index(j),
                        format!("{name:?} is listed twice (also key_names[{first}])"),
                    );
                }
            }
        }
        _ => {}
    }
}

/// Exactly one of `key_file` and `key_files` on a NEAR chain; a list of distinct files, at least one. Whether
/// each file holds a key of `signer_account` is checked when relayd starts and by `relayd config validate`.
fn check_key_files(chain: &ChainConfig, at: &KeyPath, report: &mut impl FnMut(KeyPath, String)) {
    match (&chain.key_file, &chain.key_files) {
        (Some(_), Some(_)) => report(
            at.key("key_files"),
            "set either key_file (one access key) or key_files (several), not both".to_owned(),
        ),
        (None, Some(list)) => {
            if list.is_empty() {
                report(
                    at.key("key_files"),
                    "must list at least one credentials file".to_owned(),
                );
            }
            for (j, file) in list.iter().enumerate() {
                if let Some(first) = list[..j].iter().position(|f| f == file) {
                    report(
                        at.key("key_files").index(j),
                        format!(
                            "{} is listed twice (also key_files[{first}])",
                            file.display()
                        ),
                    );
                }
            }
        }
        _ => {}
    }
}

/// NEAR account ids: 2 to 64 characters, lowercase alphanumeric parts joined by single `.`, `-` or `_`.
fn is_near_account(id: &str) -> bool {
    let bytes = id.as_bytes();
    if !(2..=64).contains(&bytes.len()) {
        return false;
    }
    let is_sep = |b: u8| matches!(b, b'.' | b'-' | b'_');
    let mut prev_sep = true;
    for &b in bytes {
        if is_sep(b) {
            if prev_sep {
                return false;
            }
            prev_sep = true;
        } else if b.is_ascii_lowercase() || b.is_ascii_digit() {
            prev_sep = false;
        } else {
            return false;
        }
    }
    !prev_sep
}

fn check_connections(config: &Config, report: &mut impl FnMut(KeyPath, String)) {
    let Some(connections) = &config.connections else {
        return;
    };
    for (k, conn) in connections.iter().enumerate() {
        let at = KeyPath::root().key("connections").index(k);
        // ADR-002 calls a missing end "any", but an end names the client that judges proofs on its chain:
        // without it relayd could not tell which channels the connection means, so it is required.
        for (name, end) in [("src", &conn.src), ("dest", &conn.dest)] {
            if end.is_none() {
                report(
                    at.clone(),
                    format!("missing `{name}`: name the client this end's connection is built on ({name} = {{ client_id = \"...\" }})"),
                );
            }
        }
        let src = conn
            .src
            .as_ref()
            .and_then(|end| resolve_end(config, end, &at.key("src"), report));
        let dest = conn
            .dest
            .as_ref()
            .and_then(|end| resolve_end(config, end, &at.key("dest"), report));
        if let (Some(src), Some(dest)) = (src, dest) {
            if src == dest {
                report(
                    at.clone(),
                    format!("src and dest are both on chain {src:?}"),
                );
            }
        }
    }
}

/// The chain an end lives on, or `None` after reporting why it cannot be told.
fn resolve_end<'c>(
    config: &'c Config,
    end: &ConnectionEnd,
    at: &KeyPath,
    report: &mut impl FnMut(KeyPath, String),
) -> Option<&'c str> {
    let client = end.client_id.as_str();
    if let Some(chain_id) = &end.chain_id {
        let Some(chain) = config.chains.iter().find(|c| &c.id == chain_id) else {
            let known: Vec<&str> = config.chains.iter().map(|c| c.id.as_str()).collect();
            report(
                at.key("chain_id"),
                format!(
                    "unknown chain {:?}; configured chains: {}",
                    chain_id.as_str(),
                    known.join(", ")
                ),
            );
            return None;
        };
        if !chain.client_ids.contains(&end.client_id) {
            report(
                at.key("client_id"),
                format!(
                    "client {client:?} is not in the client_ids of chain {:?}",
                    chain.id.as_str()
                ),
            );
            return None;
        }
        return Some(chain.id.as_str());
    }
    let hosts: Vec<&str> = config
        .chains
        .iter()
        .filter(|c| c.client_ids.contains(&end.client_id))
        .map(|c| c.id.as_str())
        .collect();
    match hosts.as_slice() {
        [] => {
            report(
                at.key("client_id"),
                format!("client {client:?} is not in any chain's client_ids"),
            );
            None
        }
        [one] => Some(one),
        many => {
            let quoted: Vec<String> = many.iter().map(|c| format!("{c:?}")).collect();
            report(
                at.key("client_id"),
                format!(
                    "client {client:?} is listed on chains {}; set chain_id on this end to pick one",
                    quoted.join(" and ")
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_near_account;

    #[test]
    fn near_account_ids() {
        for ok in ["ibc.testnet", "relayer-1.near", "a_b", "aa", "0x1"] {
            assert!(is_near_account(ok), "{ok}");
        }
        for bad in [
            "a",
            "Ibc.near",
            "a..b",
            ".ab",
            "ab.",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(!is_near_account(bad), "{bad}");
        }
    }
}
