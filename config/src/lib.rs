//! Reads relayd's TOML configuration, checks it, and reports every problem with its file, line and key.
//!
//! The format follows ADR-002's "Configuration" section; `docs/config.md` documents every key.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod locate;
mod model;
pub mod reload;
mod validate;
pub mod values;

use std::path::Path;

use toml::de::DeTable;

pub use error::{ConfigError, ConfigErrors};
pub use locate::KeyPath;
pub use model::*;

/// Keys accepted for compatibility that should never be suggested to an operator.
const LEGACY_ALIASES: &[&str] = &["gas_adjustement"];

/// The largest configuration file read. Real files are a few kilobytes; the bound keeps a wrong path (a device,
/// a log file) from being read into memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads the file at `path`, at most [`MAX_CONFIG_BYTES`] of it, as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, ConfigErrors> {
    use std::io::Read;
    let whole = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: path.to_owned(),
            line: None,
            key: String::new(),
            message,
        }])
    };
    let file =
        std::fs::File::open(path).map_err(|e| whole(format!("cannot read the file: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(whole(format!(
            "the file is larger than {} KiB; is this the configuration file?",
            MAX_CONFIG_BYTES / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        whole(format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        Self::load_text(path).map(|(config, _)| config)
    }

    /// [`Config::load`], also returning the file's text so later checks can name lines with
    /// [`ConfigError::at`].
    pub fn load_text(path: &Path) -> Result<(Self, String), ConfigErrors> {
        let text = read_text(path)?;
        let config = Self::parse(&text, path)?;
        Ok((config, text))
    }

    /// Parses and validates `text`; `file` is only used to name it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigErrors> {
        let error =
            |span: Option<std::ops::Range<usize>>, key: String, message: String| ConfigError {
                file: file.to_owned(),
                line: span.map(|s| locate::line_of(text, s.start)),
                key,
                message,
            };

        let doc = DeTable::parse(text).map_err(|err| {
            let message = err.message().trim().replace('\n', "; ");
            // The parser knows the position only; the key written on that line is what the operator edits.
            let key = err
                .span()
                .map(|s| locate::key_on_line(text, s.start))
                .unwrap_or_default();
            ConfigErrors(vec![error(err.span(), key, message)])
        })?;

        let config: Config = serde_path_to_error::deserialize(toml::de::Deserializer::from(
            doc.clone(),
        ))
        .map_err(|err| {
            let key = err.path().to_string();
            let key = if key == "." { String::new() } else { key };
            let message = humanize(err.inner().message());
            ConfigErrors(vec![error(err.inner().span(), key, message)])
        })?;

        let issues = validate::check(&config);
        if issues.is_empty() {
            return Ok(config);
        }
        let mut errors: Vec<ConfigError> = issues
            .into_iter()
            .map(|issue| {
                let span = issue.path.span_in(&doc);
                error(Some(span), issue.path.to_string(), issue.message)
            })
            .collect();
        errors.sort_by_key(|e| e.line);
        Err(ConfigErrors(errors))
    }

    /// The number of relay paths: each listed path, plus one "any port" path per connection without `paths`.
    pub fn path_count(&self) -> usize {
        self.connections
            .iter()
            .flatten()
            .map(|c| c.paths.as_ref().map_or(1, Vec::len))
            .sum()
    }
}

impl ConfigError {
    /// A problem found after loading (a file the configuration names, a key store), at `key` of the file whose
    /// `text` was loaded from `file`.
    pub fn at(file: &Path, text: &str, key: &KeyPath, message: String) -> Self {
        let line = DeTable::parse(text)
            .ok()
            .map(|doc| locate::line_of(text, key.span_in(&doc).start));
        Self {
            file: file.to_owned(),
            line,
            key: key.to_string(),
            message,
        }
    }
}

/// Rewords serde's messages in the file's terms: keys rather than fields, and a suggestion for typos.
fn humanize(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (_, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let unknown = &rest[..rest.find('`').unwrap_or(rest.len())];
        let valid: Vec<&str> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|k| !LEGACY_ALIASES.contains(k))
            .collect();
        return match closest(unknown, &valid) {
            Some(best) => format!("unknown key; did you mean `{best}`?"),
            None if valid.is_empty() => "unknown key; this table takes no keys".to_owned(),
            None => format!("unknown key; valid keys here: {}", valid.join(", ")),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(", expected ");
        return format!("unknown value {value:?}; expected {expected}");
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("missing key {rest}");
    }
    message.to_owned()
}

/// The valid key nearest to a misspelt one, if any is near enough to be what was meant.
fn closest<'a>(unknown: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_pick_the_nearest_key() {
        assert_eq!(
            humanize("unknown field `gas_adjustmnt`, expected one of `id`, `gas_adjustement`, `gas_adjustment`"),
            "unknown key; did you mean `gas_adjustment`?"
        );
        assert_eq!(
            humanize("unknown field `zzzzzz`, expected `timeout` or `strategy`"),
            "unknown key; valid keys here: timeout, strategy"
        );
        assert_eq!(
            humanize("unknown variant `nera`, expected `cosmos` or `near`"),
            "unknown value \"nera\"; expected `cosmos` or `near`"
        );
    }
}
