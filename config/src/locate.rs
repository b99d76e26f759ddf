//! Key paths such as `chains[1].gas_price`, and where they stand in the file, so every error can name a line.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path from the document root to a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a table key.
    pub fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_owned()));
        next
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// The byte range of the deepest part of this path present in the document; missing keys are reported
    /// at their parent table.
    pub fn span_in(&self, root: &Spanned<DeTable<'_>>) -> Range<usize> {
        let mut span = 0..0;
        let mut current: Option<&Spanned<DeValue<'_>>> = None;
        for segment in &self.0 {
            let next = match (segment, current) {
                (Segment::Key(k), None) => root.get_ref().get(k.as_str()),
                (Segment::Key(k), Some(v)) => v.get_ref().get(k.as_str()),
                (Segment::Index(i), Some(v)) => v.get_ref().get(*i),
                (Segment::Index(_), None) => None,
            };
            match next {
                Some(value) => {
                    span = value.span();
                    current = Some(value);
                }
                None => break,
            }
        }
        span
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key written on the line holding byte `offset`, with the table it is in (`chains[1].gas`), for syntax
/// errors the parser reports by position only. Empty when the line holds no `key =`. The table is found from
/// the headers above the line, counting `[[name]]` headers for the array index.
pub fn key_on_line(text: &str, offset: usize) -> String {
    let line_no = line_of(text, offset);
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut current = "";
    for (i, line) in text.split('\n').enumerate() {
        if i + 1 == line_no {
            current = line;
            break;
        }
        if let Some((name, array)) = header(line) {
            table = if array {
                let n = counts.entry(name.clone()).or_default();
                *n += 1;
                format!("{name}[{}]", *n - 1)
            } else {
                name
            };
        }
    }
    let Some((key, _)) = current.split_once('=') else {
        return if header(current).is_some() {
            String::new()
        } else {
            table
        };
    };
    let key: String = key
        .trim()
        .split('.')
        .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect::<Vec<_>>()
        .join(".");
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if key.is_empty() || !key.chars().all(bare) {
        return table;
    }
    if table.is_empty() {
        key
    } else {
        format!("{table}.{key}")
    }
}

/// The table name of a `[name]` or `[[name]]` header line, and whether it is an array of tables.
fn header(line: &str) -> Option<(String, bool)> {
    let line = line.split('#').next().unwrap_or_default().trim();
    let (inner, array) = match line.strip_prefix("[[") {
        Some(rest) => (rest.strip_suffix("]]")?, true),
        None => (line.strip_prefix('[')?.strip_suffix(']')?, false),
    };
    let name: Vec<&str> = inner
        .split('.')
        .map(|p| p.trim().trim_matches('"'))
        .collect();
    let ok = |p: &&str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    name.iter().all(ok).then(|| (name.join("."), array))
}

#[cfg(test)]
mod tests {
    use super::key_on_line;

    #[test]
    fn the_key_on_a_line_is_named_with_its_table() {
        let text = "title = \"x\"\n[global]\ntimeout = 1 2\n[[chains]]\nid = \"a\"\n[[chains]]\n# note\ngas = 200000 200\n[chains.packet_filter]\n";
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(key_on_line(text, at("1 2")), "global.timeout");
        assert_eq!(key_on_line(text, at("200000")), "chains[1].gas");
        assert_eq!(key_on_line(text, at("\"x\"")), "title");
        assert_eq!(key_on_line(text, at("# note")), "chains[1]");
        assert_eq!(key_on_line(text, at("[chains.packet_filter]")), "");
    }
}
