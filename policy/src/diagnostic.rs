//! Diagnostics: what the front end says about a policy or a case file, each pinned to a
//! file, a line and a column.
//!
//! A [`Diagnostic`] is plain data so that callers can filter, count and serialize it;
//! [`Diagnostic::render`] turns one into the text a person reads, with the offending source
//! line and a marker under the offending token:
//!
//! ```text
//! fabrikam.toml:14:8: error[bad-cidr]: `10.1.0.0/33` is not a CIDR: invalid IP address syntax
//!    |
//! 14 | vnet = "10.1.0.0/33"
//!    |        ^^^^^^^^^^^^^
//!    = expected an address range such as "10.1.0.0/16"
//! ```
//!
//! The `Display` form is the first line only, which is what logs and `anyhow` chains want.

use crate::model::Location;
use std::fmt;

/// How bad a diagnostic is. Any error makes the policy unusable; warnings (lints) leave it
/// usable but point at something that weakens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    /// The word printed before the code: `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a source file.
///
/// `code` is a short stable identifier (`unknown-key`, `bad-cidr`, `service-tag-reliance`,
/// …) that tests and tools can match on without parsing `message`; `expected` says what
/// would have been accepted, when that can be said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {level}[{code}]: {message}", line = .location.line, column = .location.column)]
pub struct Diagnostic {
    pub level: Level,
    pub code: &'static str,
    pub file: String,
    pub location: Location,
    pub message: String,
    pub expected: Option<String>,
}

impl Diagnostic {
    /// An error at `location` of `file`.
    pub fn error(
        code: &'static str,
        file: impl Into<String>,
        location: Location,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            level: Level::Error,
            code,
            file: file.into(),
            location,
            message: message.into(),
            expected: None,
        }
    }

    /// A warning at `location` of `file`.
    pub fn warning(
        code: &'static str,
        file: impl Into<String>,
        location: Location,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            level: Level::Warning,
            ..Diagnostic::error(code, file, location, message)
        }
    }

    /// The same diagnostic, saying what would have been accepted.
    pub fn with_expected(mut self, expected: impl Into<String>) -> Diagnostic {
        self.expected = Some(expected.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    /// The diagnostic as a person should read it: the `file:line:col: level[code]: message`
    /// line, then the source line it points into with a `^` marker under the token that
    /// starts at the column, then what was expected.
    ///
    /// `source` is the text of the file the diagnostic is about. A location outside it
    /// (a stale or foreign source) just leaves out the source excerpt.
    pub fn render(&self, source: &str) -> String {
        let mut out = self.to_string();
        let line_no = self.location.line;
        let excerpt = line_no
            .checked_sub(1)
            .and_then(|index| source.lines().nth(index as usize));
        let gutter = line_no.to_string().len();
        if let Some(line) = excerpt {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let column = self.location.column.max(1) as usize;
            // Keep tabs in the marker's indentation so it lines up under tab-indented text.
            let indent: String = line
                .chars()
                .take(column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let rest: String = line.chars().skip(column - 1).collect();
            let width = token_width(&rest).max(1);
            out.push_str(&format!("\n{:gutter$} |\n", ""));
            out.push_str(&format!("{line_no} | {line}\n"));
            out.push_str(&format!("{:gutter$} | {indent}{}", "", "^".repeat(width)));
        }
        if let Some(expected) = &self.expected {
            out.push_str(&format!("\n{:gutter$} = expected {expected}", ""));
        }
        out
    }
}

/// How many characters the TOML token at the start of `text` spans: a quoted string up to
/// its closing quote, a bracketed array or header up to its matching bracket, or else a
/// bare word. Diagnostics only carry a start position; this recovers a useful marker
/// width from the source itself.
fn token_width(text: &str) -> usize {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return 0;
    };
    match first {
        '"' | '\'' => {
            let mut escaped = false;
            for (i, c) in text.chars().enumerate().skip(1) {
                if first == '"' && c == '\\' && !escaped {
                    escaped = true;
                    continue;
                }
                if c == first && !escaped {
                    return i + 1;
                }
                escaped = false;
            }
            text.chars().count()
        }
        '[' | '{' => {
            let mut depth = 0usize;
            let mut quote: Option<char> = None;
            for (i, c) in text.chars().enumerate() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '"' | '\'') => quote = Some(c),
                    (None, '[' | '{') => depth += 1,
                    (None, ']' | '}') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    (None, '#') => break,
                    _ => {}
                }
            }
            text.trim_end().chars().count()
        }
        _ => text
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}' | '=' | '#'))
            .count(),
    }
}

/// Maps byte offsets of one text to 1-based line and character columns.
///
/// TOML spans are byte ranges; people count characters, so a column after `…` must not
/// jump by three.
#[derive(Clone, Debug)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// The location of byte `offset` of `text` (the text this index was built from).
    /// Offsets past the end point just past the last character; an offset inside a
    /// multi-byte character counts as that character.
    pub(crate) fn location(&self, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let column = text
            .get(start..)
            .map(|rest| {
                rest.char_indices()
                    .take_while(|&(i, _)| start + i < offset)
                    .count()
            })
            .unwrap_or(0);
        Location {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }
}
