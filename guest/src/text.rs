//! Building the reason text of a finding without `core::fmt`.
//!
//! A reason is a handful of literals, names, addresses and ports. Through `format!` each
//! piece goes through the formatting machinery (a `Formatter`, padding checks, a dynamic
//! `Write` call per fragment, and for an IPv4 address a nested `write!` of four numbers),
//! which was a quarter of the time of a batch inside the sandbox, where that code is
//! compiled less tightly than natively. Appending the pieces to one `String` gives the
//! same text for a fraction of the cost. IPv6 addresses, rare here and fiddly to print
//! (zero compression, embedded IPv4), still go through their `Display`.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Something that can be appended to a reason.
pub trait Piece {
    fn put(&self, out: &mut String);
}

impl Piece for str {
    fn put(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for String {
    fn put(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for u16 {
    fn put(&self, out: &mut String) {
        push_decimal(out, u32::from(*self));
    }
}

impl Piece for IpAddr {
    fn put(&self, out: &mut String) {
        match self {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                out.reserve(15);
                push_octet(out, a);
                out.push('.');
                push_octet(out, b);
                out.push('.');
                push_octet(out, c);
                out.push('.');
                push_octet(out, d);
            }
            // Writing to a `String` cannot fail.
            IpAddr::V6(v6) => {
                let _ = write!(out, "{v6}");
            }
        }
    }
}

impl<T: Piece + ?Sized> Piece for &T {
    fn put(&self, out: &mut String) {
        (**self).put(out);
    }
}

/// Appends one octet of a dotted quad: at most three digits, no division loop.
fn push_octet(out: &mut String, n: u8) {
    if n >= 100 {
        out.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        out.push(char::from(b'0' + n / 10 % 10));
    }
    out.push(char::from(b'0' + n % 10));
}

/// Appends `n` in decimal, as `Display` would without width or padding.
fn push_decimal(out: &mut String, mut n: u32) {
    // u32::MAX has 10 digits.
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    for &d in digits.get(at..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

/// Concatenates the pieces into a new `String`, each through [`Piece::put`].
macro_rules! text {
    ($($piece:expr),+ $(,)?) => {{
        let mut out = String::with_capacity(128);
        $( $crate::text::Piece::put(&$piece, &mut out); )+
        out
    }};
}
pub(crate) use text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_print_as_display_does() {
        for a in [
            "0.0.0.0",
            "10.1.2.5",
            "255.255.255.255",
            "192.168.100.9",
            "2001:db8::7",
            "::ffff:10.1.2.3",
            "::",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(text!(ip), ip.to_string());
        }
        for p in [0u16, 9, 10, 445, 9999, 10000, 65535] {
            assert_eq!(text!(p), p.to_string());
        }
        let name = String::from("svc");
        assert_eq!(text!("a ", name, " b ", &name, 7u16), "a svc b svc7");
    }
}
