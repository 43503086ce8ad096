//! The Host header of an HTTP/1.x request.
//!
//! Plain-HTTP requests name their service in the Host header, which tells a monitor which
//! workspace service a client meant when the address alone does not.
//!
//! ```
//! use linkward_decode::http::request_host;
//!
//! let request = b"GET /metadata HTTP/1.1\r\nAccept: */*\r\nHost: ws-fhir.fhir.azurehealthcareapis.com:443\r\n\r\n";
//! assert_eq!(request_host(request), Some("ws-fhir.fhir.azurehealthcareapis.com"));
//! assert_eq!(request_host(b"HTTP/1.1 200 OK\r\n\r\n"), None);
//! ```

/// Longest method token accepted; real methods are at most a dozen characters, and the
/// bound keeps arbitrary binary payloads from being scanned as requests.
const MAX_METHOD: usize = 24;

/// The Host header of the HTTP/1.x request at the start of `payload`, without its port.
///
/// The payload must start with a request line (`METHOD SP target SP HTTP/1.x`); headers
/// are then read up to the empty line or the end of the captured bytes. A Host line is
/// only returned when it is complete (ends in a line feed), so a header cut by the
/// capture is never mistaken for a shorter name. For an IPv6 literal
/// (`[2001:db8::1]:8080`) the address without brackets is returned. Case is kept as
/// sent.
pub fn request_host(payload: &[u8]) -> Option<&str> {
    let mut lines = Lines { rest: payload };
    let request_line = lines.next()?;
    if !is_request_line(request_line) {
        return None;
    }
    for line in lines {
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        if !name.eq_ignore_ascii_case(b"host") {
            continue;
        }
        let value = value.get(1..).unwrap_or(&[]).trim_ascii();
        return std::str::from_utf8(strip_port(value)?).ok();
    }
    None
}

/// Complete lines, without their CR LF (or bare LF); a last line without a line feed is
/// not returned.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let lf = self.rest.iter().position(|&b| b == b'\n')?;
        let (line, rest) = self.rest.split_at(lf);
        self.rest = rest.get(1..).unwrap_or(&[]);
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// `token SP target SP HTTP/1.d`, with a method made of RFC 9110 token characters.
fn is_request_line(line: &[u8]) -> bool {
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let (method, rest) = line.split_at(sp);
    if method.is_empty() || method.len() > MAX_METHOD || !method.iter().all(|&b| is_tchar(b)) {
        return false;
    }
    let Some(version_at) = rest.iter().rposition(|&b| b == b' ') else {
        return false;
    };
    let version = rest.get(version_at + 1..).unwrap_or(&[]);
    version_at > 1 && version.len() == 8 && version.starts_with(b"HTTP/1.")
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `host[:port]` or `[v6][:port]` to the host; `None` for an empty or unbalanced value.
fn strip_port(value: &[u8]) -> Option<&[u8]> {
    let host = if let Some(v6) = value.strip_prefix(b"[") {
        let close = v6.iter().position(|&b| b == b']')?;
        v6.get(..close)?
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => value.get(..colon)?,
            None => value,
        }
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_variants() {
        assert_eq!(
            request_host(b"POST /x HTTP/1.0\r\nhOsT:  api.example:8080 \r\n\r\nbody"),
            Some("api.example")
        );
        assert_eq!(
            request_host(b"GET / HTTP/1.1\nHost: [2001:db8::1]:80\n\n"),
            Some("2001:db8::1")
        );
        assert_eq!(
            request_host(b"OPTIONS * HTTP/1.1\r\nHost: plain\r\n"),
            Some("plain")
        );
    }

    #[test]
    fn not_requests_or_no_host() {
        assert_eq!(request_host(b"GET / HTTP/1.1\r\nHost: cut-by-snap"), None);
        assert_eq!(
            request_host(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\nHost: body\r\n"),
            None
        );
        assert_eq!(request_host(b"HTTP/1.1 200 OK\r\nHost: x\r\n"), None);
        assert_eq!(request_host(b"GET / HTTP/2.0\r\nHost: x\r\n"), None);
        assert_eq!(request_host(b"G\x00T / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(request_host(b"GET / HTTP/1.1\r\nHost: :80\r\n"), None);
        assert_eq!(request_host(b"GET / HTTP/1.1\r\nHost: [::1\r\n"), None);
        assert_eq!(request_host(b""), None);
    }
}
