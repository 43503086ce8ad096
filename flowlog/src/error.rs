//! Errors that stop reading an input, and errors of the blob directory walk.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::read::ReadSummary;

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading the input failed.
    #[error("I/O error: {0}")]
    Io(io::Error),
    /// The input ended inside a JSON document.
    #[error("input is truncated: {message}")]
    Truncated {
        /// What the JSON parser was reading when the input ended.
        message: String,
    },
    /// The input is not valid JSON.
    #[error("invalid JSON: {message}")]
    Syntax {
        /// What the JSON parser found.
        message: String,
    },
    /// Valid JSON, but not the shape of a flow log: a string where an array
    /// is expected, a version that is not a number, and so on.
    #[error("unexpected structure: {message}")]
    Structure {
        /// What was found and what was expected.
        message: String,
    },
    /// An NSG flow log record declares a version this reader does not know.
    #[error("NSG flow log version {version} is not supported (versions 1 and 2 are)")]
    UnsupportedVersion {
        /// The declared version.
        version: u64,
    },
    /// A member needed to read the record is absent.
    #[error("required member `{member}` is missing")]
    MissingMember {
        /// The member's path, like `properties.Version`.
        member: &'static str,
    },
    /// The input is neither an Azure flow log document nor JSON lines.
    #[error("not a flow log: {found}")]
    UnknownFormat {
        /// What the input starts with.
        found: String,
    },
}

/// Where in the input an error was found, as far as it is known.
///
/// Indexes count from zero, like [`Position`](crate::Position). `line` and
/// `column` are those of the JSON parser, counting from one; for a member
/// that was buffered because it came before the members it depends on (see
/// the crate documentation on key order), they point at the end of the
/// enclosing object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorLocation {
    /// Index of the record (JSON lines: line number minus one).
    pub record: Option<usize>,
    /// Index of the flow entry within the record.
    pub flow: Option<usize>,
    /// Index of the group within the flow entry.
    pub group: Option<usize>,
    /// Index of the tuple within the group.
    pub tuple: Option<usize>,
    /// The member being read, like `records[].properties.Version`.
    pub member: Option<&'static str>,
    /// Line of the input, from one.
    pub line: Option<usize>,
    /// Column of the input, from one.
    pub column: Option<usize>,
}

impl fmt::Display for ErrorLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let indexes = [
            ("record", self.record),
            ("flow", self.flow),
            ("group", self.group),
            ("tuple", self.tuple),
        ];
        for (name, index) in indexes {
            if let Some(index) = index {
                parts.push(format!("{name} {index}"));
            }
        }
        if let Some(member) = self.member {
            parts.push(format!("in `{member}`"));
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            parts.push(format!("line {line}, column {column}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// An error that stopped reading a flow log.
///
/// It names the input, the place (record, flow, group and tuple indexes, the
/// member being read, line and column) and what was wrong. Tuples read before
/// the error were already handed to the callback; [`FlowLogError::summary`]
/// counts them.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: {}{}",
    .inner.source_name,
    located(&.inner.location),
    .inner.kind
)]
pub struct FlowLogError {
    // Boxed: the error travels through every parser frame, the success path
    // should not pay for its size.
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    source_name: String,
    location: ErrorLocation,
    kind: ErrorKind,
    summary: ReadSummary,
}

fn located(location: &ErrorLocation) -> String {
    let text = location.to_string();
    if text.is_empty() {
        text
    } else {
        format!("{text}: ")
    }
}

impl FlowLogError {
    pub(crate) fn new(
        source_name: &str,
        location: ErrorLocation,
        kind: ErrorKind,
        summary: ReadSummary,
    ) -> FlowLogError {
        FlowLogError {
            inner: Box::new(Inner {
                source_name: source_name.to_owned(),
                location,
                kind,
                summary,
            }),
        }
    }

    /// The name of the input, as given to the reader (a path for files).
    pub fn source_name(&self) -> &str {
        &self.inner.source_name
    }

    /// What was wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// Where it was found.
    pub fn location(&self) -> &ErrorLocation {
        &self.inner.location
    }

    /// What was read before the error.
    pub fn summary(&self) -> &ReadSummary {
        &self.inner.summary
    }

    /// Replaces the line and column (see [`crate::read_flow_log_file`]).
    pub(crate) fn set_line_column(&mut self, line: Option<usize>, column: Option<usize>) {
        self.inner.location.line = line;
        self.inner.location.column = column;
    }

    /// Takes the error apart, for a caller that wants the I/O error itself.
    pub fn into_kind(self) -> ErrorKind {
        self.inner.kind
    }
}

/// An error while listing a blob directory.
#[derive(Debug, thiserror::Error)]
#[error("cannot list flow log blobs: {}: {error}", path.display())]
pub struct WalkError {
    path: PathBuf,
    error: io::Error,
}

impl WalkError {
    pub(crate) fn new(path: PathBuf, error: io::Error) -> WalkError {
        WalkError { path, error }
    }

    /// The underlying I/O error (its text is already part of the message).
    pub fn io_error(&self) -> &io::Error {
        &self.error
    }

    /// The file or directory that could not be read.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}
