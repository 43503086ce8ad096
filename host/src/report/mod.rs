//! Sinks for findings: EVE JSON lines for SIEM pipelines, a grouped table for people,
//! and the statistics of a run.

pub mod eve;
pub mod stats;
pub mod table;

use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// Community ID v1 of a flow (seed 0): the same string Zeek, Suricata and others print,
/// so a finding can be joined with their logs.
pub fn community_id(
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    protocol: u8,
) -> String {
    let (a, b) = ((src, src_port), (dst, dst_port));
    // Ports are only ordered for protocols that have them.
    let ordered = if a <= b { (a, b) } else { (b, a) };
    let ((ip1, p1), (ip2, p2)) = ordered;
    let mut h = Sha1::new();
    h.update(0u16.to_be_bytes());
    match (ip1, ip2) {
        (IpAddr::V4(x), IpAddr::V4(y)) => {
            h.update(x.octets());
            h.update(y.octets());
        }
        _ => {
            h.update(v6(ip1));
            h.update(v6(ip2));
        }
    }
    h.update([protocol, 0]);
    if matches!(protocol, 6 | 17 | 132) {
        h.update(p1.to_be_bytes());
        h.update(p2.to_be_bytes());
    }
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// A 53-bit flow id (safe as a JSON number everywhere), stable for a 5-tuple in either
/// direction.
pub fn flow_id(src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16, protocol: u8) -> u64 {
    let (a, b) = ((src, src_port), (dst, dst_port));
    let ((ip1, p1), (ip2, p2)) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Sha1::new();
    h.update(v6(ip1));
    h.update(v6(ip2));
    h.update(p1.to_be_bytes());
    h.update(p2.to_be_bytes());
    h.update([protocol]);
    let d = h.finalize();
    let mut n = [0u8; 8];
    n.copy_from_slice(&d[..8]);
    u64::from_be_bytes(n) & ((1 << 53) - 1)
}

/// Suricata's timestamp form, `2024-05-01T12:00:00.123456+0000`, in UTC.
pub fn eve_timestamp(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (the well-known algorithm of
/// Howard Hinnant's `chrono`-compatible date library).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Protocol name as EVE prints it.
pub fn proto_name(protocol: u8) -> String {
    match protocol {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "IPv6-ICMP".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_id_matches_the_specification_examples() {
        // Test vectors from the Community ID specification's baseline data.
        assert_eq!(
            community_id(
                "128.232.110.120".parse().unwrap(),
                34855,
                "66.35.250.204".parse().unwrap(),
                80,
                6
            ),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            community_id(
                "66.35.250.204".parse().unwrap(),
                80,
                "128.232.110.120".parse().unwrap(),
                34855,
                6
            ),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        assert_eq!(eve_timestamp(0), "1970-01-01T00:00:00.000000+0000");
        assert_eq!(
            eve_timestamp(1_709_210_096_123_456_789),
            "2024-02-29T12:34:56.123456+0000"
        );
    }
}
