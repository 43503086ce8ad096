//! The span-aware TOML layer shared by policies and case files.
//!
//! The TOML is read into `toml`'s [`DeTable`], which keeps the byte span of every key and
//! value, and walked by hand rather than through `#[derive(Deserialize)]`: serde stops at
//! the first problem, while a policy author wants every problem of the file, each with its
//! line, column and what would have been accepted. The [`Reader`] collects those
//! diagnostics; [`Table`] and the value converters below report into it and return `None`
//! for anything they rejected, so callers can go on checking the rest.

use crate::diagnostic::{Diagnostic, LineIndex};
use crate::model::{Location, PortRange};
use ipnet::IpNet;
use serde_spanned::Spanned;
use std::net::IpAddr;
use std::ops::Range;
use toml::de::{DeString, DeTable, DeValue};

/// Parses `text` as TOML. Syntax errors (all of them, as far as the parser can recover)
/// go into the reader, and then there is no document: checking a half-understood file
/// would mostly report the parser's guesses.
pub(crate) fn parse_document<'i>(reader: &mut Reader<'_>, text: &'i str) -> Option<DeTable<'i>> {
    let (document, mut errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Some(document.into_inner());
    }
    // After the first error on a line the parser's recovery mostly reports its own
    // confusion (an unclosed array swallows the next line: "unexpected `=`", "missing
    // comma", …), so only the first error of each line is kept.
    errors.sort_by_key(|e| e.span().map_or(0, |s| s.start));
    let mut last_line = None;
    for error in errors {
        let span = error.span().unwrap_or(0..0);
        let line = reader.location(&span).line;
        if last_line == Some(line) {
            continue;
        }
        last_line = Some(line);
        let message = error.message();
        let (message, expected) = match message.split_once(", expected ") {
            Some((what, expected)) => (what.to_owned(), Some(expected.to_owned())),
            None => (message.to_owned(), None),
        };
        let diagnostic = reader.diagnostic(
            crate::diagnostic::Level::Error,
            "toml-syntax",
            &span,
            format!("TOML syntax: {message}"),
        );
        reader.push(match expected {
            Some(expected) => diagnostic.with_expected(expected),
            None => diagnostic,
        });
    }
    None
}

/// Collects diagnostics for one source file and turns spans into locations.
pub(crate) struct Reader<'s> {
    file: &'s str,
    text: &'s str,
    lines: LineIndex,
    diagnostics: Vec<Diagnostic>,
}

impl<'s> Reader<'s> {
    pub(crate) fn new(file: &'s str, text: &'s str) -> Reader<'s> {
        Reader {
            file,
            text,
            lines: LineIndex::new(text),
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn location(&self, span: &Range<usize>) -> Location {
        self.lines.location(self.text, span.start)
    }

    pub(crate) fn diagnostic(
        &self,
        level: crate::diagnostic::Level,
        code: &'static str,
        span: &Range<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let diagnostic = Diagnostic::error(code, self.file, self.location(span), message);
        Diagnostic {
            level,
            ..diagnostic
        }
    }

    pub(crate) fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub(crate) fn error(&mut self, code: &'static str, span: &Range<usize>, message: String) {
        let diagnostic = self.diagnostic(crate::diagnostic::Level::Error, code, span, message);
        self.push(diagnostic);
    }

    pub(crate) fn error_expected(
        &mut self,
        code: &'static str,
        span: &Range<usize>,
        message: String,
        expected: impl Into<String>,
    ) {
        let diagnostic = self
            .diagnostic(crate::diagnostic::Level::Error, code, span, message)
            .with_expected(expected);
        self.push(diagnostic);
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }
}

/// A TOML table being checked, with the span of its header (or inline braces) for
/// "missing key" errors and a human name (`[workspace]`, `[[rules]]`) for messages.
#[derive(Clone)]
pub(crate) struct Table<'t, 'i> {
    pub(crate) entries: &'t DeTable<'i>,
    span: Range<usize>,
    pub(crate) name: String,
}

/// A key's span and its value.
pub(crate) type Entry<'t, 'i> = (&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>);

impl<'t, 'i> Table<'t, 'i> {
    pub(crate) fn new(entries: &'t DeTable<'i>, span: Range<usize>, name: String) -> Self {
        Table {
            entries,
            span,
            name,
        }
    }

    pub(crate) fn span(&self) -> &Range<usize> {
        &self.span
    }

    /// Reports every key that is not in `allowed`, listing the allowed keys and suggesting
    /// the closest one.
    pub(crate) fn check_keys(&self, reader: &mut Reader<'_>, allowed: &[&str]) {
        for key in self.entries.keys() {
            let name: &str = key.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let mut message = format!("unknown key `{name}` in {}", self.name);
            if let Some(close) = closest(name, allowed.iter().copied()) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            reader.error_expected("unknown-key", &key.span(), message, one_of(allowed));
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Entry<'t, 'i>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
    }

    /// The entries in source order (the map itself is ordered by key).
    pub(crate) fn entries_in_order(&self) -> Vec<Entry<'t, 'i>> {
        let mut entries: Vec<Entry<'t, 'i>> = self.entries.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
    }

    fn missing(&self, reader: &mut Reader<'_>, key: &str, expected: &str) {
        reader.error_expected(
            "missing-key",
            &self.span,
            format!("{} has no `{key}`", self.name),
            format!("`{key} = {expected}`"),
        );
    }

    /// An optional string; a value of another type is reported.
    pub(crate) fn string(&self, reader: &mut Reader<'_>, key: &str) -> Option<Spanned<&'t str>> {
        let (_, value) = self.get(key)?;
        as_string(reader, key, value)
    }

    /// A string that must be present and not empty.
    pub(crate) fn required_string(
        &self,
        reader: &mut Reader<'_>,
        key: &str,
        expected: &str,
    ) -> Option<Spanned<&'t str>> {
        if self.get(key).is_none() {
            self.missing(reader, key, expected);
            return None;
        }
        let value = self.string(reader, key)?;
        if value.get_ref().trim().is_empty() {
            reader.error_expected(
                "empty-value",
                &value.span(),
                format!("`{key}` is empty"),
                expected,
            );
            return None;
        }
        Some(value)
    }

    /// A required value, for the types this layer has no accessor for.
    pub(crate) fn required(
        &self,
        reader: &mut Reader<'_>,
        key: &str,
        expected: &str,
    ) -> Option<&'t Spanned<DeValue<'i>>> {
        match self.get(key) {
            Some((_, value)) => Some(value),
            None => {
                self.missing(reader, key, expected);
                None
            }
        }
    }

    pub(crate) fn boolean(&self, reader: &mut Reader<'_>, key: &str) -> Option<Spanned<bool>> {
        let (_, value) = self.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(value.span(), *b)),
            other => {
                wrong_type(reader, key, value, other, "a boolean", "true or false");
                None
            }
        }
    }

    /// An optional array; its items are checked by the caller.
    pub(crate) fn array(
        &self,
        reader: &mut Reader<'_>,
        key: &str,
    ) -> Option<(Range<usize>, &'t [Spanned<DeValue<'i>>])> {
        let (_, value) = self.get(key)?;
        as_array(reader, key, value).map(|items| (value.span(), items))
    }

    /// An optional array of strings. Items of another type are reported and skipped.
    pub(crate) fn string_array(
        &self,
        reader: &mut Reader<'_>,
        key: &str,
    ) -> Option<(Range<usize>, Vec<Spanned<&'t str>>)> {
        let (span, items) = self.array(reader, key)?;
        let strings = items
            .iter()
            .filter_map(|item| as_string(reader, key, item))
            .collect();
        Some((span, strings))
    }

    /// An optional sub-table (`[a.b]` or an inline `{ … }`).
    pub(crate) fn table(&self, reader: &mut Reader<'_>, key: &str) -> Option<Table<'t, 'i>> {
        let (_, value) = self.get(key)?;
        match value.get_ref() {
            DeValue::Table(entries) => Some(Table::new(entries, value.span(), format!("[{key}]"))),
            other => {
                wrong_type(reader, key, value, other, "a table", &format!("[{key}]"));
                None
            }
        }
    }

    /// An optional array of tables (`[[key]]` or an array of inline tables). Items that are
    /// not tables are reported and skipped.
    pub(crate) fn tables(&self, reader: &mut Reader<'_>, key: &str) -> Vec<Table<'t, 'i>> {
        let Some((_, value)) = self.get(key) else {
            return Vec::new();
        };
        let Some(items) = as_array(reader, key, value) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| match item.get_ref() {
                DeValue::Table(entries) => {
                    Some(Table::new(entries, item.span(), format!("[[{key}]]")))
                }
                other => {
                    wrong_type(reader, key, item, other, "a table", &format!("[[{key}]]"));
                    None
                }
            })
            .collect()
    }
}

/// The string in `value`, or a `wrong-type` error naming `key`.
pub(crate) fn as_string<'t>(
    reader: &mut Reader<'_>,
    key: &str,
    value: &'t Spanned<DeValue<'_>>,
) -> Option<Spanned<&'t str>> {
    match value.get_ref() {
        DeValue::String(s) => Some(Spanned::new(value.span(), s.as_ref())),
        other => {
            wrong_type(reader, key, value, other, "a string", "a quoted string");
            None
        }
    }
}

/// The items of the array in `value`, or a `wrong-type` error naming `key`.
pub(crate) fn as_array<'t, 'i>(
    reader: &mut Reader<'_>,
    key: &str,
    value: &'t Spanned<DeValue<'i>>,
) -> Option<&'t [Spanned<DeValue<'i>>]> {
    match value.get_ref() {
        DeValue::Array(items) => Some(items),
        other => {
            wrong_type(
                reader,
                key,
                value,
                other,
                "an array",
                &format!("`{key} = [ … ]`"),
            );
            None
        }
    }
}

/// The integer in `value`: `Some(Err(()))` for an integer beyond `i64`, which the caller
/// reports as out of its own range; `None` (reported here) when `value` is no integer.
pub(crate) fn as_integer(
    reader: &mut Reader<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    expected: &str,
) -> Option<Result<i64, ()>> {
    match value.get_ref() {
        DeValue::Integer(i) => Some(i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| ())),
        other => {
            wrong_type(reader, key, value, other, "an integer", expected);
            None
        }
    }
}

pub(crate) fn wrong_type(
    reader: &mut Reader<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    found: &DeValue<'_>,
    want: &str,
    expected: &str,
) {
    reader.error_expected(
        "wrong-type",
        &value.span(),
        format!("`{key}` must be {want}, found {}", found.type_str()),
        expected,
    );
}

/// `one of: a, b, c` for `expected` texts.
pub(crate) fn one_of(accepted: &[&str]) -> String {
    format!("one of: {}", accepted.join(", "))
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely
/// typo (at most a third of the word's length, and at least one edit allowed).
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance over characters where swapping two neighbours counts as one edit
/// (optimal string alignment), since `fihr` for `fhir` is the commonest slip.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        for (j, &cb) in b.iter().enumerate() {
            let (i1, j1) = (i + 1, j + 1);
            let mut best = (d[at(i, j)] + usize::from(ca != cb))
                .min(d[at(i, j1)] + 1)
                .min(d[at(i1, j)] + 1);
            if i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca) {
                best = best.min(d[at(i - 1, j - 1)] + 1);
            }
            d[at(i1, j1)] = best;
        }
    }
    d[at(a.len(), b.len())]
}

/// Parses an enumerated value (`allow`, `fhir`, …), listing the accepted ones on error.
pub(crate) fn enum_value<T>(
    reader: &mut Reader<'_>,
    key: &str,
    value: &Spanned<&str>,
    accepted: &[&str],
    from_id: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let text = *value.get_ref();
    if let Some(v) = from_id(text) {
        return Some(v);
    }
    let mut message = format!("unknown {key} `{text}`");
    if let Some(close) = closest(text, accepted.iter().copied()) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    reader.error_expected("unknown-value", &value.span(), message, one_of(accepted));
    None
}

/// Parses an address: `a.b.c.d` or an IPv6 address.
pub(crate) fn ip_addr(reader: &mut Reader<'_>, key: &str, value: &Spanned<&str>) -> Option<IpAddr> {
    let text = value.get_ref().trim();
    match text.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            reader.error_expected(
                "bad-ip",
                &value.span(),
                format!("`{key}`: `{text}` is not an IP address"),
                "an IPv4 or IPv6 address such as \"10.1.2.5\"",
            );
            None
        }
    }
}

/// Parses an address range: a CIDR whose host bits are zero, or a bare address meaning
/// that one address (/32 or /128). Host bits are refused because `10.1.2.5/16` is almost
/// always a typo for either `10.1.0.0/16` or `10.1.2.5/32`, and guessing would hide it.
pub(crate) fn ip_net(reader: &mut Reader<'_>, key: &str, value: &Spanned<&str>) -> Option<IpNet> {
    let text = value.get_ref().trim();
    const EXPECTED: &str = "an address range such as \"10.1.0.0/16\" or an address";
    if !text.contains('/') {
        return match text.parse::<IpAddr>() {
            Ok(ip) => Some(IpNet::from(ip)),
            Err(_) => {
                reader.error_expected(
                    "bad-cidr",
                    &value.span(),
                    format!("`{key}`: `{text}` is neither a CIDR nor an IP address"),
                    EXPECTED,
                );
                None
            }
        };
    }
    match text.parse::<IpNet>() {
        Ok(net) if net.trunc() == net => Some(net),
        Ok(net) => {
            reader.error_expected(
                "bad-cidr",
                &value.span(),
                format!(
                    "`{key}`: `{text}` has host bits set; the network is `{}`",
                    net.trunc()
                ),
                EXPECTED,
            );
            None
        }
        Err(_) => {
            let detail = match text.split_once('/') {
                Some((addr, len)) if addr.parse::<IpAddr>().is_ok() => {
                    format!("prefix length `{len}` is not valid for that address")
                }
                Some((addr, _)) => format!("`{addr}` is not an IP address"),
                None => "not a CIDR".to_owned(),
            };
            reader.error_expected(
                "bad-cidr",
                &value.span(),
                format!("`{key}`: `{text}` is not a CIDR: {detail}"),
                EXPECTED,
            );
            None
        }
    }
}

/// Parses one port or port range: an integer, or a string `"N"` or `"A-B"` with A ≤ B.
pub(crate) fn port_range(
    reader: &mut Reader<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
) -> Option<PortRange> {
    const EXPECTED: &str = "a port 0-65535 or a range string such as \"1000-2000\"";
    let bad = |reader: &mut Reader<'_>, message: String| {
        reader.error_expected("bad-port", &value.span(), message, EXPECTED);
        None
    };
    match value.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => match u16::try_from(n) {
                Ok(port) => Some(PortRange {
                    first: port,
                    last: port,
                }),
                Err(_) => bad(reader, format!("`{key}`: port {n} is out of range")),
            },
            Err(_) => bad(reader, format!("`{key}`: port {i} is out of range")),
        },
        DeValue::String(s) => {
            let text = s.trim();
            let (first, last) = text.split_once('-').unwrap_or((text, text));
            let parse = |part: &str| -> Result<u16, String> {
                let part = part.trim();
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("`{key}`: `{text}` is not a port or port range"));
                }
                part.parse::<u16>()
                    .map_err(|_| format!("`{key}`: port {part} in `{text}` is out of range"))
            };
            match (parse(first), parse(last)) {
                (Ok(first), Ok(last)) if first <= last => Some(PortRange { first, last }),
                (Ok(first), Ok(last)) => bad(
                    reader,
                    format!("`{key}`: range `{text}` is empty ({first} is above {last})"),
                ),
                (Err(message), _) | (_, Err(message)) => bad(reader, message),
            }
        }
        other => {
            wrong_type(
                reader,
                key,
                value,
                other,
                "an integer or a range string",
                EXPECTED,
            );
            None
        }
    }
}

/// Parses a protocol: `tcp`, `udp`, `icmp`, `icmpv6`, `any` or an IANA number 0-255.
/// `Some(None)` is "any".
pub(crate) fn protocol(
    reader: &mut Reader<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    allow_any: bool,
) -> Option<Option<u8>> {
    use linkward_guest::record::protocol::{ICMP, ICMPV6, TCP, UDP};
    let names: &[&str] = if allow_any {
        &["tcp", "udp", "icmp", "icmpv6", "any"]
    } else {
        &["tcp", "udp", "icmp", "icmpv6"]
    };
    let expected = format!("{}, or a protocol number 0-255", one_of(names));
    match value.get_ref() {
        DeValue::String(s) => {
            let text = Spanned::new(value.span(), s.as_ref());
            enum_value(reader, key, &text, names, |name| match name {
                "tcp" => Some(Some(TCP)),
                "udp" => Some(Some(UDP)),
                "icmp" => Some(Some(ICMP)),
                "icmpv6" => Some(Some(ICMPV6)),
                "any" => Some(None),
                _ => None,
            })
        }
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .and_then(|n| u8::try_from(n).ok())
        {
            Some(n) => Some(Some(n)),
            None => {
                reader.error_expected(
                    "bad-protocol",
                    &value.span(),
                    format!("`{key}`: protocol number {i} is out of range"),
                    expected,
                );
                None
            }
        },
        other => {
            wrong_type(
                reader,
                key,
                value,
                other,
                "a string or an integer",
                &expected,
            );
            None
        }
    }
}

/// Checks a host name (`a.example.com`) or, with `allow_wildcard`, a suffix pattern
/// (`*.example.com`), and returns it in lower case without a trailing dot.
pub(crate) fn host_name(
    reader: &mut Reader<'_>,
    key: &str,
    value: &Spanned<&str>,
    allow_wildcard: bool,
) -> Option<String> {
    let text = value.get_ref().trim();
    let lower = text.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    let (wildcard, rest) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let problem = if wildcard && !allow_wildcard {
        Some("wildcards are not accepted here".to_owned())
    } else if rest.is_empty() {
        Some("the name is empty".to_owned())
    } else if rest.len() > 253 {
        Some("the name is longer than 253 characters".to_owned())
    } else {
        rest.split('.').find_map(|label| {
            if label.is_empty() {
                Some("it has an empty label".to_owned())
            } else if label.len() > 63 {
                Some(format!("label `{label}` is longer than 63 characters"))
            } else if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                Some(format!(
                    "label `{label}` has characters other than letters, digits and `-`"
                ))
            } else if label.starts_with('-') || label.ends_with('-') {
                Some(format!("label `{label}` starts or ends with `-`"))
            } else {
                None
            }
        })
    };
    match problem {
        None => Some(name.to_owned()),
        Some(problem) => {
            let expected = if allow_wildcard {
                "a host name such as \"x.blob.core.windows.net\" or a suffix such as \"*.blob.core.windows.net\""
            } else {
                "a host name such as \"fabrikam-records.fhir.azurehealthcareapis.com\""
            };
            reader.error_expected(
                "bad-hostname",
                &value.span(),
                format!("`{key}`: `{text}` is not a valid host name: {problem}"),
                expected,
            );
            None
        }
    }
}
