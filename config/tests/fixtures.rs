//! The configuration files under `tests/fixtures/config`: the ADR-002 example and a full Cosmos + NEAR file
//! must load with the values they spell out, and every invalid file must fail with its exact message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use relayd_config::{
    ChainType, Config, Direction, EventSourceMode, LogFormat, LogLevel, ProofSpecName,
    RestartStrategy,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config")
}

/// Parses a fixture under its bare file name, so messages do not depend on where the checkout is.
fn parse(rel: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(fixtures().join(rel)).expect("fixture readable");
    let name = Path::new(rel).file_name().expect("file name");
    Config::parse(&text, Path::new(name)).map_err(|e| e.to_string())
}

#[test]
fn adr_002_example_parses_unchanged() {
    let config = parse("adr-002.toml").expect("ADR example is valid");
    assert_eq!(config.title.as_deref(), Some("IBC Relayer Config Example"));
    assert_eq!(config.global.timeout.get(), Duration::from_secs(10));
    assert_eq!(config.chains.len(), 2);

    let a = &config.chains[0];
    assert_eq!(a.id.as_str(), "chain_A");
    assert_eq!(a.chain_type, ChainType::Cosmos);
    let rpc: Vec<String> = a.rpc_endpoints().iter().map(|r| r.to_string()).collect();
    assert_eq!(rpc, ["http://localhost:26657"]);
    let cosmos = a.cosmos().expect("cosmos settings");
    // The ADR's misspelt key is read as gas_adjustment.
    assert_eq!(cosmos.gas_adjustment, 1.3);
    assert_eq!(cosmos.gas, 200_000);
    assert_eq!(cosmos.gas_price.denom, "stake");
    assert_eq!(cosmos.store_prefix, "ibc");
    assert_eq!(
        cosmos.websocket_addr.to_string(),
        "ws://localhost:26657/websocket"
    );
    assert_eq!(a.trusting_period.get(), Duration::from_secs(336 * 3600));
    let ids: Vec<&str> = a.client_ids.iter().map(|c| c.as_str()).collect();
    assert_eq!(ids, ["clA1", "clA2"]);

    let conns = config.connections.as_ref().expect("connections");
    assert_eq!(conns.len(), 1);
    let src = conns[0].src.as_ref().expect("src");
    assert_eq!(src.client_id.as_str(), "clB1");
    assert_eq!(
        src.connection_id.as_ref().map(|c| c.as_str()),
        Some("connAtoB")
    );
    let paths = conns[0].paths.as_ref().expect("paths");
    let directions: Vec<Direction> = paths.iter().map(|p| p.direction).collect();
    assert_eq!(
        directions,
        [
            Direction::Unidirectional,
            Direction::Bidirectional,
            Direction::Bidirectional
        ]
    );
    assert!(paths[0].src_channel.is_none(), "absent channel means any");
    assert_eq!(
        paths[2].dest_channel.as_ref().map(|c| c.as_str()),
        Some("chan3-on-B")
    );
    assert_eq!(config.path_count(), 3);
}

#[test]
fn cosmos_and_near_example_reads_every_key() {
    let config = parse("cosmos-near.toml").expect("example is valid");
    assert_eq!(config.global.log_level, LogLevel::Debug);
    assert_eq!(config.global.log_format, LogFormat::Json);
    assert_eq!(config.admin.listen_addr.to_string(), "127.0.0.1:3100");
    assert_eq!(config.telemetry.latency_buckets, [0.5, 1.0, 2.0, 5.0, 10.0]);
    assert_eq!(config.supervision.strategy, RestartStrategy::RestForOne);
    assert_eq!(config.supervision.restart_intensity, 3);
    assert_eq!(
        config.supervision.backoff_base.get(),
        Duration::from_millis(200)
    );

    let cosmos_chain = &config.chains[0];
    let cosmos = cosmos_chain.cosmos().expect("cosmos settings");
    assert!(cosmos_chain.near().is_none());
    assert_eq!(cosmos.max_gas, 3_000_000);
    assert_eq!(cosmos.max_in_flight, 8);
    assert_eq!(cosmos.min_balance, Some(5_000_000));
    assert_eq!(
        cosmos.proof_specs,
        Some(vec![ProofSpecName::Iavl, ProofSpecName::Tendermint])
    );
    assert_eq!(cosmos_chain.max_msg_num, 50);
    assert_eq!(cosmos_chain.max_tx_size, 1_048_576);
    assert_eq!(cosmos_chain.event_source.mode, EventSourceMode::Pull);
    assert_eq!(
        cosmos_chain.event_source.interval.get(),
        Duration::from_millis(500)
    );
    assert_eq!(cosmos_chain.clock_drift.0, Duration::from_secs(10));
    let filter = &cosmos_chain.packet_filter;
    assert!(filter.allows("transfer", "channel-0"));
    assert!(!filter.allows("transfer", "channel-13"), "deny wins");
    assert!(!filter.allows("icahost", "channel-0"), "not in allow list");

    let near_chain = &config.chains[1];
    assert_eq!(near_chain.chain_type, ChainType::Near);
    assert!(near_chain.cosmos().is_none());
    let near = near_chain.near().expect("near settings");
    assert_eq!(near.contract_account, "ibc.test.near");
    assert_eq!(near.signer_account, "relayer.test.near");
    assert!(!near.trust_on_first_use);
    assert_eq!(near_chain.clear_interval, 0);
    assert_eq!(
        near_chain.max_in_flight,
        Some(3),
        "deliver calls outstanding"
    );
    // Defaults fill what the NEAR entry leaves out.
    assert_eq!(near_chain.max_msg_num, 30);
    assert_eq!(near_chain.max_tx_size, 2 * 1024 * 1024);
    assert!(near_chain.packet_filter.allows("any", "thing"));
}

#[test]
fn defaults_apply_to_a_minimal_file() {
    let text = "[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"127.0.0.1:26657\"\naccount_prefix = \"cosmos\"\nkey_name = \"k\"\ngas_price = \"1stake\"\n";
    let config = Config::parse(text, Path::new("min.toml")).expect("valid");
    assert_eq!(config.admin.listen_addr.to_string(), "127.0.0.1:3000");
    assert!(config.admin.token_file.is_none());
    assert_eq!(config.supervision.strategy, RestartStrategy::OneForOne);
    assert_eq!(config.chains[0].event_source.mode, EventSourceMode::Push);
    assert_eq!(config.chains[0].clear_interval, 100);
    assert_eq!(config.global.ics20_max_memo_size, 32_768);
    assert_eq!(config.global.ics20_max_receiver_size, 2_048);
    assert!((config.clients.refresh_fraction - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        config.clients.expiry_alarm.get(),
        std::time::Duration::from_secs(86_400)
    );
    assert!(config.connections.is_none());
    assert_eq!(config.path_count(), 0);
    assert_eq!(
        config.global.record_retention.get(),
        std::time::Duration::from_secs(7 * 86_400)
    );
    let week = Config::parse(
        &text.replace(
            "[[chains]]",
            "[global]\nrecord_retention = \"7d\"\n[[chains]]",
        ),
        Path::new("week.toml"),
    )
    .expect("7d is a retention");
    assert_eq!(
        week.global.record_retention.get(),
        std::time::Duration::from_secs(7 * 86_400)
    );
}

#[test]
fn every_invalid_fixture_fails_with_its_exact_message() {
    let cases: &[(&str, &str)] = &[
        ("backoff-base-above-cap", "backoff-base-above-cap.toml:2: supervision.backoff_base: 1m is longer than backoff_cap (10s)"),
        ("bad-admin-listen", "bad-admin-listen.toml:2: admin.listen_addr: \"localhost\" is not a socket address such as \"127.0.0.1:3000\""),
        ("bad-chain-type", "bad-chain-type.toml:11: chains[1].type: unknown value \"nera\"; expected `cosmos` or `near`"),
        ("bad-duration", "bad-duration.toml:8: chains[0].trusting_period: \"10 parsecs\" is not a duration such as \"10s\", \"500ms\" or \"336h\""),
        ("bad-filter-pattern", "bad-filter-pattern.toml:16: chains[1].packet_filter.allow[0]: \"transfer\" is not a <port>/<channel> pattern such as \"transfer/channel-*\""),
        ("bad-gas-price", "bad-gas-price.toml:14: chains[1].gas_price: \"abc\" is not <amount><denom>, e.g. \"0.025stake\""),
        ("bad-record-retention", "bad-record-retention.toml:2: global.record_retention: \"a week\" is not a duration such as \"10s\", \"500ms\" or \"336h\""),
        ("bad-log-level", "bad-log-level.toml:2: global.log_level: unknown value \"verbose\"; expected one of `trace`, `debug`, `info`, `warn`, `error`"),
        ("bad-port-id", "bad-port-id.toml:24: connections[0].paths[0].src_port: port id \"trans/fer\" contains '/'; allowed are letters, digits and . _ + - # [ ] < >"),
        ("bad-rpc-addr", "bad-rpc-addr.toml:11: chains[1].rpc_addr: \"ftp://127.0.0.1:26557\" is not an address; expected host:port or a URL such as \"http://127.0.0.1:26657\""),
        ("client-not-on-named-chain", "client-not-on-named-chain.toml:22: connections[0].dest.client_id: client \"07-tendermint-1\" is not in the client_ids of chain \"ibc-0\""),
        ("client-on-two-chains", "client-on-two-chains.toml:19: connections[0].src.client_id: client \"07-tendermint-0\" is listed on chains \"ibc-0\" and \"ibc-1\"; set chain_id on this end to pick one"),
        ("connection-without-dest", "connection-without-dest.toml:17: connections[0]: missing `dest`: name the client this end's connection is built on (dest = { client_id = \"...\" })"),
        ("cosmos-key-on-near", "cosmos-key-on-near.toml:24: chains[2].gas_price: does not apply to a chain with type = \"near\""),
        ("duplicate-chain-id", "duplicate-chain-id.toml:10: chains[1].id: chain id \"ibc-0\" is already used by chains[0]"),
        ("gas-above-max", "gas-above-max.toml:8: chains[0].gas: gas 500000 is above max_gas 300000"),
        ("gas-adjustment-below-one", "gas-adjustment-below-one.toml:8: chains[0].gas_adjustment: 0.9 must be at least 1.0"),
        ("missing-chain-id", "missing-chain-id.toml:9: chains[1]: missing key `id`"),
        ("missing-key-name", "missing-key-name.toml:9: chains[1]: missing key `key_name` (required for cosmos chains)"),
        ("near-without-contract", "near-without-contract.toml:17: chains[2]: missing key `contract_account` (required for near chains)"),
        ("refresh-fraction-out-of-range", "refresh-fraction-out-of-range.toml:2: clients.refresh_fraction: 1.5 is not between 0 and 1 (exclusive): a client must be refreshed before it expires"),
        ("rpc-addr-and-rpc-addrs", "rpc-addr-and-rpc-addrs.toml:12: chains[1].rpc_addrs: set either rpc_addr (one endpoint) or rpc_addrs (several), not both"),
        ("src-equals-dest", "src-equals-dest.toml:17: connections[0]: src and dest are both on chain \"ibc-0\""),
        ("syntax-error", "syntax-error.toml:13: chains[1].key_name: invalid basic string, expected `\"`"),
        ("gas-two-values", "gas-two-values.toml:7: chains[0].gas: string values must be quoted, expected literal string"),
        ("min-balance-denom", "min-balance-denom.toml:16: chains[1].min_balance: is in \"uatom\", but fees are paid in gas_price's \"stake\": the balance that matters is in the fee denom"),
        ("no-chains", "no-chains.toml:1: no [[chains]] configured: relayd would have nothing to relay"),
        ("nul-in-data-dir", "nul-in-data-dir.toml:2: global.data_dir: contains a NUL byte, which no file name may hold"),
        ("trust-threshold-high", "trust-threshold-high.toml:8: chains[0].trust_threshold: \"4/3\" is outside (1/3, 1]"),
        ("trust-threshold-low", "trust-threshold-low.toml:16: chains[1].trust_threshold: \"1/3\" is outside (1/3, 1]"),
        ("trust-on-first-use-on-cosmos", "trust-on-first-use-on-cosmos.toml:7: chains[0].trust_on_first_use: does not apply to a chain with type = \"cosmos\""),
        ("trust-on-first-use-not-bool", "trust-on-first-use-not-bool.toml:15: chains[1].trust_on_first_use: invalid type: string \"yes\", expected a boolean"),
        ("unknown-chain-key", "unknown-chain-key.toml:15: chains[1].gas_adjustmnt: unknown key; did you mean `gas_adjustment`?"),
        ("unknown-chain", "unknown-chain.toml:21: connections[0].dest.chain_id: unknown chain \"ibc-9\"; configured chains: ibc-0, ibc-1"),
        ("unknown-client", "unknown-client.toml:21: connections[0].dest.client_id: client \"07-tendermint-7\" is not in any chain's client_ids"),
        ("unknown-proof-spec", "unknown-proof-spec.toml:8: chains[0].proof_specs[1]: unknown value \"smt\"; expected one of `iavl`, `tendermint`, `avl`, `jmt`"),
        ("unknown-section", "unknown-section.toml:1: globl: unknown key; did you mean `global`?"),
        ("zero-duration", "zero-duration.toml:2: global.timeout: \"0s\" must be greater than zero"),
        ("zero-max-in-flight", "zero-max-in-flight.toml:16: chains[1].max_in_flight: 0 must be between 1 and 64"),
        ("zero-max-msg-num", "zero-max-msg-num.toml:16: chains[1].max_msg_num: must be at least 1"),
        ("zero-memo-cap", "zero-memo-cap.toml:3: global.ics20_max_memo_size: must be at least 1 byte"),
    ];

    let on_disk = std::fs::read_dir(fixtures().join("invalid"))
        .expect("invalid fixtures")
        .count();
    assert_eq!(on_disk, cases.len(), "every invalid fixture has a case");

    for (name, expected) in cases {
        let err = parse(&format!("invalid/{name}.toml")).expect_err(name);
        assert_eq!(&err, expected, "fixture {name}");
    }
}

#[test]
fn rpc_addrs_lists_several_endpoints_and_is_checked() {
    let text = std::fs::read_to_string(fixtures().join("invalid/rpc-addr-and-rpc-addrs.toml"))
        .expect("fixture");
    let fixed = text.replacen("rpc_addr = \"127.0.0.1:26557\"\n", "", 1);
    let config = Config::parse(&fixed, Path::new("fixed.toml")).expect("one form per chain");
    let rpc: Vec<String> = config.chains[1]
        .rpc_endpoints()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(rpc, ["http://127.0.0.1:26557", "http://127.0.0.1:26567"]);
    assert_eq!(
        config.chains[1]
            .cosmos()
            .expect("cosmos")
            .websocket_addr
            .to_string(),
        "ws://127.0.0.1:26557/websocket"
    );
    let bad = [
        (
            fixed.replacen("rpc_addrs = [\"127.0.0.1:26557\", \"127.0.0.1:26567\"]", "rpc_addrs = []", 1),
            "bad.toml:11: chains[1].rpc_addrs: must list at least one address",
        ),
        (
            fixed.replacen("\"127.0.0.1:26567\"]", "\"http://127.0.0.1:26557\"]", 1),
            "bad.toml:11: chains[1].rpc_addrs[1]: http://127.0.0.1:26557 is listed twice (also rpc_addrs[0])",
        ),
        (
            fixed.replacen("rpc_addrs = [\"127.0.0.1:26557\", \"127.0.0.1:26567\"]\n", "", 1),
            "bad.toml:9: chains[1]: missing key `rpc_addr` (or `rpc_addrs` for several endpoints)",
        ),
    ];
    for (text, expected) in bad {
        let err = Config::parse(&text, Path::new("bad.toml")).expect_err(expected);
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn a_near_chain_takes_several_rpc_endpoints_in_file_order() {
    let near = "[[chains]]\nid = \"near-0\"\ntype = \"near\"\nrpc_addrs = [\"127.0.0.1:3030\", \"127.0.0.1:3031\"]\ncontract_account = \"ibc.near\"\nsigner_account = \"relayer.near\"\nkey_file = \"k.json\"\n";
    let config = Config::parse(near, Path::new("near.toml")).expect("valid");
    let settings = config.chains[0].near().expect("NEAR settings");
    let urls: Vec<String> = settings
        .rpc_addrs
        .iter()
        .map(|a| a.url().to_string())
        .collect();
    assert_eq!(urls, ["http://127.0.0.1:3030/", "http://127.0.0.1:3031/"]);
    assert_eq!(settings.rpc_addr, settings.rpc_addrs[0]);
    let twice = near.replace("127.0.0.1:3031", "127.0.0.1:3030");
    let err = Config::parse(&twice, Path::new("near.toml")).expect_err("listed twice");
    assert_eq!(
        err.to_string(),
        "near.toml:4: chains[0].rpc_addrs[1]: http://127.0.0.1:3030 is listed twice (also rpc_addrs[0])"
    );
}

#[test]
fn a_client_on_two_chains_is_fine_when_each_end_names_its_chain() {
    let text = std::fs::read_to_string(fixtures().join("invalid/client-on-two-chains.toml"))
        .expect("fixture");
    let fixed = text.replace(
        "[connections.src]\n",
        "[connections.src]\nchain_id = \"ibc-0\"\n",
    );
    Config::parse(&fixed, Path::new("fixed.toml")).expect("disambiguated ends are valid");
}

#[test]
fn several_problems_are_all_reported_in_line_order() {
    let text = "[supervision]\nbackoff_base = \"1m\"\nbackoff_cap = \"1s\"\n\n[[chains]]\nid = \"a-0\"\nrpc_addr = \"127.0.0.1:1\"\nmax_msg_num = 0\n";
    let err = Config::parse(text, Path::new("multi.toml")).expect_err("invalid");
    let lines: Vec<String> = err.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "multi.toml:2: supervision.backoff_base: 1m is longer than backoff_cap (1s)",
            "multi.toml:5: chains[0]: missing key `account_prefix` (required for cosmos chains)",
            "multi.toml:5: chains[0]: missing key `key_name` (required for cosmos chains)",
            "multi.toml:5: chains[0]: missing key `gas_price` (required for cosmos chains)",
            "multi.toml:8: chains[0].max_msg_num: must be at least 1",
        ]
    );
}

#[test]
fn a_file_larger_than_the_bound_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.toml");
    let line = "# padding\n".repeat(1024);
    let text = line.repeat((relayd_config::MAX_CONFIG_BYTES as usize / line.len()) + 1);
    std::fs::write(&big, text).expect("write");
    let err = Config::load(&big).expect_err("too large").to_string();
    assert!(
        err.ends_with("the file is larger than 1024 KiB; is this the configuration file?"),
        "{err}"
    );
    // A device that never ends is read only up to the bound.
    let err = Config::load(Path::new("/dev/zero"))
        .expect_err("not a config")
        .to_string();
    assert_eq!(
        err,
        "/dev/zero: the file is larger than 1024 KiB; is this the configuration file?"
    );
}

#[test]
fn key_names_lists_several_signers_and_is_checked() {
    let base = "[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"127.0.0.1:26657\"\naccount_prefix = \"cosmos\"\nkey_names = [\"relayer\", \"relayer2\"]\ngas_price = \"0.025stake\"\n";
    let config = Config::parse(base, Path::new("ok.toml")).expect("two signers");
    let cosmos = config.chains[0].cosmos().expect("cosmos");
    assert_eq!(cosmos.key_name, "relayer");
    assert_eq!(cosmos.key_names, ["relayer", "relayer2"]);
    let one = base.replace(
        "key_names = [\"relayer\", \"relayer2\"]",
        "key_name = \"relayer\"",
    );
    let config = Config::parse(&one, Path::new("ok.toml")).expect("one signer");
    assert_eq!(
        config.chains[0].cosmos().expect("cosmos").key_names,
        ["relayer"]
    );
    let near = "[[chains]]\nid = \"near-0\"\ntype = \"near\"\nrpc_addr = \"127.0.0.1:3030\"\ncontract_account = \"ibc.near\"\nsigner_account = \"relayer.near\"\nkey_file = \"k.json\"\nkey_names = [\"a\", \"b\"]\n";
    let bad = [
        (
            base.replace("key_names = [\"relayer\", \"relayer2\"]", "key_names = []"),
            "bad.toml:5: chains[0].key_names: must list at least one key",
        ),
        (
            base.replace("\"relayer2\"]", "\"relayer\"]"),
            "bad.toml:5: chains[0].key_names[1]: \"relayer\" is listed twice (also key_names[0])",
        ),
        (
            base.replace("gas_price", "key_name = \"relayer\"\ngas_price"),
            "bad.toml:5: chains[0].key_names: set either key_name (one signer) or key_names (several), not both",
        ),
        (
            near.to_owned(),
            "bad.toml:8: chains[0].key_names: does not apply to a chain with type = \"near\"",
        ),
    ];
    for (text, expected) in bad {
        let err = Config::parse(&text, Path::new("bad.toml")).expect_err(expected);
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn key_files_lists_several_near_access_keys_and_is_checked() {
    let base = "[[chains]]\nid = \"near-0\"\ntype = \"near\"\nrpc_addr = \"127.0.0.1:3030\"\ncontract_account = \"ibc.near\"\nsigner_account = \"relayer.near\"\nkey_files = [\"k1.json\", \"k2.json\"]\n";
    let config = Config::parse(base, Path::new("ok.toml")).expect("two keys");
    let near = config.chains[0].near().expect("near");
    assert_eq!(near.key_file, Path::new("k1.json"));
    assert_eq!(near.key_files, [Path::new("k1.json"), Path::new("k2.json")]);
    let one = base.replace(
        "key_files = [\"k1.json\", \"k2.json\"]",
        "key_file = \"k1.json\"",
    );
    let config = Config::parse(&one, Path::new("ok.toml")).expect("one key");
    assert_eq!(
        config.chains[0].near().expect("near").key_files,
        [Path::new("k1.json")]
    );
    let cosmos = "[[chains]]\nid = \"ibc-0\"\nrpc_addr = \"127.0.0.1:26657\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.025stake\"\nkey_files = [\"a.json\"]\n";
    let bad = [
        (
            base.replace("key_files = [\"k1.json\", \"k2.json\"]", "key_files = []"),
            "bad.toml:7: chains[0].key_files: must list at least one credentials file",
        ),
        (
            base.replace("\"k2.json\"]", "\"k1.json\"]"),
            "bad.toml:7: chains[0].key_files[1]: k1.json is listed twice (also key_files[0])",
        ),
        (
            base.replace("key_files", "key_file = \"k1.json\"\nkey_files"),
            "bad.toml:8: chains[0].key_files: set either key_file (one access key) or key_files (several), not both",
        ),
        (
            base.replace("key_files = [\"k1.json\", \"k2.json\"]", ""),
            "bad.toml:1: chains[0]: missing key `key_file` (required for near chains)",
        ),
        (
            cosmos.to_owned(),
            "bad.toml:7: chains[0].key_files: does not apply to a chain with type = \"cosmos\"",
        ),
    ];
    for (text, expected) in bad {
        let err = Config::parse(&text, Path::new("bad.toml")).expect_err(expected);
        assert_eq!(err.to_string(), expected);
    }
}
