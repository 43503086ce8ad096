//! Link layers: finding the IP header inside a captured frame.
//!
//! Each link type only has to answer "where does the IP header start, which version is
//! it, and which VLAN was outermost"; nothing of the link header is copied or kept.

use smoltcp::wire::EthernetFrame;

use crate::bytes::{be16, be32, le32};
use crate::{MAX_VLAN_DEPTH, Skip};

/// A capture's link type, by its LINKTYPE_ number as written in pcap and pcapng files.
///
/// Only the link types this crate decodes have their own variant; every other number is
/// kept in [`LinkType::Other`] so it can be reported and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// 1: Ethernet II, with any 802.1Q / 802.1ad tags.
    Ethernet,
    /// 0: BSD loopback; a 4-byte address family in the *capturing host's* byte order.
    Null,
    /// 108: OpenBSD loopback; a 4-byte address family in network byte order.
    Loop,
    /// 101 (and the historical DLT values 12 and 14): raw IP, version from the first nibble.
    Raw,
    /// 228: raw IPv4.
    Ipv4,
    /// 229: raw IPv6.
    Ipv6,
    /// 113: Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// 276: Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    /// Any other LINKTYPE_ number; frames of these link types are skipped.
    Other(u32),
}

impl LinkType {
    /// The link type for a LINKTYPE_ number.
    ///
    /// 12 and 14 are accepted as raw IP because some systems wrote their DLT_RAW value
    /// into capture files instead of LINKTYPE_RAW (101).
    pub fn from_linktype(n: u32) -> LinkType {
        match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }

    /// The LINKTYPE_ number (101 for [`LinkType::Raw`]).
    pub fn number(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(n) => n,
        }
    }
}

impl From<u32> for LinkType {
    fn from(n: u32) -> Self {
        LinkType::from_linktype(n)
    }
}

/// Which IP version the link layer announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Net {
    V4,
    V6,
    /// Raw IP: the version nibble decides.
    Either,
}

/// Where the IP header starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct L3 {
    pub(crate) net: Net,
    pub(crate) offset: usize,
    pub(crate) vlan: Option<u16>,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERNET_HEADER_LEN: usize = 14;
const SLL_HEADER_LEN: usize = 16;
const SLL2_HEADER_LEN: usize = 20;

/// Finds the IP header of `frame` for link type `link`.
#[inline]
pub(crate) fn locate(link: LinkType, frame: &[u8]) -> Result<L3, Skip> {
    let truncated = |need: usize| Skip::TruncatedLink {
        linktype: link.number(),
        need,
        have: frame.len(),
    };
    match link {
        LinkType::Ethernet => {
            if frame.len() < ETHERNET_HEADER_LEN {
                return Err(truncated(ETHERNET_HEADER_LEN));
            }
            // Length checked above, so the view's accessors cannot panic.
            let eth = EthernetFrame::new_unchecked(frame);
            let ethertype = u16::from(eth.ethertype());
            ethertypes(link, frame, ETHERNET_HEADER_LEN, ethertype, true)
        }
        LinkType::LinuxSll => {
            let protocol = be16(frame, 14).ok_or_else(|| truncated(SLL_HEADER_LEN))?;
            ethertypes(link, frame, SLL_HEADER_LEN, protocol, false)
        }
        LinkType::LinuxSll2 => {
            if frame.len() < SLL2_HEADER_LEN {
                return Err(truncated(SLL2_HEADER_LEN));
            }
            let protocol = be16(frame, 0).ok_or_else(|| truncated(SLL2_HEADER_LEN))?;
            ethertypes(link, frame, SLL2_HEADER_LEN, protocol, false)
        }
        LinkType::Null => {
            let le = le32(frame, 0).ok_or_else(|| truncated(4))?;
            // The family is in the capturing host's byte order, which the file does not
            // record; families are small numbers, so a value above 0xffff was written
            // big-endian.
            let family = if le > 0xffff { le.swap_bytes() } else { le };
            loopback(family)
        }
        LinkType::Loop => {
            let family = be32(frame, 0).ok_or_else(|| truncated(4))?;
            loopback(family)
        }
        LinkType::Raw => Ok(L3 {
            net: Net::Either,
            offset: 0,
            vlan: None,
        }),
        LinkType::Ipv4 => Ok(L3 {
            net: Net::V4,
            offset: 0,
            vlan: None,
        }),
        LinkType::Ipv6 => Ok(L3 {
            net: Net::V6,
            offset: 0,
            vlan: None,
        }),
        LinkType::Other(linktype) => Err(Skip::UnsupportedLink { linktype }),
    }
}

/// Follows an ethertype through any stacked VLAN tags to IPv4 or IPv6.
#[inline]
fn ethertypes(
    link: LinkType,
    frame: &[u8],
    mut offset: usize,
    mut ethertype: u16,
    ethernet: bool,
) -> Result<L3, Skip> {
    let mut vlan = None;
    let mut depth = 0;
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => {
                return Ok(L3 {
                    net: Net::V4,
                    offset,
                    vlan,
                });
            }
            ETHERTYPE_IPV6 => {
                return Ok(L3 {
                    net: Net::V6,
                    offset,
                    vlan,
                });
            }
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                depth += 1;
                if depth > MAX_VLAN_DEPTH {
                    return Err(Skip::VlanTooDeep {
                        max: MAX_VLAN_DEPTH,
                    });
                }
                let (Some(tci), Some(inner)) = (be16(frame, offset), be16(frame, offset + 2))
                else {
                    return Err(Skip::TruncatedLink {
                        linktype: link.number(),
                        need: offset + 4,
                        have: frame.len(),
                    });
                };
                // The outermost tag is the one a switch port or a virtual network assigns.
                vlan = vlan.or(Some(tci & 0x0fff));
                ethertype = inner;
                offset += 4;
            }
            length if ethernet && length < 0x0600 => return Err(Skip::Llc { length }),
            other => return Err(Skip::NotIp { ethertype: other }),
        }
    }
}

/// BSD loopback address families: AF_INET is 2 everywhere; AF_INET6 differs per system
/// (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30).
#[inline]
fn loopback(family: u32) -> Result<L3, Skip> {
    let net = match family {
        2 => Net::V4,
        10 | 24 | 28 | 30 => Net::V6,
        family => return Err(Skip::NotIpFamily { family }),
    };
    Ok(L3 {
        net,
        offset: 4,
        vlan: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linktype_numbers_round_trip() {
        for n in [0, 1, 101, 108, 113, 228, 229, 276, 147] {
            assert_eq!(LinkType::from_linktype(n).number(), n);
        }
        assert_eq!(LinkType::from_linktype(12), LinkType::Raw);
        assert_eq!(LinkType::from_linktype(14), LinkType::Raw);
        assert_eq!(LinkType::from_linktype(147), LinkType::Other(147));
    }

    #[test]
    fn ethernet_qinq_takes_outer_vlan() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0x20, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00]);
        let l3 = locate(LinkType::Ethernet, &f).map_err(|e| e.label());
        assert_eq!(
            l3,
            Ok(L3 {
                net: Net::V4,
                offset: 22,
                vlan: Some(100)
            })
        );
    }

    #[test]
    fn ethernet_arp_and_llc() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x06]);
        assert_eq!(
            locate(LinkType::Ethernet, &f),
            Err(Skip::NotIp { ethertype: 0x0806 })
        );
        f[12..14].copy_from_slice(&[0x00, 0x26]);
        assert_eq!(
            locate(LinkType::Ethernet, &f),
            Err(Skip::Llc { length: 0x26 })
        );
    }

    #[test]
    fn vlan_tag_cut() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert_eq!(
            locate(LinkType::Ethernet, &f),
            Err(Skip::TruncatedLink {
                linktype: 1,
                need: 18,
                have: 15
            })
        );
    }

    #[test]
    fn null_either_byte_order() {
        assert_eq!(
            locate(LinkType::Null, &[2, 0, 0, 0]).map(|l| l.net),
            Ok(Net::V4)
        );
        assert_eq!(
            locate(LinkType::Null, &[0, 0, 0, 30]).map(|l| l.net),
            Ok(Net::V6)
        );
        assert_eq!(
            locate(LinkType::Loop, &[0, 0, 0, 24]).map(|l| l.net),
            Ok(Net::V6)
        );
        assert_eq!(
            locate(LinkType::Loop, &[0, 0, 0, 7]),
            Err(Skip::NotIpFamily { family: 7 })
        );
    }
}
