//! Why a frame produced no packet.

/// Why [`Decoder::decode`](crate::Decoder::decode) returned no packet for a frame.
///
/// Every variant has a stable, short reason label ([`Skip::label`]) meant for counters, so
/// a caller can report "1 203 frames skipped: 1 180 `not-ip`, 23 `fragment-pending`" without
/// matching on variants. The variants fall in two classes, told apart by
/// [`Skip::is_malformed`]:
///
/// * *skipped*: the frame is fine but carries nothing for us (ARP, spanning tree, an
///   unsupported link type) or is held for later (a fragment waiting for the rest of its
///   datagram);
/// * *malformed*: the frame claims to be something it cannot be (bad IP version, a header
///   length beyond the packet, a TCP data offset below 5, overlapping fragments...). A header
///   cut short by the capture's snap length also lands here, because without the header
///   there is nothing to report; a *payload* cut short is never a reason to skip.
///
/// The fields carry the offending values so a log line can say what was wrong; the caller
/// adds where (file and packet number). The type is `Copy` and small, because it is
/// returned on the hot path for every non-IP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Skip {
    /// The capture's link type is not one this crate decodes.
    #[error("link type {linktype} is not supported")]
    UnsupportedLink {
        /// The LINKTYPE_ number.
        linktype: u32,
    },
    /// The link layer carries something other than IPv4 or IPv6 (ARP, LLDP, ...).
    #[error("ethertype {ethertype:#06x} is not IPv4 or IPv6")]
    NotIp {
        /// The ethertype (or Linux cooked protocol) after any VLAN tags.
        ethertype: u16,
    },
    /// An IEEE 802.3 frame with an LLC header (spanning tree, NetBIOS, ...): the
    /// ethertype field holds a length below 0x0600.
    #[error("802.3 frame with length field {length} (LLC), not IP")]
    Llc {
        /// The length field.
        length: u16,
    },
    /// A BSD loopback header names an address family other than IPv4 or IPv6.
    #[error("loopback address family {family} is not IPv4 or IPv6")]
    NotIpFamily {
        /// The address family value.
        family: u32,
    },
    /// A fragment was stored; its datagram is not complete yet.
    #[error("fragment stored, datagram not complete yet")]
    FragmentPending,
    /// A non-first fragment could not be stored: every reassembly slot is in use.
    #[error("fragment dropped: all reassembly slots are in use")]
    FragmentTableFull,
    /// A non-first fragment is cut by the capture's snap length, so its datagram can never
    /// be reassembled.
    #[error("fragment cut by the capture: {captured} of {declared} bytes")]
    FragmentTruncated {
        /// Fragment payload bytes in the IP header's length.
        declared: usize,
        /// Fragment payload bytes captured.
        captured: usize,
    },
    /// A datagram had more fragments than the configured limit; it was dropped.
    #[error("datagram dropped after {count} fragments")]
    FragmentLimit {
        /// The limit that was reached.
        count: usize,
    },
    /// The frame ends inside its link-layer header (Ethernet, VLAN tag, cooked header...).
    #[error("link header of link type {linktype} needs {need} bytes, frame has {have}")]
    TruncatedLink {
        /// The LINKTYPE_ number.
        linktype: u32,
        /// Bytes the header needs.
        need: usize,
        /// Bytes captured.
        have: usize,
    },
    /// More stacked VLAN tags than [`MAX_VLAN_DEPTH`](crate::MAX_VLAN_DEPTH).
    #[error("more than {max} stacked VLAN tags")]
    VlanTooDeep {
        /// The limit.
        max: usize,
    },
    /// The IP version nibble is not the one the link layer announced.
    #[error("IP version {version} where {expected} was expected")]
    BadIpVersion {
        /// The version nibble found.
        version: u8,
        /// The version the link layer announced (0 when any was allowed).
        expected: u8,
    },
    /// The captured bytes end inside the IP header.
    #[error("IPv{version} header needs {need} bytes, {have} captured")]
    TruncatedIp {
        /// 4 or 6.
        version: u8,
        /// Bytes the header needs (the IPv4 IHL counts options).
        need: usize,
        /// Bytes captured after the link layer.
        have: usize,
    },
    /// The IPv4 header length field is below the minimum of 20 bytes.
    #[error("IPv4 header length {header_len} is below 20")]
    BadIpHeaderLen {
        /// IHL × 4.
        header_len: usize,
    },
    /// The IP length field is smaller than the IP header, or is zero on a fragment.
    #[error("IP length {total_len} is inconsistent with header length {header_len}")]
    BadTotalLength {
        /// The total length (IPv4) or 40 + payload length (IPv6).
        total_len: usize,
        /// The header length.
        header_len: usize,
    },
    /// An IPv6 extension header runs past the captured or declared bytes.
    #[error("IPv6 extension header {header} at payload offset {offset} runs past the packet")]
    TruncatedIpv6Ext {
        /// The header's protocol number (0, 43, 44, 51 or 60).
        header: u8,
        /// Its offset after the fixed IPv6 header.
        offset: usize,
    },
    /// An IPv6 extension header where it is not allowed: hop-by-hop options not first, or a
    /// fragment header inside a reassembled datagram.
    #[error("IPv6 extension header {header} at payload offset {offset} is out of place")]
    MisplacedIpv6Ext {
        /// The header's protocol number.
        header: u8,
        /// Its offset after the fixed IPv6 header.
        offset: usize,
    },
    /// More IPv6 extension headers than [`MAX_IPV6_EXT_HEADERS`](crate::MAX_IPV6_EXT_HEADERS).
    #[error("more than {max} IPv6 extension headers")]
    TooManyIpv6Ext {
        /// The limit.
        max: usize,
    },
    /// A fragment overlaps another fragment of the same datagram with different bytes, or
    /// disagrees about where the datagram ends. The whole datagram is dropped, as RFC 5722
    /// asks for IPv6, since overlaps are a classic way to show a monitor other bytes than
    /// the receiver reassembles.
    #[error("fragment at offset {offset} overlaps or contradicts another fragment")]
    FragmentOverlap {
        /// The fragment's offset in bytes.
        offset: usize,
    },
    /// A fragment ends beyond the largest datagram the IP header can describe.
    #[error("fragment ends at byte {end}, beyond the {max}-byte datagram limit")]
    FragmentTooLarge {
        /// Offset plus length.
        end: usize,
        /// The limit.
        max: usize,
    },
    /// A fragment that is not the last one has a length that is not a multiple of 8.
    #[error("non-final fragment at offset {offset} has length {len}, not a multiple of 8")]
    FragmentMisaligned {
        /// The fragment's offset in bytes.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// Fewer than 20 TCP header bytes are available.
    #[error("TCP header needs 20 bytes, {have} available")]
    TruncatedTcp {
        /// Bytes available.
        have: usize,
    },
    /// The TCP data offset is below 5 words or beyond the segment.
    #[error("TCP header length {header_len} is invalid for a {segment_len}-byte segment")]
    BadTcpHeaderLen {
        /// Data offset × 4.
        header_len: usize,
        /// Segment length per the IP header.
        segment_len: usize,
    },
    /// Fewer than 8 UDP header bytes are available.
    #[error("UDP header needs 8 bytes, {have} available")]
    TruncatedUdp {
        /// Bytes available.
        have: usize,
    },
    /// The UDP length field is below 8 or beyond the IP payload.
    #[error("UDP length {length} is invalid for a {ip_payload_len}-byte IP payload")]
    BadUdpLength {
        /// The UDP length field.
        length: usize,
        /// IP payload length per the IP header.
        ip_payload_len: usize,
    },
}

impl Skip {
    /// A stable, lower-case label for the reason, for counters and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Skip::UnsupportedLink { .. } => "unsupported-link",
            Skip::NotIp { .. } => "not-ip",
            Skip::Llc { .. } => "llc",
            Skip::NotIpFamily { .. } => "not-ip-family",
            Skip::FragmentPending => "fragment-pending",
            Skip::FragmentTableFull => "fragment-table-full",
            Skip::FragmentTruncated { .. } => "fragment-truncated",
            Skip::FragmentLimit { .. } => "fragment-limit",
            Skip::TruncatedLink { .. } => "truncated-link",
            Skip::VlanTooDeep { .. } => "vlan-too-deep",
            Skip::BadIpVersion { .. } => "bad-ip-version",
            Skip::TruncatedIp { .. } => "truncated-ip",
            Skip::BadIpHeaderLen { .. } => "bad-ip-header-length",
            Skip::BadTotalLength { .. } => "bad-ip-length",
            Skip::TruncatedIpv6Ext { .. } => "truncated-ipv6-ext",
            Skip::MisplacedIpv6Ext { .. } => "misplaced-ipv6-ext",
            Skip::TooManyIpv6Ext { .. } => "too-many-ipv6-ext",
            Skip::FragmentOverlap { .. } => "fragment-overlap",
            Skip::FragmentTooLarge { .. } => "fragment-too-large",
            Skip::FragmentMisaligned { .. } => "fragment-misaligned",
            Skip::TruncatedTcp { .. } => "truncated-tcp",
            Skip::BadTcpHeaderLen { .. } => "bad-tcp-header-length",
            Skip::TruncatedUdp { .. } => "truncated-udp",
            Skip::BadUdpLength { .. } => "bad-udp-length",
        }
    }

    /// True when the frame contradicts its own headers (or a header is cut by the
    /// capture); false when it is simply not for us or is held for reassembly.
    pub fn is_malformed(&self) -> bool {
        !matches!(
            self,
            Skip::UnsupportedLink { .. }
                | Skip::NotIp { .. }
                | Skip::Llc { .. }
                | Skip::NotIpFamily { .. }
                | Skip::FragmentPending
                | Skip::FragmentTableFull
                | Skip::FragmentTruncated { .. }
                | Skip::FragmentLimit { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Skip;

    #[test]
    fn labels_and_classes() {
        assert_eq!(Skip::NotIp { ethertype: 0x0806 }.label(), "not-ip");
        assert!(!Skip::NotIp { ethertype: 0x0806 }.is_malformed());
        assert!(!Skip::FragmentPending.is_malformed());
        assert!(
            Skip::BadIpVersion {
                version: 5,
                expected: 4
            }
            .is_malformed()
        );
        assert_eq!(
            Skip::NotIp { ethertype: 0x0806 }.to_string(),
            "ethertype 0x0806 is not IPv4 or IPv6"
        );
        assert_eq!(
            Skip::TruncatedIp {
                version: 4,
                need: 20,
                have: 7
            }
            .to_string(),
            "IPv4 header needs 20 bytes, 7 captured"
        );
    }
}
