//! The decoded view of one packet, and its transport layer.

use std::fmt;
use std::net::IpAddr;

use smoltcp::wire::{TcpPacket, UdpPacket};

use crate::Skip;
use crate::bytes::u8_at;

/// One decoded IP packet: addresses, protocol and transport, borrowing the frame's bytes
/// (or the decoder's reassembly buffer for a reassembled datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The upper-layer protocol (IANA number) after any IPv6 extension headers: 6 for TCP,
    /// 17 for UDP, 1 / 58 for ICMP, 50 for ESP...
    pub protocol: u8,
    /// The outermost 802.1Q / 802.1ad VLAN id, when the frame was tagged.
    pub vlan: Option<u16>,
    /// Bytes of the IP packet on the wire per its header (IPv4 total length, IPv6 40 +
    /// payload length), whatever the capture kept. For a reassembled datagram, the
    /// length of the whole datagram with one header. When the header's length field is
    /// zero (segmentation offload on the capturing host), the captured length.
    pub ip_len: usize,
    /// The transport layer.
    pub transport: Transport<'a>,
}

/// The transport layer of a [`Packet`].
///
/// Payloads are the bytes that were captured: a snap length may cut them short of what
/// the headers announce, and this crate never treats that as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
        /// Control flags.
        flags: TcpFlags,
        /// Captured segment data after the header and its options.
        payload: &'a [u8],
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Captured datagram data, trimmed to the UDP length field.
        payload: &'a [u8],
    },
    /// Any other protocol (ICMP, ESP, GRE, tunnels...): no ports are decoded.
    Other,
}

impl<'a> Transport<'a> {
    /// The (source, destination) ports of TCP and UDP, `None` for other protocols.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match *self {
            Transport::Tcp {
                src_port, dst_port, ..
            }
            | Transport::Udp {
                src_port, dst_port, ..
            } => Some((src_port, dst_port)),
            Transport::Other => None,
        }
    }

    /// The captured payload of TCP and UDP, empty for other protocols.
    pub fn payload(&self) -> &'a [u8] {
        match *self {
            Transport::Tcp { payload, .. } | Transport::Udp { payload, .. } => payload,
            Transport::Other => &[],
        }
    }
}

/// The eight TCP control flags, as the byte at offset 13 of the TCP header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    const NAMES: [(TcpFlags, &'static str); 8] = [
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
    ];

    /// Flags from the raw flags byte.
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The raw flags byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// SYN is set.
    pub const fn syn(self) -> bool {
        self.contains(TcpFlags::SYN)
    }

    /// ACK is set.
    pub const fn ack(self) -> bool {
        self.contains(TcpFlags::ACK)
    }

    /// FIN is set.
    pub const fn fin(self) -> bool {
        self.contains(TcpFlags::FIN)
    }

    /// RST is set.
    pub const fn rst(self) -> bool {
        self.contains(TcpFlags::RST)
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;

    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (flag, name) in TcpFlags::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("(none)")?;
        }
        Ok(())
    }
}

const TCP_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Decodes the transport header of `data`, the captured IP payload (already trimmed to the
/// IP length). `declared` is the IP payload length per the IP header, when known; it
/// separates a segment that is malformed from one the capture cut short.
#[inline]
pub(crate) fn transport(
    protocol: u8,
    data: &[u8],
    declared: Option<usize>,
) -> Result<Transport<'_>, Skip> {
    match protocol {
        PROTO_TCP => tcp(data, declared),
        PROTO_UDP => udp(data, declared),
        _ => Ok(Transport::Other),
    }
}

#[inline]
fn tcp(data: &[u8], declared: Option<usize>) -> Result<Transport<'_>, Skip> {
    if data.len() < TCP_HEADER_LEN {
        return Err(Skip::TruncatedTcp { have: data.len() });
    }
    // At least the fixed header is present, so the view's fixed-field accessors are safe.
    let tcp = TcpPacket::new_unchecked(data);
    let header_len = usize::from(tcp.header_len());
    let segment_len = declared.unwrap_or(data.len());
    if header_len < TCP_HEADER_LEN || header_len > segment_len {
        return Err(Skip::BadTcpHeaderLen {
            header_len,
            segment_len,
        });
    }
    Ok(Transport::Tcp {
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: tcp.seq_number().0 as u32,
        flags: TcpFlags(u8_at(data, 13).unwrap_or(0)),
        // Options cut by the capture leave an empty payload, not an error.
        payload: data.get(header_len..).unwrap_or(&[]),
    })
}

#[inline]
fn udp(data: &[u8], declared: Option<usize>) -> Result<Transport<'_>, Skip> {
    if data.len() < UDP_HEADER_LEN {
        return Err(Skip::TruncatedUdp { have: data.len() });
    }
    let udp = UdpPacket::new_unchecked(data);
    let length = usize::from(udp.len());
    let ip_payload_len = declared.unwrap_or(usize::MAX);
    if length < UDP_HEADER_LEN || length > ip_payload_len {
        return Err(Skip::BadUdpLength {
            length,
            ip_payload_len: declared.unwrap_or(data.len()),
        });
    }
    let end = length.min(data.len());
    Ok(Transport::Udp {
        src_port: udp.src_port(),
        dst_port: udp.dst_port(),
        payload: data.get(UDP_HEADER_LEN..end).unwrap_or(&[]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TCP 443 -> 51000, seq 0x01020304, SYN|ACK, data offset 6 (one option word), 2 data bytes.
    const TCP_SYNACK: [u8; 26] = [
        0x01, 0xbb, 0xc7, 0x38, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x60, 0x12, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x01, 0xaa, 0xbb,
    ];

    #[test]
    fn tcp_golden() {
        let t = transport(6, &TCP_SYNACK, Some(26));
        assert_eq!(
            t,
            Ok(Transport::Tcp {
                src_port: 443,
                dst_port: 51000,
                seq: 0x0102_0304,
                flags: TcpFlags::SYN | TcpFlags::ACK,
                payload: &[0xaa, 0xbb],
            })
        );
        assert_eq!(format!("{:?}", TcpFlags::SYN | TcpFlags::ACK), "SYN|ACK");
    }

    #[test]
    fn tcp_options_cut_by_capture() {
        let t = transport(6, &TCP_SYNACK[..22], Some(26)).map(|t| t.payload());
        assert_eq!(t, Ok(&[][..]));
    }

    #[test]
    fn tcp_bad_offsets() {
        let mut d = TCP_SYNACK;
        d[12] = 0x40;
        assert_eq!(
            transport(6, &d, Some(26)),
            Err(Skip::BadTcpHeaderLen {
                header_len: 16,
                segment_len: 26
            })
        );
        d[12] = 0xf0;
        assert_eq!(
            transport(6, &d, Some(26)),
            Err(Skip::BadTcpHeaderLen {
                header_len: 60,
                segment_len: 26
            })
        );
        assert_eq!(
            transport(6, &d[..19], None),
            Err(Skip::TruncatedTcp { have: 19 })
        );
    }

    #[test]
    fn udp_golden_and_lengths() {
        let d = [
            0x00, 0x35, 0xd4, 0x31, 0x00, 0x0b, 0x00, 0x00, b'a', b'b', b'c', 0, 0,
        ];
        assert_eq!(
            transport(17, &d, Some(13)),
            Ok(Transport::Udp {
                src_port: 53,
                dst_port: 54321,
                payload: b"abc",
            })
        );
        // Cut by the capture: clamp.
        assert_eq!(
            transport(17, &d[..9], Some(13)).map(|t| t.payload()),
            Ok(&b"a"[..])
        );
        // Longer than the IP payload: malformed.
        assert_eq!(
            transport(17, &d[..9], Some(9)),
            Err(Skip::BadUdpLength {
                length: 11,
                ip_payload_len: 9
            })
        );
    }
}
