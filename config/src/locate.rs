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
