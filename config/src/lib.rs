//! Reads relayd's TOML configuration, checks it, and reports every problem with its file, line and key.
//!
//! The format follows ADR-002's "Configuration" section; `docs/config.md` documents every key.

mod error;
mod locate;
mod model;
mod validate;
pub mod values;

use std::path::Path;

use toml::de::DeTable;

pub use error::{ConfigError, ConfigErrors};
pub use locate::KeyPath;
pub use model::*;

/// Keys accepted for compatibility that should never be suggested to an operator.
const LEGACY_ALIASES: &[&str] = &["gas_adjustement"];

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                line: None,
                key: String::new(),
                message: format!("cannot read the file: {err}"),
            }])
        })?;
        Self::parse(&text, path)
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
            ConfigErrors(vec![error(err.span(), String::new(), message)])
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
