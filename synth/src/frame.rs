//! Whole frames: a link header, an IPv4 or IPv6 header and a TCP or UDP segment, with
//! every length and checksum filled in.
//!
//! Headers are written by hand rather than through another crate's emitters, so the
//! decoder's tests compare it against an encoder that shares no code with it. Checksums
//! are real (a capture with zero checksums would be a capture no network produced).

use crate::error::SynthError;
use std::net::{IpAddr, SocketAddr};

/// TCP control flags, as the byte at offset 13 of the TCP header.
pub mod tcp_flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
}

/// The link layer frames are built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// Ethernet II (LINKTYPE 1).
    Ethernet,
    /// Ethernet with one 802.1Q tag carrying this VLAN id.
    Vlan(u16),
    /// Ethernet with an 802.1ad service tag (outer id) and an 802.1Q customer tag
    /// (inner id): QinQ.
    QinQ(u16, u16),
    /// Linux cooked capture v1 (LINKTYPE 113), what `tcpdump -i any` wrote for years.
    LinuxSll,
    /// Linux cooked capture v2 (LINKTYPE 276), what `tcpdump -i any` writes now.
    LinuxSll2,
    /// Raw IP (LINKTYPE 101): the frame is the IP packet.
    RawIp,
    /// BSD loopback (LINKTYPE 0): a 4-byte address family in little-endian order, as a
    /// capture taken on an x86 or ARM host holds it.
    Null,
}

impl Link {
    /// The LINKTYPE_ number a capture file records for these frames.
    pub fn linktype(self) -> u32 {
        match self {
            Link::Ethernet | Link::Vlan(_) | Link::QinQ(..) => 1,
            Link::LinuxSll => 113,
            Link::LinuxSll2 => 276,
            Link::RawIp => 101,
            Link::Null => 0,
        }
    }

    /// Bytes of link header before the IP header.
    pub fn header_len(self) -> usize {
        match self {
            Link::Ethernet => 14,
            Link::Vlan(_) => 18,
            Link::QinQ(..) => 22,
            Link::LinuxSll => 16,
            Link::LinuxSll2 => 20,
            Link::RawIp => 0,
            Link::Null => 4,
        }
    }
}

/// One frame with the time it was captured and its link layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The link layer `data` starts with.
    pub link: Link,
    /// The whole frame as it was on the wire.
    pub data: Vec<u8>,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
/// Locally administered addresses, so no real vendor is named.
const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];
/// Darwin's AF_INET6: loopback captures are mostly taken on macOS.
const AF_INET6_DARWIN: u32 = 30;
const AF_INET: u32 = 2;

/// Builds frames of one link type.
///
/// Each frame is complete: link header, IP header (IPv4 with don't-fragment and a
/// header checksum, or IPv6), and a TCP or UDP segment with its checksum. Ethernet
/// frames are not padded to 60 bytes; the decoder must handle both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameBuilder {
    link: Link,
    hop_limit: u8,
}

impl FrameBuilder {
    /// A builder for `link` frames with IPv4 TTL / IPv6 hop limit 64.
    pub fn new(link: Link) -> FrameBuilder {
        FrameBuilder {
            link,
            hop_limit: 64,
        }
    }

    /// The link layer of the frames built.
    pub fn link(&self) -> Link {
        self.link
    }

    /// A TCP segment from `src` to `dst` with the given sequence and acknowledgment
    /// numbers, `flags` (see [`tcp_flags`]) and payload. SYN segments carry an MSS option,
    /// as every real stack sends one.
    pub fn tcp(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> Result<Vec<u8>, SynthError> {
        let mut out = Vec::new();
        self.tcp_into(&mut out, src, dst, seq, ack, flags, payload)?;
        Ok(out)
    }

    /// [`tcp`](FrameBuilder::tcp) into a buffer that is cleared first, so a generator can
    /// reuse one allocation for millions of frames.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_into(
        &self,
        out: &mut Vec<u8>,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> Result<(), SynthError> {
        let syn = flags & tcp_flags::SYN != 0;
        let header_len = if syn { TCP_HEADER + 4 } else { TCP_HEADER };
        let mut header = [0u8; TCP_HEADER + 4];
        header[0..2].copy_from_slice(&src.port().to_be_bytes());
        header[2..4].copy_from_slice(&dst.port().to_be_bytes());
        header[4..8].copy_from_slice(&seq.to_be_bytes());
        let ack_number = if flags & tcp_flags::ACK != 0 { ack } else { 0 };
        header[8..12].copy_from_slice(&ack_number.to_be_bytes());
        // Data offset in 32-bit words; header_len is 20 or 24.
        header[12] = ((header_len / 4) as u8) << 4;
        header[13] = flags;
        header[14..16].copy_from_slice(&64_240u16.to_be_bytes());
        if syn {
            // MSS option: kind 2, length 4, 1460.
            header[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
        }
        let header = header.get(..header_len).unwrap_or(&[]);
        self.transport(out, src.ip(), dst.ip(), PROTO_TCP, header, payload, 16)
    }

    /// A UDP datagram from `src` to `dst`.
    pub fn udp(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Result<Vec<u8>, SynthError> {
        let mut out = Vec::new();
        self.udp_into(&mut out, src, dst, payload)?;
        Ok(out)
    }

    /// [`udp`](FrameBuilder::udp) into a buffer that is cleared first.
    pub fn udp_into(
        &self,
        out: &mut Vec<u8>,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Result<(), SynthError> {
        let len = UDP_HEADER + payload.len();
        let len16 = u16::try_from(len).map_err(|_| SynthError::TooLong {
            what: "UDP payload",
            field: "the UDP length field",
            len: payload.len(),
            max: usize::from(u16::MAX) - UDP_HEADER,
        })?;
        let mut header = [0u8; UDP_HEADER];
        header[0..2].copy_from_slice(&src.port().to_be_bytes());
        header[2..4].copy_from_slice(&dst.port().to_be_bytes());
        header[4..6].copy_from_slice(&len16.to_be_bytes());
        self.transport(out, src.ip(), dst.ip(), PROTO_UDP, &header, payload, 6)
    }

    /// An IP packet of any protocol whose transport bytes are given whole (ICMP, ESP, a
    /// malformed segment...); no transport checksum is computed.
    pub fn ip(
        &self,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        body: &[u8],
    ) -> Result<Vec<u8>, SynthError> {
        let mut out = Vec::new();
        self.ip_header(&mut out, src, dst, protocol, body.len())?;
        out.extend_from_slice(body);
        Ok(out)
    }

    /// Writes link and IP headers, then `header` and `payload`, then the transport
    /// checksum at `checksum_at` within `header`.
    #[allow(clippy::too_many_arguments)]
    fn transport(
        &self,
        out: &mut Vec<u8>,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        header: &[u8],
        payload: &[u8],
        checksum_at: usize,
    ) -> Result<(), SynthError> {
        let segment_len = header.len() + payload.len();
        self.ip_header(out, src, dst, protocol, segment_len)?;
        let start = out.len();
        out.extend_from_slice(header);
        out.extend_from_slice(payload);
        // The pseudo-header: both addresses, the protocol and the segment length.
        let mut sum = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => add(add(0, &s.octets()), &d.octets()),
            (IpAddr::V6(s), IpAddr::V6(d)) => add(add(0, &s.octets()), &d.octets()),
            _ => return Err(SynthError::MixedFamilies { src, dst }),
        };
        sum += u64::from(protocol) + segment_len as u64;
        let mut checksum = fold(add(sum, out.get(start..).unwrap_or(&[])));
        // RFC 768: a computed UDP checksum of zero is sent as all ones (zero means none).
        if protocol == PROTO_UDP && checksum == 0 {
            checksum = 0xffff;
        }
        if let Some(slot) = out.get_mut(start + checksum_at..start + checksum_at + 2) {
            slot.copy_from_slice(&checksum.to_be_bytes());
        }
        Ok(())
    }

    /// Clears `out` and writes the link header and the IP header for `body_len` bytes
    /// of upper-layer data.
    fn ip_header(
        &self,
        out: &mut Vec<u8>,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        body_len: usize,
    ) -> Result<(), SynthError> {
        out.clear();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total =
                    u16::try_from(IPV4_HEADER + body_len).map_err(|_| SynthError::TooLong {
                        what: "IPv4 payload",
                        field: "the IPv4 total length field",
                        len: body_len,
                        max: usize::from(u16::MAX) - IPV4_HEADER,
                    })?;
                out.reserve(self.link.header_len() + IPV4_HEADER + body_len);
                self.link_header(out, ETHERTYPE_IPV4, AF_INET)?;
                let mut h = [0u8; IPV4_HEADER];
                h[0] = 0x45;
                h[2..4].copy_from_slice(&total.to_be_bytes());
                // Identification 0 with don't-fragment set, as RFC 6864 allows for
                // atomic datagrams and Linux sends.
                h[6] = 0x40;
                h[8] = self.hop_limit;
                h[9] = protocol;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                let checksum = fold(add(0, &h));
                h[10..12].copy_from_slice(&checksum.to_be_bytes());
                out.extend_from_slice(&h);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let payload = u16::try_from(body_len).map_err(|_| SynthError::TooLong {
                    what: "IPv6 payload",
                    field: "the IPv6 payload length field",
                    len: body_len,
                    max: usize::from(u16::MAX),
                })?;
                out.reserve(self.link.header_len() + IPV6_HEADER + body_len);
                self.link_header(out, ETHERTYPE_IPV6, AF_INET6_DARWIN)?;
                let mut h = [0u8; IPV6_HEADER];
                h[0] = 0x60;
                h[4..6].copy_from_slice(&payload.to_be_bytes());
                h[6] = protocol;
                h[7] = self.hop_limit;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                out.extend_from_slice(&h);
            }
            _ => return Err(SynthError::MixedFamilies { src, dst }),
        }
        Ok(())
    }

    fn link_header(
        &self,
        out: &mut Vec<u8>,
        ethertype: u16,
        family: u32,
    ) -> Result<(), SynthError> {
        let vlan = |id: u16| {
            if id > 0x0fff {
                Err(SynthError::VlanId { id })
            } else {
                Ok(id.to_be_bytes())
            }
        };
        match self.link {
            Link::Ethernet | Link::Vlan(_) | Link::QinQ(..) => {
                out.extend_from_slice(&SERVER_MAC);
                out.extend_from_slice(&CLIENT_MAC);
                match self.link {
                    Link::Vlan(id) => {
                        let tci = vlan(id)?;
                        out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                        out.extend_from_slice(&tci);
                    }
                    Link::QinQ(outer, inner) => {
                        let (outer, inner) = (vlan(outer)?, vlan(inner)?);
                        out.extend_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
                        out.extend_from_slice(&outer);
                        out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                        out.extend_from_slice(&inner);
                    }
                    _ => {}
                }
                out.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::LinuxSll => {
                // Packet type 0 (to us), ARPHRD_ETHER, 6-byte address padded to 8.
                out.extend_from_slice(&0u16.to_be_bytes());
                out.extend_from_slice(&1u16.to_be_bytes());
                out.extend_from_slice(&6u16.to_be_bytes());
                out.extend_from_slice(&CLIENT_MAC);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::LinuxSll2 => {
                // Protocol, reserved, interface index 2, ARPHRD_ETHER, packet type 0,
                // address length 6, address padded to 8.
                out.extend_from_slice(&ethertype.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&2u32.to_be_bytes());
                out.extend_from_slice(&1u16.to_be_bytes());
                out.extend_from_slice(&[0, 6]);
                out.extend_from_slice(&CLIENT_MAC);
                out.extend_from_slice(&[0, 0]);
            }
            Link::RawIp => {}
            Link::Null => out.extend_from_slice(&family.to_le_bytes()),
        }
        Ok(())
    }
}

/// Adds `data` to a ones'-complement sum, four bytes at a time. A 32-bit big-endian
/// word is two 16-bit words times 2^16 and 1, and 2^16 is 1 modulo 2^16 - 1, so folding
/// the wide sum at the end gives the same checksum as summing 16-bit words.
fn add(mut sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let word: [u8; 4] = w.try_into().unwrap_or([0; 4]);
        sum += u64::from(u32::from_be_bytes(word));
    }
    let mut tail = [0u8; 4];
    for (slot, b) in tail.iter_mut().zip(words.remainder()) {
        *slot = *b;
    }
    sum + u64::from(u32::from_be_bytes(tail))
}

/// Folds a wide sum to 16 bits and complements it.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc_1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), !0xddf2);
        // An odd length pads with a zero byte.
        assert_eq!(fold(add(0, &[0x12])), !0x1200);
    }

    #[test]
    fn ipv4_udp_frame_golden_bytes() {
        let b = FrameBuilder::new(Link::RawIp);
        let frame = b
            .udp(
                "10.0.0.1:5353".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap(),
                b"hi",
            )
            .unwrap();
        assert_eq!(
            frame,
            [
                0x45, 0, 0, 30, 0, 0, 0x40, 0, 64, 17, 0x26, 0xcd, 10, 0, 0, 1, 10, 0, 0,
                2, //
                0x14, 0xe9, 0, 53, 0, 10, 0x6e, 0x50, b'h', b'i',
            ]
        );
    }
}
