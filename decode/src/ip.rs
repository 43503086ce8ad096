//! IPv4 and IPv6, with IPv6 extension headers and fragments of both.
//!
//! The smoltcp views are built with `new_unchecked` after our own length checks: their
//! `check_len` insists on the whole packet being captured, which a snap length routinely
//! prevents. Payload slices are cut here, clamped to the captured bytes and trimmed to the
//! IP length (which drops Ethernet padding).

use std::net::IpAddr;

use smoltcp::wire::{Ipv4Packet, Ipv6Packet};

use crate::bytes::{be16, be32, u8_at};
use crate::packet::{Packet, transport};
use crate::reassembly::{FirstInfo, FragKey, Fragment, Reassembler};
use crate::{MAX_IPV6_EXT_HEADERS, Skip};

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const MAX_IP_LEN: usize = 65535;

const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_FRAGMENT: u8 = 44;
const EXT_AH: u8 = 51;
const EXT_DEST_OPTS: u8 = 60;

/// Decodes the version nibble of raw IP.
#[inline]
pub(crate) fn version(ip: &[u8]) -> Result<u8, Skip> {
    match u8_at(ip, 0) {
        Some(b) => Ok(b >> 4),
        None => Err(Skip::TruncatedIp {
            version: 4,
            need: IPV4_MIN_HEADER,
            have: 0,
        }),
    }
}

/// Decodes an IPv4 packet starting at `ip[0]`.
#[inline]
pub(crate) fn ipv4<'a>(
    ip: &'a [u8],
    vlan: Option<u16>,
    ts_ns: u64,
    reasm: Option<&'a mut Reassembler>,
) -> Result<Packet<'a>, Skip> {
    if ip.len() < IPV4_MIN_HEADER {
        return Err(Skip::TruncatedIp {
            version: 4,
            need: IPV4_MIN_HEADER,
            have: ip.len(),
        });
    }
    // The fixed header is present: the view's accessors for it cannot panic.
    let v4 = Ipv4Packet::new_unchecked(ip);
    if v4.version() != 4 {
        return Err(Skip::BadIpVersion {
            version: v4.version(),
            expected: 4,
        });
    }
    let header_len = usize::from(v4.header_len());
    if header_len < IPV4_MIN_HEADER {
        return Err(Skip::BadIpHeaderLen { header_len });
    }
    if header_len > ip.len() {
        return Err(Skip::TruncatedIp {
            version: 4,
            need: header_len,
            have: ip.len(),
        });
    }
    let total_len = usize::from(v4.total_len());
    // A zero total length comes from segmentation offload on the capturing host: the
    // captured bytes are all there is to go by.
    let declared = match total_len {
        0 => None,
        t if t < header_len => {
            return Err(Skip::BadTotalLength {
                total_len,
                header_len,
            });
        }
        t => Some(t),
    };
    let end = declared.map_or(ip.len(), |t| t.min(ip.len()));
    let payload = ip.get(header_len..end).unwrap_or(&[]);
    let src = IpAddr::V4(v4.src_addr());
    let dst = IpAddr::V4(v4.dst_addr());
    let protocol = u8::from(v4.next_header());
    let offset = usize::from(v4.frag_offset());
    let more = v4.more_frags();

    if !more && offset == 0 {
        return Ok(Packet {
            src,
            dst,
            protocol,
            vlan,
            ip_len: declared.unwrap_or(ip.len()),
            transport: transport(protocol, payload, declared.map(|t| t - header_len))?,
        });
    }

    let Some(total_len) = declared else {
        return Err(Skip::BadTotalLength {
            total_len,
            header_len,
        });
    };
    let frag_len = total_len - header_len;
    let first_only = |payload: &'a [u8]| -> Result<Packet<'a>, Skip> {
        // Without reassembly, the first fragment still tells ports and flags; the lengths
        // inside it describe the whole datagram, so they cannot be checked.
        Ok(Packet {
            src,
            dst,
            protocol,
            vlan,
            ip_len: total_len,
            transport: transport(protocol, payload, None)?,
        })
    };
    if payload.len() < frag_len {
        if offset == 0 {
            return first_only(payload);
        }
        return Err(Skip::FragmentTruncated {
            declared: frag_len,
            captured: payload.len(),
        });
    }
    let key = FragKey {
        src,
        dst,
        id: u32::from(v4.ident()),
        protocol,
    };
    let frag = Fragment {
        offset,
        more,
        data: payload,
        first: (offset == 0).then_some(FirstInfo {
            header_len,
            next: protocol,
        }),
        max_end: MAX_IP_LEN - header_len,
    };
    // Without a reassembler (a stateless decode), a fragment that needs one is
    // reported as pending: the caller hands it to a stateful decoder.
    let Some(reasm) = reasm else {
        return Err(Skip::FragmentPending);
    };
    match reasm.insert(key, frag, ts_ns) {
        Ok((datagram, first)) => Ok(Packet {
            src,
            dst,
            protocol,
            vlan,
            ip_len: first.header_len + datagram.len(),
            transport: transport(protocol, datagram, Some(datagram.len()))?,
        }),
        Err(Skip::FragmentTableFull) if offset == 0 => first_only(payload),
        Err(skip) => Err(skip),
    }
}

/// Where a walk over IPv6 extension headers stopped.
enum Chain {
    /// At the upper-layer header `protocol`, at `at`.
    Upper { protocol: u8, at: usize },
    /// At a fragment header whose fixed 8 bytes end at `at`.
    Fragment {
        next: u8,
        at: usize,
        offset: usize,
        more: bool,
        id: u32,
    },
}

/// Walks extension headers in `data` (the bytes after the fixed IPv6 header, or a
/// reassembled fragmentable part) starting with header `next`.
///
/// `base` is the offset of `data` after the fixed header, for error reports; `count`
/// is how many extension headers were already walked; `in_fragment` forbids hop-by-hop and
/// fragment headers, which cannot appear inside a fragmentable part.
fn walk_ext(
    data: &[u8],
    mut next: u8,
    base: usize,
    mut count: usize,
    in_fragment: bool,
) -> Result<Chain, Skip> {
    let mut at = 0;
    loop {
        let truncated = Skip::TruncatedIpv6Ext {
            header: next,
            offset: base + at,
        };
        let len = match next {
            EXT_HOP_BY_HOP if at != 0 || base != 0 || in_fragment => {
                return Err(Skip::MisplacedIpv6Ext {
                    header: next,
                    offset: base + at,
                });
            }
            EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DEST_OPTS => {
                (usize::from(u8_at(data, at + 1).ok_or(truncated)?) + 1) * 8
            }
            EXT_AH => (usize::from(u8_at(data, at + 1).ok_or(truncated)?) + 2) * 4,
            EXT_FRAGMENT if in_fragment => {
                return Err(Skip::MisplacedIpv6Ext {
                    header: next,
                    offset: base + at,
                });
            }
            EXT_FRAGMENT => 8,
            protocol => return Ok(Chain::Upper { protocol, at }),
        };
        count += 1;
        if count > MAX_IPV6_EXT_HEADERS {
            return Err(Skip::TooManyIpv6Ext {
                max: MAX_IPV6_EXT_HEADERS,
            });
        }
        if data.len() < at + len {
            return Err(truncated);
        }
        let header_next = u8_at(data, at).ok_or(truncated)?;
        if next == EXT_FRAGMENT {
            let word = be16(data, at + 2).ok_or(truncated)?;
            let id = be32(data, at + 4).ok_or(truncated)?;
            let offset = usize::from(word & 0xfff8);
            let more = word & 1 != 0;
            if offset != 0 || more {
                return Ok(Chain::Fragment {
                    next: header_next,
                    at: at + len,
                    offset,
                    more,
                    id,
                });
            }
            // An atomic fragment (RFC 6946) is a whole datagram: keep walking.
        }
        next = header_next;
        at += len;
    }
}

/// Decodes an IPv6 packet starting at `ip[0]`.
#[inline]
pub(crate) fn ipv6<'a>(
    ip: &'a [u8],
    vlan: Option<u16>,
    ts_ns: u64,
    reasm: Option<&'a mut Reassembler>,
) -> Result<Packet<'a>, Skip> {
    if ip.len() < IPV6_HEADER {
        return Err(Skip::TruncatedIp {
            version: 6,
            need: IPV6_HEADER,
            have: ip.len(),
        });
    }
    // The fixed header is present: the view's accessors for it cannot panic.
    let v6 = Ipv6Packet::new_unchecked(ip);
    if v6.version() != 6 {
        return Err(Skip::BadIpVersion {
            version: v6.version(),
            expected: 6,
        });
    }
    let payload_len = usize::from(v6.payload_len());
    let first_header = u8::from(v6.next_header());
    // Zero before a hop-by-hop header is a jumbogram (RFC 2675), whose real length is in
    // an option: go by the captured bytes. Otherwise zero means an empty payload.
    let declared = (payload_len != 0 || first_header != EXT_HOP_BY_HOP).then_some(payload_len);
    let end = declared.map_or(ip.len(), |p| (IPV6_HEADER + p).min(ip.len()));
    let payload = ip.get(IPV6_HEADER..end).unwrap_or(&[]);
    let src = IpAddr::V6(v6.src_addr());
    let dst = IpAddr::V6(v6.dst_addr());
    let ip_len = declared.map_or(ip.len(), |p| IPV6_HEADER + p);

    match walk_ext(payload, first_header, 0, 0, false)? {
        Chain::Upper { protocol, at } => Ok(Packet {
            src,
            dst,
            protocol,
            vlan,
            ip_len,
            transport: transport(
                protocol,
                payload.get(at..).unwrap_or(&[]),
                declared.map(|p| p.saturating_sub(at)),
            )?,
        }),
        Chain::Fragment {
            next,
            at,
            offset,
            more,
            id,
        } => {
            let Some(payload_len) = declared else {
                return Err(Skip::BadTotalLength {
                    total_len: IPV6_HEADER,
                    header_len: IPV6_HEADER + at,
                });
            };
            let data = payload.get(at..).unwrap_or(&[]);
            let frag_len = payload_len.saturating_sub(at);
            let first_only = |data: &'a [u8]| -> Result<Packet<'a>, Skip> {
                match walk_ext(data, next, at, 0, true)? {
                    Chain::Upper { protocol, at } => Ok(Packet {
                        src,
                        dst,
                        protocol,
                        vlan,
                        ip_len,
                        transport: transport(protocol, data.get(at..).unwrap_or(&[]), None)?,
                    }),
                    Chain::Fragment { .. } => Err(Skip::MisplacedIpv6Ext {
                        header: EXT_FRAGMENT,
                        offset: at,
                    }),
                }
            };
            if data.len() < frag_len {
                if offset == 0 {
                    return first_only(data);
                }
                return Err(Skip::FragmentTruncated {
                    declared: frag_len,
                    captured: data.len(),
                });
            }
            let key = FragKey {
                src,
                dst,
                id,
                protocol: 0,
            };
            let frag = Fragment {
                offset,
                more,
                data,
                first: (offset == 0).then_some(FirstInfo {
                    header_len: IPV6_HEADER + at - 8,
                    next,
                }),
                max_end: MAX_IP_LEN,
            };
            // Without a reassembler (a stateless decode), a fragment that needs one is
            // reported as pending: the caller hands it to a stateful decoder.
            let Some(reasm) = reasm else {
                return Err(Skip::FragmentPending);
            };
            match reasm.insert(key, frag, ts_ns) {
                Ok((datagram, first)) => {
                    match walk_ext(
                        datagram,
                        first.next,
                        first.header_len - IPV6_HEADER + 8,
                        1,
                        true,
                    )? {
                        Chain::Upper { protocol, at } => {
                            let upper = datagram.get(at..).unwrap_or(&[]);
                            Ok(Packet {
                                src,
                                dst,
                                protocol,
                                vlan,
                                ip_len: first.header_len + datagram.len(),
                                transport: transport(protocol, upper, Some(upper.len()))?,
                            })
                        }
                        Chain::Fragment { .. } => Err(Skip::MisplacedIpv6Ext {
                            header: EXT_FRAGMENT,
                            offset: first.header_len - IPV6_HEADER + 8,
                        }),
                    }
                }
                Err(Skip::FragmentTableFull) if offset == 0 => first_only(data),
                Err(skip) => Err(skip),
            }
        }
    }
}
