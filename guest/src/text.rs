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

/// The digits of every number below 1000, three to a number, zero-padded.
static DIGITS: [u8; 3000] = {
    let mut d = [0u8; 3000];
    let mut i = 0;
    while i < 1000 {
        d[3 * i] = b'0' + (i / 100) as u8;
        d[3 * i + 1] = b'0' + (i / 10 % 10) as u8;
        d[3 * i + 2] = b'0' + (i % 10) as u8;
        i += 1;
    }
    d
};

/// Every number below 1000 as `Display` prints it (`PLAIN`) and zero-padded to three
/// digits (`PADDED`), as slices of [`DIGITS`]. An octet or a port is then one or two
/// `push_str` of a ready string instead of a `push` per digit, each of which checks the
/// capacity and encodes a `char` (a quarter of the reason text's time in the sandbox).
static PLAIN: [&str; 1000] = numbers(false);
static PADDED: [&str; 1000] = numbers(true);

const fn numbers(padded: bool) -> [&'static str; 1000] {
    let mut t = [""; 1000];
    let mut i = 0;
    while i < 1000 {
        let skip = if padded || i >= 100 {
            0
        } else if i >= 10 {
            1
        } else {
            2
        };
        let (_, group) = DIGITS.split_at(3 * i);
        let (three, _) = group.split_at(3);
        let (_, digits) = three.split_at(skip);
        t[i] = match core::str::from_utf8(digits) {
            Ok(s) => s,
            // Evaluated at compile time: the build fails, nothing panics at run time.
            Err(_) => panic!("digits are ASCII"),
        };
        i += 1;
    }
    t
}

/// Appends one octet of a dotted quad.
#[inline]
fn push_octet(out: &mut String, n: u8) {
    out.push_str(PLAIN.get(usize::from(n)).copied().unwrap_or_default());
}

/// Appends `n` in decimal, as `Display` would without width or padding.
fn push_decimal(out: &mut String, n: u32) {
    let (high, low) = (n / 1000, (n % 1000) as usize);
    if high == 0 {
        out.push_str(PLAIN.get(low).copied().unwrap_or_default());
        return;
    }
    push_decimal(out, high);
    out.push_str(PADDED.get(low).copied().unwrap_or_default());
}

/// One of two pieces, so a reason can choose between texts without building either
/// into a `String` of its own first.
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A: Piece, B: Piece> Piece for Either<A, B> {
    fn put(&self, out: &mut String) {
        match self {
            Either::Left(a) => a.put(out),
            Either::Right(b) => b.put(out),
        }
    }
}

/// Nothing for `None`.
impl<T: Piece> Piece for Option<T> {
    fn put(&self, out: &mut String) {
        if let Some(t) = self {
            t.put(out);
        }
    }
}

/// Pieces in a row, for a part of a reason that is chosen as a whole.
impl<A: Piece, B: Piece> Piece for (A, B) {
    fn put(&self, out: &mut String) {
        self.0.put(out);
        self.1.put(out);
    }
}

impl<A: Piece, B: Piece, C: Piece> Piece for (A, B, C) {
    fn put(&self, out: &mut String) {
        self.0.put(out);
        self.1.put(out);
        self.2.put(out);
    }
}

impl<A: Piece, B: Piece, C: Piece, D: Piece> Piece for (A, B, C, D) {
    fn put(&self, out: &mut String) {
        self.0.put(out);
        self.1.put(out);
        self.2.put(out);
        self.3.put(out);
    }
}

/// Concatenates the pieces into a new `String`, each through [`Piece::put`].
macro_rules! text {
    ($($piece:expr),+ $(,)?) => {{
        // Room for most reasons (a pe-bypass reason with a service FQDN is about 130
        // bytes), so they are built without growing.
        let mut out = String::with_capacity(192);
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
        for p in (0..=u16::MAX).step_by(7).chain([999, 1000, 1001, 65535]) {
            assert_eq!(text!(p), p.to_string());
        }
        for o in 0..=255u8 {
            let ip = IpAddr::from([o, 0, 10, o]);
            assert_eq!(text!(ip), ip.to_string());
        }
        let left: Either<&str, u16> = Either::Left("x");
        let right: Either<&str, u16> = Either::Right(8);
        let none: Option<&str> = None;
        assert_eq!(
            text!(left, right, none, Some("y"), ("a", 1u16, "b", 2u16)),
            "x8ya1b2"
        );
        let name = String::from("svc");
        assert_eq!(text!("a ", name, " b ", &name, 7u16), "a svc b svc7");
    }
}
