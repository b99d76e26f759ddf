//! The checks `config validate` and `start` share, and the bounds on what the command line reads, through the
//! built binary: every problem named by file, line and key, exit code 2, and nothing read without a limit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_relayd");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config")
}

fn relayd(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env_remove("RELAYD_CONFIG")
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("relayd runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A Cosmos chain and a NEAR chain, an admin token file and a data dir, all relative to the config's folder.
const CONFIG: &str = "[global]
data_dir = \"data\"

[admin]
token_file = \"admin.token\"

[[chains]]
id = \"ibc-0\"
rpc_addr = \"127.0.0.1:1\"
account_prefix = \"cosmos\"
key_name = \"relayer\"
gas_price = \"0.025stake\"

[[chains]]
id = \"near-0\"
type = \"near\"
rpc_addr = \"127.0.0.1:2\"
contract_account = \"ibc.test\"
signer_account = \"relayer.test\"
key_file = \"near-key.json\"
";

#[test]
fn validate_and_start_refuse_missing_and_readable_files_with_their_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("c.toml"), CONFIG).expect("config");

    let expect = |lines: &[&str]| {
        for args in [
            &["-c", "c.toml", "config", "validate"][..],
            &["-c", "c.toml", "start"],
        ] {
            let out = relayd(dir.path(), args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?}: {}",
                text(&out.stderr)
            );
            assert_eq!(text(&out.stderr), lines.join("\n") + "\n", "{args:?}");
        }
    };
    expect(&[
        "c.toml:5: admin.token_file: admin.token: No such file or directory (os error 2)",
        "c.toml:11: chains[0].key_name: the signing key of chain ibc-0: no key store at data/keys (keys are added with `relayd keys add`)",
        "c.toml:20: chains[1].key_file: near-key.json: No such file or directory (os error 2)",
    ]);

    // A short token, then a long one others may read; a Cosmos key others may read.
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "short\n").expect("token");
    chmod(&token, 0o600);
    std::fs::write(
        dir.path().join("key.json"),
        format!("{{\"private_key\": \"{}\"}}", "1f".repeat(32)),
    )
    .expect("key");
    let added = relayd(
        dir.path(),
        &[
            "-c",
            "c.toml",
            "keys",
            "add",
            "--chain",
            "ibc-0",
            "--key-file",
            "key.json",
        ],
    );
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    chmod(&dir.path().join("data/keys/ibc-0.json"), 0o644);
    std::fs::write(dir.path().join("near-key.json"), "{}").expect("near key");
    chmod(&dir.path().join("near-key.json"), 0o644);
    expect(&[
        "c.toml:5: admin.token_file: admin.token: the token is 5 bytes; at least 32 are needed (e.g. `openssl rand -hex 32`)",
        "c.toml:11: chains[0].key_name: the signing key of chain ibc-0: data/keys/ibc-0.json: mode 0644 lets other users read the key; run `chmod 600` on it",
        "c.toml:20: chains[1].key_file: near-key.json: mode 644 lets other users read the key; run `chmod 600 near-key.json`",
    ]);

    std::fs::write(&token, format!("{}\n", "t".repeat(32))).expect("token");
    chmod(&token, 0o644);
    expect(&[
        "c.toml:5: admin.token_file: admin.token: mode 0644 lets other users read the token; run `chmod 600` on it",
        "c.toml:11: chains[0].key_name: the signing key of chain ibc-0: data/keys/ibc-0.json: mode 0644 lets other users read the key; run `chmod 600` on it",
        "c.toml:20: chains[1].key_file: near-key.json: mode 644 lets other users read the key; run `chmod 600 near-key.json`",
    ]);

    // Fixed (the NEAR chain dropped): valid, and `--file-only` never looked at the files.
    chmod(&token, 0o600);
    chmod(&dir.path().join("data/keys/ibc-0.json"), 0o600);
    let cosmos_only = &CONFIG[..CONFIG
        .find("\n[[chains]]\nid = \"near-0\"")
        .expect("near chain")];
    std::fs::write(dir.path().join("c.toml"), cosmos_only).expect("config");
    let out = relayd(dir.path(), &["-c", "c.toml", "config", "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A second signer in key_names needs its own key, added under its name.
    let two = cosmos_only.replace(
        "key_name = \"relayer\"",
        "key_names = [\"relayer\", \"relayer2\"]",
    );
    std::fs::write(dir.path().join("c.toml"), &two).expect("config");
    expect(&[
        "c.toml:11: chains[0].key_names[1]: the signing key \"relayer2\" of chain ibc-0: no key for chain ibc-0 (key \"relayer2\"); add it with `relayd keys add --chain ibc-0 --name relayer2`",
    ]);
    std::fs::write(
        dir.path().join("key2.json"),
        format!("{{\"private_key\": \"{}\"}}", "2e".repeat(32)),
    )
    .expect("key");
    let added = relayd(
        dir.path(),
        &[
            "-c",
            "c.toml",
            "keys",
            "add",
            "--chain",
            "ibc-0",
            "--name",
            "relayer2",
            "--key-file",
            "key2.json",
        ],
    );
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    let out = relayd(dir.path(), &["-c", "c.toml", "config", "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::write(dir.path().join("c.toml"), cosmos_only).expect("config");
    std::fs::remove_file(dir.path().join("data/keys/ibc-0@relayer2.json")).expect("second key");

    // The stored key is the chain's only key: a key_name or account_prefix other than its own is refused.
    let renamed = cosmos_only
        .replace("key_name = \"relayer\"", "key_name = \"other\"")
        .replace("account_prefix = \"cosmos\"", "account_prefix = \"osmo\"");
    std::fs::write(dir.path().join("c.toml"), renamed).expect("config");
    let stored = relayd(dir.path(), &["-c", "c.toml", "keys", "list", "--json"]);
    let address = text(&stored.stdout)
        .split('"')
        .find(|w| w.starts_with("cosmos1"))
        .expect("the stored key's address")
        .to_owned();
    expect(&[
        "c.toml:11: chains[0].key_name: the key stored for chain ibc-0 is named \"relayer\"; add this one with `relayd keys add --chain ibc-0`",
        &format!("c.toml:10: chains[0].account_prefix: the key stored for chain ibc-0 has address {address}, not one of prefix \"osmo\"; add the key again with `relayd keys add --chain ibc-0`"),
    ]);
    std::fs::write(dir.path().join("c.toml"), cosmos_only).expect("config");
    std::fs::write(dir.path().join("c.toml"), CONFIG).expect("config");
    let out = relayd(
        dir.path(),
        &["-c", "c.toml", "config", "validate", "--file-only"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn file_errors_name_their_key_and_stop_start_with_exit_code_2() {
    let dir = fixtures().join("invalid");
    for (file, message) in [
        (
            "gas-two-values.toml",
            "gas-two-values.toml:7: chains[0].gas: string values must be quoted, expected literal string\n",
        ),
        (
            "no-chains.toml",
            "no-chains.toml:1: no [[chains]] configured: relayd would have nothing to relay\n",
        ),
        (
            "nul-in-data-dir.toml",
            "nul-in-data-dir.toml:2: global.data_dir: contains a NUL byte, which no file name may hold\n",
        ),
    ] {
        for command in ["validate", "start"] {
            let args: &[&str] = if command == "start" {
                &["-c", file, "start"]
            } else {
                &["-c", file, "config", "validate"]
            };
            let out = relayd(&dir, args);
            assert_eq!(out.status.code(), Some(2), "{file} {command}");
            assert_eq!(text(&out.stderr), message, "{file} {command}");
        }
    }
}

#[test]
fn an_endless_config_file_is_refused_after_the_bound() {
    let out = relayd(&fixtures(), &["-c", "/dev/zero", "config", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "/dev/zero: the file is larger than 1024 KiB; is this the configuration file?\n"
    );
}

#[test]
fn an_empty_relayd_config_variable_does_not_hide_the_option() {
    let out = Command::new(BIN)
        .current_dir(fixtures())
        .env("RELAYD_CONFIG", "")
        .args([
            "--config",
            "adr-002.toml",
            "config",
            "validate",
            "--file-only",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_clearing_request_names_a_bounded_number_of_sequences() {
    let out = relayd(
        &fixtures(),
        &[
            "-c",
            "adr-002.toml",
            "clear",
            "packets",
            "--chain",
            "chain_A",
            "--port",
            "transfer",
            "--channel",
            "channel-0",
            "--sequences",
            "1..1000000,2000000..3000000",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "relayd: --sequences names more than 100000 sequences; clear in several requests\n"
    );
}

/// The near-cli credentials of `account` with an ed25519 key pair (devnet keys, seed "checks").
fn near_credentials(account: &str, public: &str, private: &str) -> String {
    format!("{{\"account_id\": \"{account}\", \"public_key\": \"ed25519:{public}\", \"private_key\": \"ed25519:{private}\"}}")
}

#[test]
fn validate_checks_each_near_key_file_and_refuses_one_key_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[[chains]]
id = \"near-0\"
type = \"near\"
rpc_addr = \"127.0.0.1:2\"
contract_account = \"ibc.test\"
signer_account = \"relayer.devnet\"
key_files = [\"a.json\", \"b.json\", \"again.json\", \"user.json\", \"open.json\"]
";
    std::fs::write(dir.path().join("c.toml"), config).expect("config");
    let first = near_credentials(
        "relayer.devnet",
        "3hdx4XkC45Qh6BUemhosY3z8djgvP5NLA4atgJyygXaW",
        "QRgSrtTbkQweKScfgkuPC4Aqhss6PLTsfFNnXXQDd8jAAZ3XYHU3bXc2rzNifVjo3VGFTCkcDrVmX6hgLpAdwSN",
    );
    let second = near_credentials(
        "relayer.devnet",
        "2RFQiaDAhwJrvveRQjM1eyykJ8aMUAbGosNwVZG8MHKQ",
        "54ZRxfjKesuZruNP4Jdu3Vfcd8bEEuEDqBPJyZirUxaoTinFVRa2v6cZoqCd24Q6wDDmWvikm9G89pdmWm6dU3zJ",
    );
    let user = near_credentials(
        "user0.devnet",
        "FwCndcnviKGcZoL7YvYiefsrpQpEx4zruwHxminBqNDy",
        "4i5bB9Q894zAaccJCo9PLGpQcEkVQdrnCzjnoBKziSGGuVUeLdXAHxXRT4WqTgAcKQ3hCWxn7CHaXZAGaD4etAx3",
    );
    for (name, body, mode) in [
        ("a.json", &first, 0o600),
        ("b.json", &second, 0o600),
        ("again.json", &first, 0o600),
        ("user.json", &user, 0o600),
        ("open.json", &second, 0o644),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).expect("key");
        chmod(&path, mode);
    }
    let out = relayd(dir.path(), &["-c", "c.toml", "config", "validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        [
            "c.toml:7: chains[0].key_files[2]: holds the same access key as key_files[0]; each file must hold a key of its own",
            "c.toml:7: chains[0].key_files[3]: user.json: key is for account user0.devnet, the chain's signer is relayer.devnet",
            "c.toml:7: chains[0].key_files[4]: open.json: mode 644 lets other users read the key; run `chmod 600 open.json`",
        ]
        .join("\n")
            + "\n"
    );
    // Without the bad files the list is accepted.
    std::fs::write(
        dir.path().join("c.toml"),
        config.replace(", \"again.json\", \"user.json\", \"open.json\"", ""),
    )
    .expect("config");
    let out = relayd(dir.path(), &["-c", "c.toml", "config", "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
