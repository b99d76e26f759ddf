//! Which differences between the configuration a service runs and the file re-read on reload it can apply
//! without a restart: the ICS-20 caps, each chain's `packet_filter` and `clear_interval`, and the
//! `[[connections]]` (paths start and stop). Any other difference is named at its key, and the reload is
//! refused as a whole, so a service never runs half of one file and half of another.

use std::path::Path;

use crate::locate::KeyPath;
use crate::{Config, ConfigError, ConfigErrors};

/// The differences between `old` (running) and `new` (read from `file`, whose text is `text`) that need a
/// restart, at their keys in `new`; `Ok` when every difference can be applied live.
pub fn check_reload(
    old: &Config,
    new: &Config,
    file: &Path,
    text: &str,
) -> Result<(), ConfigErrors> {
    let errors: Vec<ConfigError> = needs_restart(old, new)
        .into_iter()
        .map(|(key, message)| ConfigError::at(file, text, &key, message))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

/// [`check_reload`]'s differences, as key paths and messages.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<(KeyPath, String)> {
    let mut out = Vec::new();
    let restart =
        |what: &str| format!("{what} cannot change while relayd runs; restart it to apply this");
    let mut global = new.global.clone();
    global.ics20_max_memo_size = old.global.ics20_max_memo_size;
    global.ics20_max_receiver_size = old.global.ics20_max_receiver_size;
    if global != old.global {
        out.push((
            KeyPath::root().key("global"),
            restart("[global] (other than ics20_max_memo_size and ics20_max_receiver_size)"),
        ));
    }
    let sections = [
        ("admin", old.admin == new.admin),
        ("telemetry", old.telemetry == new.telemetry),
        ("supervision", old.supervision == new.supervision),
        ("clients", old.clients == new.clients),
    ];
    for (name, same) in sections {
        if !same {
            out.push((KeyPath::root().key(name), restart(&format!("[{name}]"))));
        }
    }
    for (i, chain) in new.chains.iter().enumerate() {
        let at = KeyPath::root().key("chains").index(i);
        match old.chains.iter().find(|c| c.id == chain.id) {
            None => out.push((
                at.key("id"),
                format!(
                    "chain {:?} is new; adding a chain needs a restart",
                    chain.id.as_str()
                ),
            )),
            Some(running) => {
                let mut same = chain.clone();
                same.packet_filter = running.packet_filter.clone();
                same.clear_interval = running.clear_interval;
                // `rpc_addr = "x"` and `rpc_addrs = ["x"]` name the same endpoints.
                if same.rpc_endpoints() == running.rpc_endpoints() {
                    same.rpc_addr = running.rpc_addr.clone();
                    same.rpc_addrs = running.rpc_addrs.clone();
                }
                // `key_name = "k"` and `key_names = ["k"]` name the same signer; any other change of keys needs a
                // restart (the TxSubmitter's lanes are made when it starts).
                if same.key_list() == running.key_list() {
                    same.key_name = running.key_name.clone();
                    same.key_names = running.key_names.clone();
                }
                // Likewise `key_file = "f"` and `key_files = ["f"]` on a NEAR chain.
                if same.key_file_list() == running.key_file_list() {
                    same.key_file = running.key_file.clone();
                    same.key_files = running.key_files.clone();
                }
                if &same != running {
                    out.push((
                        at,
                        restart("a chain's settings other than packet_filter and clear_interval"),
                    ));
                }
            }
        }
    }
    for chain in &old.chains {
        if !new.chains.iter().any(|c| c.id == chain.id) {
            out.push((
                KeyPath::root().key("chains"),
                format!(
                    "chain {:?} is gone; removing a chain needs a restart",
                    chain.id.as_str()
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"127.0.0.1:26657\"\naccount_prefix = \"cosmos\"\nkey_name = \"k\"\ngas_price = \"1stake\"\n";

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("relayd.toml")).unwrap()
    }

    #[test]
    fn caps_filters_intervals_and_connections_reload_live() {
        let old = parse(BASE);
        let new = parse(&format!(
            "[global]\nics20_max_memo_size = 10\n\n{BASE}clear_interval = 7\npacket_filter = {{ allow = [\"transfer/channel-1\"] }}\n"
        ));
        assert_eq!(needs_restart(&old, &new), Vec::new());
    }

    #[test]
    fn rpc_addr_and_a_list_of_one_are_the_same_endpoints_but_more_need_a_restart() {
        let old = parse(BASE);
        let one = parse(&BASE.replace(
            "rpc_addr = \"127.0.0.1:26657\"",
            "rpc_addrs = [\"127.0.0.1:26657\"]",
        ));
        assert_eq!(needs_restart(&old, &one), Vec::new());
        let two = parse(&BASE.replace(
            "rpc_addr = \"127.0.0.1:26657\"",
            "rpc_addrs = [\"127.0.0.1:26657\", \"127.0.0.1:26667\"]",
        ));
        assert_eq!(needs_restart(&old, &two).len(), 1);
    }

    #[test]
    fn key_name_and_a_list_of_one_are_the_same_signer_but_more_need_a_restart() {
        let old = parse(BASE);
        let one = parse(&BASE.replace("key_name = \"k\"", "key_names = [\"k\"]"));
        assert_eq!(needs_restart(&old, &one), Vec::new());
        let two = parse(&BASE.replace("key_name = \"k\"", "key_names = [\"k\", \"k2\"]"));
        assert_eq!(needs_restart(&old, &two).len(), 1);
    }

    #[test]
    fn key_file_and_a_list_of_one_are_the_same_key_but_more_need_a_restart() {
        let near = "[[chains]]\nid = \"near-0\"\ntype = \"near\"\nrpc_addr = \"127.0.0.1:3030\"\ncontract_account = \"ibc.near\"\nsigner_account = \"relayer.near\"\nkey_file = \"k.json\"\n";
        let old = parse(near);
        let one = parse(&near.replace("key_file = \"k.json\"", "key_files = [\"k.json\"]"));
        assert_eq!(needs_restart(&old, &one), Vec::new());
        let two = parse(&near.replace(
            "key_file = \"k.json\"",
            "key_files = [\"k.json\", \"k2.json\"]",
        ));
        assert_eq!(needs_restart(&old, &two).len(), 1);
    }

    #[test]
    fn min_balance_needs_a_restart() {
        // The TxSubmitter's lanes take the minimum when they start.
        let old = parse(BASE);
        let new = parse(&format!("{BASE}min_balance = \"5stake\"\n"));
        assert_eq!(needs_restart(&old, &new).len(), 1);
    }

    #[test]
    fn other_changes_are_named_at_their_key_with_the_line() {
        let old = parse(BASE);
        let text = format!("[global]\ntimeout = \"3s\"\n\n{BASE}max_msg_num = 3\n\n[[chains]]\nid = \"ibc-9\"\nrpc_addr = \"127.0.0.1:1\"\naccount_prefix = \"cosmos\"\nkey_name = \"k\"\ngas_price = \"1stake\"\n");
        let new = parse(&text);
        let err = check_reload(&old, &new, Path::new("relayd.toml"), &text).unwrap_err();
        let lines: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("relayd.toml:1: global: "), "{lines:?}");
        assert!(
            lines[1].starts_with("relayd.toml:4: chains[0]: "),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with("relayd.toml:13: chains[1].id: chain \"ibc-9\" is new"),
            "{lines:?}"
        );
        let back = check_reload(&new, &old, Path::new("relayd.toml"), BASE).unwrap_err();
        assert!(back.iter().any(|e| e.message.contains("\"ibc-9\" is gone")));
    }
}
