//! Property tests of the configuration parser: arbitrary text, and valid files bent out of shape, must give
//! errors that name the file (and, for a value put wrong, its line and key), never a panic.
//!
//! `PROPTEST_CASES` raises the number of cases for soak runs (`benches/fuzz.sh`).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use relayd_config::{Config, ConfigErrors};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config")
}

/// Every configuration file under the fixtures, valid and invalid, as text.
fn corpus() -> Vec<String> {
    let mut files = vec![
        fixtures().join("cosmos-near.toml"),
        fixtures().join("adr-002.toml"),
    ];
    let mut invalid: Vec<PathBuf> = std::fs::read_dir(fixtures().join("invalid"))
        .expect("invalid fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    invalid.sort();
    files.extend(invalid);
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("fixture readable"))
        .collect()
}

/// The number of cases: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const FILE: &str = "relayd.toml";

/// Parses `text` and checks the shape every error must have: the file named, lines inside the text, a message.
fn parse_checked(text: &str) -> Result<Config, ConfigErrors> {
    let result = Config::parse(text, Path::new(FILE));
    if let Err(errors) = &result {
        assert!(!errors.0.is_empty(), "an Err without errors for {text:?}");
        let lines = text.split('\n').count();
        for e in errors.iter() {
            assert_eq!(e.file, Path::new(FILE), "{e}");
            assert!(!e.message.is_empty(), "no message: {e:?}");
            if let Some(line) = e.line {
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            }
        }
    }
    result
}

/// Values of every TOML type and of the shapes relayd's own value types read, many of them wrong somewhere.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"\"".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("1e308".to_owned()),
        Just("nan".to_owned()),
        Just("-inf".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[1, \"a\"]".to_owned()),
        Just("{ mode = \"push\" }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("\"0/0\"".to_owned()),
        Just("\"1/0\"".to_owned()),
        Just("\"18446744073709551615/1\"".to_owned()),
        Just("\"99999999999999999days\"".to_owned()),
        Just("\"0s\"".to_owned()),
        Just("\"1ns\"".to_owned()),
        Just("\"a\\u0000b\"".to_owned()),
        Just("\"0.0stake\"".to_owned()),
        Just("\"1e400stake\"".to_owned()),
        Just("\"*/*\"".to_owned()),
        Just("\"http://[::1\"".to_owned()),
        Just("\"ws://:0\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[a-z0-9_./*:-]{0,12}".prop_map(|s| format!("{s:?}")),
        any::<String>().prop_map(|s| format!("{s:?}")),
    ]
}

/// One edit of a file's lines.
#[derive(Debug, Clone)]
enum Edit {
    /// Put a value in place of the value of the `key = value` line nearest to this index.
    Value(usize, String),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Insert text at a character position.
    Insert(usize, String),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let index = any::<prop::sample::Index>();
    prop_oneof![
        4 => (any::<usize>(), toml_value()).prop_map(|(i, v)| Edit::Value(i, v)),
        1 => any::<usize>().prop_map(Edit::DeleteLine),
        1 => any::<usize>().prop_map(Edit::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        1 => (any::<usize>(), prop_oneof![
            Just("[".to_owned()),
            Just("[[chains]]\n".to_owned()),
            Just("\"".to_owned()),
            Just("=".to_owned()),
            Just("\n".to_owned()),
            Just("'''".to_owned()),
            Just("\u{feff}".to_owned()),
            Just("é".to_owned()),
            "\\PC{0,8}",
        ]).prop_map(|(i, s)| Edit::Insert(i, s)),
        1 => index.prop_map(|i| Edit::Truncate(i.index(usize::MAX))),
    ]
}

/// Applies `edit` to `text`; returns the changed text and, for a value replacement, the 1-based line it touched.
fn apply(text: &str, edit: &Edit) -> (String, Option<usize>) {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let n = lines.len();
    match edit {
        Edit::Value(i, value) => {
            let assignments: Vec<usize> = (0..n)
                .filter(|&l| {
                    let t = lines[l].trim_start();
                    !t.starts_with('#') && !t.starts_with('[') && t.contains('=')
                })
                .collect();
            if assignments.is_empty() {
                return (text.to_owned(), None);
            }
            let l = assignments[i % assignments.len()];
            let key = lines[l].split('=').next().unwrap_or_default().to_owned();
            lines[l] = format!("{key}= {value}");
            return (lines.join("\n"), Some(l + 1));
        }
        Edit::DeleteLine(i) => {
            lines.remove(i % n);
        }
        Edit::DuplicateLine(i) => {
            let line = lines[i % n].clone();
            lines.insert(i % n, line);
        }
        Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
        Edit::Insert(i, s) => {
            let mut t = text.to_owned();
            let at = t
                .char_indices()
                .map(|(at, _)| at)
                .nth(i % (t.chars().count() + 1))
                .unwrap_or(t.len());
            t.insert_str(at, s);
            return (t, None);
        }
        Edit::Truncate(i) => {
            let at = text
                .char_indices()
                .map(|(at, _)| at)
                .nth(i % (text.chars().count() + 1))
                .unwrap_or(text.len());
            return (text[..at].to_owned(), None);
        }
    }
    (lines.join("\n"), None)
}

proptest! {
    #![proptest_config(cases(2000))]

    /// Any text at all: an answer, never a panic.
    #[test]
    fn arbitrary_text_is_answered(text in "\\PC{0,400}") {
        let _ = parse_checked(&text);
    }

    /// Text made of TOML's own punctuation and relayd's key names, which reaches deeper than random characters.
    #[test]
    fn toml_like_text_is_answered(parts in prop::collection::vec(prop_oneof![
        Just("[[chains]]\n"), Just("[global]\n"), Just("[admin]\n"), Just("[[connections]]\n"),
        Just("[connections.src]\n"), Just("[[connections.paths]]\n"), Just("[supervision]\n"),
        Just("id = "), Just("type = "), Just("rpc_addr = "), Just("gas = "), Just("timeout = "),
        Just("client_id = "), Just("chain_id = "), Just("\"cosmos\"\n"), Just("\"near\"\n"), Just("1\n"),
        Just("\"ibc-0\"\n"), Just("\"10s\"\n"), Just("{ a = 1 }\n"), Just("[1,\n"), Just("]\n"), Just("\n"),
        Just("="), Just("\""), Just("#"), Just("."),
    ], 0..40)) {
        let _ = parse_checked(&parts.concat());
    }

    /// Valid and invalid fixture files with a few edits: errors stay well formed.
    #[test]
    fn edited_fixtures_are_answered(pick in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..5)) {
        let corpus = corpus();
        let mut text = corpus[pick.index(corpus.len())].clone();
        for e in &edits {
            text = apply(&text, e).0;
        }
        let _ = parse_checked(&text);
    }

    /// One value of the full valid file put wrong: if that makes the file invalid, the error names a line and a key.
    #[test]
    fn a_wrong_value_is_named_by_line_and_key(i in any::<usize>(), value in toml_value()) {
        let valid = std::fs::read_to_string(fixtures().join("cosmos-near.toml")).expect("fixture");
        let (text, line) = apply(&valid, &Edit::Value(i, value));
        prop_assert!(line.is_some());
        if let Err(errors) = parse_checked(&text) {
            for e in errors.iter() {
                prop_assert!(e.line.is_some(), "no line: {e}\n{text}");
                prop_assert!(!e.key.is_empty(), "no key: {e}\n{text}");
            }
        }
    }
}
