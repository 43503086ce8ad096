//! Frames built programmatically, decoded through the public API.

mod common;

use std::net::IpAddr;

use common::*;
use linkward_decode::{Decoder, DecoderConfig, LinkType, Packet, Skip, TcpFlags, Transport};
use smoltcp::wire::{IpProtocol, TcpControl};

fn decoder() -> Decoder {
    Decoder::new(DecoderConfig::default())
}

fn udp_packet<'a>(
    src: IpAddr,
    dst: IpAddr,
    vlan: Option<u16>,
    ip_len: usize,
    payload: &'a [u8],
) -> Packet<'a> {
    Packet {
        src,
        dst,
        protocol: 17,
        vlan,
        ip_len,
        transport: Transport::Udp {
            src_port: 5353,
            dst_port: 53,
            payload,
        },
    }
}

#[test]
fn every_link_type_carries_the_same_packet() {
    let ip = udp4(5353, 53, b"hello");
    let v4 = |vlan| udp_packet(A4.into(), B4.into(), vlan, 33, b"hello");
    let mut null_le = 2u32.to_le_bytes().to_vec();
    null_le.extend_from_slice(&ip);
    let mut null_be = 2u32.to_be_bytes().to_vec();
    null_be.extend_from_slice(&ip);
    let cases: Vec<(LinkType, Vec<u8>)> = vec![
        (LinkType::Ethernet, ethernet(0x0800, &[], &ip)),
        (LinkType::Null, null_le),
        (LinkType::Null, null_be.clone()),
        (LinkType::Loop, null_be),
        (LinkType::Raw, ip.clone()),
        (LinkType::from_linktype(12), ip.clone()),
        (LinkType::Ipv4, ip.clone()),
        (LinkType::LinuxSll, sll(0x0800, &ip)),
        (LinkType::LinuxSll2, sll2(0x0800, &ip)),
    ];
    let mut d = decoder();
    for (link, frame) in &cases {
        assert_eq!(d.decode(*link, frame, 0), Ok(v4(None)), "{link:?}");
    }
}

#[test]
fn ipv6_over_each_link_type() {
    let ip = ipv6(17, &udp(A6.into(), B6.into(), 5353, 53, b"hello"));
    let want = udp_packet(A6.into(), B6.into(), None, 53, b"hello");
    let mut null = 30u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    let mut d = decoder();
    for (link, frame) in [
        (LinkType::Ethernet, ethernet(0x86dd, &[], &ip)),
        (LinkType::Null, null),
        (LinkType::Raw, ip.clone()),
        (LinkType::Ipv6, ip.clone()),
        (LinkType::LinuxSll, sll(0x86dd, &ip)),
        (LinkType::LinuxSll2, sll2(0x86dd, &ip)),
    ] {
        assert_eq!(d.decode(link, &frame, 0), Ok(want), "{link:?}");
    }
    // Raw IPv4 link type with an IPv6 packet inside.
    assert_eq!(
        d.decode(LinkType::Ipv4, &ip, 0),
        Err(Skip::BadIpVersion {
            version: 6,
            expected: 4
        })
    );
}

#[test]
fn vlan_and_qinq() {
    let ip = udp4(5353, 53, b"hello");
    let mut d = decoder();
    let one = ethernet(0x0800, &[(0x8100, 0x2064)], &ip);
    assert_eq!(
        d.decode(LinkType::Ethernet, &one, 0).map(|p| p.vlan),
        Ok(Some(100))
    );
    let qinq = ethernet(0x0800, &[(0x88a8, 0x0123), (0x8100, 0x0456)], &ip);
    assert_eq!(
        d.decode(LinkType::Ethernet, &qinq, 0),
        Ok(udp_packet(A4.into(), B4.into(), Some(0x123), 33, b"hello"))
    );
    let old = ethernet(0x86dd, &[(0x9100, 7)], &ipv6(59, &[]));
    assert_eq!(
        d.decode(LinkType::Ethernet, &old, 0)
            .map(|p| (p.vlan, p.protocol, p.transport)),
        Ok((Some(7), 59, Transport::Other))
    );
    let deep = ethernet(0x0800, &[(0x8100, 1); 9], &ip);
    assert_eq!(
        d.decode(LinkType::Ethernet, &deep, 0),
        Err(Skip::VlanTooDeep { max: 8 })
    );
    let arp_in_vlan = ethernet(0x0806, &[(0x8100, 5)], &[0; 28]);
    assert_eq!(
        d.decode(LinkType::Ethernet, &arp_in_vlan, 0),
        Err(Skip::NotIp { ethertype: 0x0806 })
    );
}

#[test]
fn skipped_frames_are_not_malformed() {
    let mut d = decoder();
    let stp = ethernet(0x0027, &[], &[0x42, 0x42, 0x03, 0, 0]);
    let other = ethernet(0x88cc, &[], &[0; 20]);
    for (link, frame, label) in [
        (LinkType::Ethernet, stp, "llc"),
        (LinkType::Ethernet, other, "not-ip"),
        (LinkType::Other(147), vec![1, 2, 3], "unsupported-link"),
        (LinkType::Null, 7u32.to_le_bytes().to_vec(), "not-ip-family"),
        (LinkType::LinuxSll, sll(0x0806, &[0; 28]), "not-ip"),
    ] {
        let skip = d.decode(link, &frame, 0).err();
        assert_eq!(
            skip.map(|s| (s.label(), s.is_malformed())),
            Some((label, false))
        );
    }
}

#[test]
fn tcp_fields() {
    let ip = tcp4(50000, 443, 0xdead_beef, TcpControl::Syn, &[]);
    let mut d = decoder();
    let p = d.decode(LinkType::Raw, &ip, 0);
    assert_eq!(
        p.map(|p| p.transport),
        Ok(Transport::Tcp {
            src_port: 50000,
            dst_port: 443,
            seq: 0xdead_beef,
            flags: TcpFlags::SYN,
            payload: &[],
        })
    );
    let ip = tcp4(443, 50000, 7, TcpControl::Psh, b"data");
    let p = d.decode(LinkType::Raw, &ip, 0).map(|p| p.transport);
    assert_eq!(
        p.map(|t| (t.payload(), t.ports())),
        Ok((&b"data"[..], Some((443, 50000))))
    );
}

#[test]
fn ethernet_padding_is_trimmed() {
    let ip = udp4(5353, 53, b"x");
    let mut frame = ethernet(0x0800, &[], &ip);
    frame.resize(60, 0xee);
    let mut d = decoder();
    assert_eq!(
        d.decode(LinkType::Ethernet, &frame, 0),
        Ok(udp_packet(A4.into(), B4.into(), None, 29, b"x"))
    );
    // IPv6 too: 40 + 8 + 1 bytes, padded to 64.
    let ip6 = ipv6(17, &udp(A6.into(), B6.into(), 5353, 53, b"y"));
    let mut frame = ethernet(0x86dd, &[], &ip6);
    frame.resize(64, 0xee);
    assert_eq!(
        d.decode(LinkType::Ethernet, &frame, 0),
        Ok(udp_packet(A6.into(), B6.into(), None, 49, b"y"))
    );
    // An empty IPv6 payload is not a jumbogram.
    let mut frame = ethernet(0x86dd, &[], &ipv6(59, &[]));
    frame.resize(60, 0xee);
    assert_eq!(
        d.decode(LinkType::Ethernet, &frame, 0).map(|p| p.ip_len),
        Ok(40)
    );
}

#[test]
fn snaplen_cut_payloads_are_clamped() {
    let payload: Vec<u8> = (0..200u8).collect();
    let ip = tcp4(1, 2, 3, TcpControl::Psh, &payload);
    let frame = ethernet(0x0800, &[], &ip);
    let mut d = decoder();
    // 14 + 20 + 20 + 10 bytes captured.
    let cut = &frame[..64];
    let p = d.decode(LinkType::Ethernet, cut, 0);
    assert_eq!(
        p.map(|p| (p.ip_len, p.transport.payload())),
        Ok((240, &payload[..10]))
    );
    let ip = udp4(5353, 53, &payload);
    let p = d.decode(LinkType::Raw, &ip[..40], 0);
    assert_eq!(
        p.map(|p| (p.ip_len, p.transport.payload())),
        Ok((228, &payload[..12]))
    );
    // Cut inside the TCP header: no ports to report.
    let ip = tcp4(1, 2, 3, TcpControl::Psh, &payload);
    assert_eq!(
        d.decode(LinkType::Raw, &ip[..30], 0),
        Err(Skip::TruncatedTcp { have: 10 })
    );
    // Cut inside the IP header.
    assert_eq!(
        d.decode(LinkType::Raw, &ip[..12], 0),
        Err(Skip::TruncatedIp {
            version: 4,
            need: 20,
            have: 12
        })
    );
}

#[test]
fn malformed_ip_headers() {
    let ip = udp4(5353, 53, b"hello");
    let mut d = decoder();
    let mut bad = ip.clone();
    bad[0] = 0x44; // IHL 4
    assert_eq!(
        d.decode(LinkType::Raw, &bad, 0),
        Err(Skip::BadIpHeaderLen { header_len: 16 })
    );
    let mut bad = ip.clone();
    bad[0] = 0x4f; // IHL 15 = 60 bytes > 33 captured
    assert_eq!(
        d.decode(LinkType::Raw, &bad, 0),
        Err(Skip::TruncatedIp {
            version: 4,
            need: 60,
            have: 33
        })
    );
    let mut bad = ip.clone();
    bad[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        d.decode(LinkType::Raw, &bad, 0),
        Err(Skip::BadTotalLength {
            total_len: 10,
            header_len: 20
        })
    );
    let mut bad = ip.clone();
    bad[0] = 0x55;
    assert_eq!(
        d.decode(LinkType::Raw, &bad, 0),
        Err(Skip::BadIpVersion {
            version: 5,
            expected: 0
        })
    );
    // Total length zero (segmentation offload): go by the captured bytes.
    let mut tso = ip.clone();
    tso[2..4].copy_from_slice(&[0, 0]);
    assert_eq!(
        d.decode(LinkType::Raw, &tso, 0),
        Ok(udp_packet(A4.into(), B4.into(), None, 33, b"hello"))
    );
    // IPv4 options are skipped.
    let mut opts = ip[..20].to_vec();
    opts[0] = 0x46;
    opts[2..4].copy_from_slice(&37u16.to_be_bytes());
    opts.extend_from_slice(&[1, 1, 1, 0]);
    opts.extend_from_slice(&ip[20..]);
    assert_eq!(
        d.decode(LinkType::Raw, &opts, 0),
        Ok(udp_packet(A4.into(), B4.into(), None, 37, b"hello"))
    );
    // A TCP data offset below 5 words.
    let mut bad = tcp4(1, 2, 3, TcpControl::None, b"abcd");
    bad[32] = 0x40;
    let skip = d.decode(LinkType::Raw, &bad, 0).err();
    assert_eq!(
        skip,
        Some(Skip::BadTcpHeaderLen {
            header_len: 16,
            segment_len: 24
        })
    );
    assert_eq!(skip.map(|s| s.is_malformed()), Some(true));
}

#[test]
fn ipv6_extension_headers() {
    let upper = udp(A6.into(), B6.into(), 5353, 53, b"v6");
    // AH with payload length 4: (4 + 2) * 4 = 24 bytes, next header UDP.
    let mut ah = vec![17, 4, 0, 0];
    ah.extend_from_slice(&[0; 20]);
    let mut d = decoder();

    // hop-by-hop -> routing -> destination options -> AH -> UDP
    let mut rest = ext8(43);
    rest.extend_from_slice(&ext8(60));
    rest.extend_from_slice(&ext8(51));
    rest.extend_from_slice(&ah);
    rest.extend_from_slice(&upper);
    let ip = ipv6(0, &rest);
    assert_eq!(
        d.decode(LinkType::Raw, &ip, 0),
        Ok(udp_packet(A6.into(), B6.into(), None, 98, b"v6"))
    );

    // hop-by-hop -> routing -> atomic fragment (offset 0, M=0, not a real fragment)
    // -> destination options -> AH -> UDP
    let mut rest = ext8(43);
    rest.extend_from_slice(&ext8(44));
    rest.extend_from_slice(&frag6(60, 0, false, 9));
    rest.extend_from_slice(&ext8(51));
    rest.extend_from_slice(&ah);
    rest.extend_from_slice(&upper);
    let ip = ipv6(0, &rest);
    assert_eq!(
        d.decode(LinkType::Raw, &ip, 0),
        Ok(udp_packet(A6.into(), B6.into(), None, 106, b"v6"))
    );
    assert_eq!(d.fragment_stats().pending, 0);

    // Hop-by-hop after another header is out of place.
    let mut r = ext8(0);
    r.extend_from_slice(&ext8(17));
    r.extend_from_slice(&upper);
    assert_eq!(
        d.decode(LinkType::Raw, &ipv6(60, &r), 0),
        Err(Skip::MisplacedIpv6Ext {
            header: 0,
            offset: 8
        })
    );
    // A header running past the packet.
    let mut r = ext8(17);
    r[1] = 9;
    assert_eq!(
        d.decode(LinkType::Raw, &ipv6(60, &r), 0),
        Err(Skip::TruncatedIpv6Ext {
            header: 60,
            offset: 0
        })
    );
    // An endless chain of destination options.
    let mut r = Vec::new();
    for _ in 0..20 {
        r.extend_from_slice(&ext8(60));
    }
    assert_eq!(
        d.decode(LinkType::Raw, &ipv6(60, &r), 0),
        Err(Skip::TooManyIpv6Ext { max: 16 })
    );
    // ESP: reported by number.
    assert_eq!(
        d.decode(LinkType::Raw, &ipv6(50, &[0; 16]), 0)
            .map(|p| (p.protocol, p.transport)),
        Ok((50, Transport::Other))
    );
}

/// A 64-byte UDP datagram split into 3 IPv4 fragments (24 + 24 + 16 bytes of IP payload).
fn v4_frags(id: u16) -> (Vec<u8>, Vec<Vec<u8>>) {
    let data: Vec<u8> = (0..56u8).collect();
    let udp_bytes = udp(A4.into(), B4.into(), 5353, 53, &data);
    let frags = ipv4_fragments(IpProtocol::Udp, id, &udp_bytes, &[24, 48]);
    (data, frags)
}

#[test]
fn ipv4_reassembly_in_order_and_out_of_order() {
    let (data, frags) = v4_frags(77);
    let want = udp_packet(A4.into(), B4.into(), None, 84, &data);
    let mut d = decoder();
    assert_eq!(
        d.decode(LinkType::Raw, &frags[0], 1),
        Err(Skip::FragmentPending)
    );
    assert_eq!(
        d.decode(LinkType::Raw, &frags[1], 2),
        Err(Skip::FragmentPending)
    );
    assert_eq!(d.decode(LinkType::Raw, &frags[2], 3), Ok(want));

    let mut d = decoder();
    for i in [2, 0] {
        let got = d.decode(LinkType::Raw, &frags[i], 1).err();
        assert_eq!(
            got.map(|s| (s.label(), s.is_malformed())),
            Some(("fragment-pending", false))
        );
    }
    assert_eq!(d.decode(LinkType::Raw, &frags[1], 2), Ok(want));
    let stats = d.fragment_stats();
    assert_eq!((stats.pending, stats.completed), (0, 1));
}

#[test]
fn ipv4_overlap_and_oversize_are_rejected() {
    let (_, frags) = v4_frags(78);
    let mut d = decoder();
    assert_eq!(
        d.decode(LinkType::Raw, &frags[0], 0),
        Err(Skip::FragmentPending)
    );
    // Same offset, different bytes.
    let mut evil = frags[0].clone();
    evil[30] ^= 0xff;
    let skip = d.decode(LinkType::Raw, &evil, 0).err();
    assert_eq!(skip, Some(Skip::FragmentOverlap { offset: 0 }));
    assert_eq!(skip.map(|s| s.is_malformed()), Some(true));
    assert_eq!(d.fragment_stats().pending, 0);
    // The rest of the datagram can no longer complete it.
    assert_eq!(
        d.decode(LinkType::Raw, &frags[1], 0),
        Err(Skip::FragmentPending)
    );
    assert_eq!(
        d.decode(LinkType::Raw, &frags[2], 0),
        Err(Skip::FragmentPending)
    );

    // A fragment ending beyond 65535 bytes.
    let mut big = frags[2].clone();
    big[6..8].copy_from_slice(&(8190u16).to_be_bytes()); // offset 65520
    assert_eq!(
        d.decode(LinkType::Raw, &big, 0),
        Err(Skip::FragmentTooLarge {
            end: 65536,
            max: 65515
        })
    );
    // A non-final fragment whose length is not a multiple of 8.
    let mut odd = ipv4(IpProtocol::Udp, &[0; 13]);
    odd[4..6].copy_from_slice(&[0, 9]);
    odd[6] = 0x20;
    assert_eq!(
        d.decode(LinkType::Raw, &odd, 0),
        Err(Skip::FragmentMisaligned { offset: 0, len: 13 })
    );
}

#[test]
fn reassembly_is_bounded_and_falls_back_to_first_fragments() {
    let mut d = Decoder::new(DecoderConfig {
        max_fragment_sets: 2,
        max_fragments_per_set: 8,
        fragment_timeout_ns: 1_000,
    });
    for id in 0..2 {
        let (_, frags) = v4_frags(id);
        assert_eq!(
            d.decode(LinkType::Raw, &frags[1], 0),
            Err(Skip::FragmentPending)
        );
    }
    let (_, frags) = v4_frags(9);
    // No room: a first fragment is decoded on its own, ports and all...
    let p = d.decode(LinkType::Raw, &frags[0], 10);
    assert_eq!(
        p.map(|p| (p.ip_len, p.transport.ports(), p.transport.payload().len())),
        Ok((44, Some((5353, 53)), 16))
    );
    // ...and a later one is dropped.
    assert_eq!(
        d.decode(LinkType::Raw, &frags[2], 10),
        Err(Skip::FragmentTableFull)
    );
    assert_eq!(d.fragment_stats().pending, 2);
    // After the timeout, the stale sets make room.
    assert_eq!(
        d.decode(LinkType::Raw, &frags[2], 2_000),
        Err(Skip::FragmentPending)
    );
    let stats = d.fragment_stats();
    assert_eq!((stats.pending, stats.expired), (1, 2));

    // Reassembly off: first fragments only.
    let mut d = Decoder::new(DecoderConfig {
        max_fragment_sets: 0,
        ..DecoderConfig::default()
    });
    assert_eq!(
        d.decode(LinkType::Raw, &frags[0], 0)
            .map(|p| p.transport.ports()),
        Ok(Some((5353, 53)))
    );
}

#[test]
fn truncated_fragments() {
    let (_, frags) = v4_frags(5);
    let mut d = decoder();
    assert_eq!(
        d.decode(LinkType::Raw, &frags[1][..30], 0),
        Err(Skip::FragmentTruncated {
            declared: 24,
            captured: 10
        })
    );
    // A cut first fragment still gives its ports.
    assert_eq!(
        d.decode(LinkType::Raw, &frags[0][..30], 0)
            .map(|p| p.transport.ports()),
        Ok(Some((5353, 53)))
    );
}

#[test]
fn ipv6_reassembly_with_ext_headers() {
    // Unfragmentable part: hop-by-hop. Fragmentable part: destination options + UDP.
    let data: Vec<u8> = (0..40u8).collect();
    let mut fragmentable = ext8(17);
    fragmentable.extend_from_slice(&udp(A6.into(), B6.into(), 5353, 53, &data));
    assert_eq!(fragmentable.len(), 56);
    let piece = |offset: usize, end: usize, more: bool| {
        let mut r = ext8(44);
        r.extend_from_slice(&frag6(60, offset, more, 0xabcd));
        r.extend_from_slice(&fragmentable[offset..end]);
        ipv6(0, &r)
    };
    let frags = [
        piece(0, 24, true),
        piece(24, 48, true),
        piece(48, 56, false),
    ];
    // 40 fixed + 8 hop-by-hop + 56 reassembled.
    let want = udp_packet(A6.into(), B6.into(), None, 104, &data);
    let mut d = decoder();
    assert_eq!(
        d.decode(LinkType::Raw, &frags[2], 0),
        Err(Skip::FragmentPending)
    );
    assert_eq!(
        d.decode(LinkType::Raw, &frags[0], 0),
        Err(Skip::FragmentPending)
    );
    assert_eq!(d.decode(LinkType::Raw, &frags[1], 0), Ok(want));

    let mut d = decoder();
    for f in &frags[..2] {
        assert_eq!(d.decode(LinkType::Raw, f, 0), Err(Skip::FragmentPending));
    }
    assert_eq!(d.decode(LinkType::Raw, &frags[2], 0), Ok(want));

    // Overlap: a second fragment at offset 16.
    let mut d = decoder();
    assert_eq!(
        d.decode(LinkType::Raw, &frags[0], 0),
        Err(Skip::FragmentPending)
    );
    assert_eq!(
        d.decode(LinkType::Raw, &piece(16, 40, true), 0),
        Err(Skip::FragmentOverlap { offset: 16 })
    );
    // Oversize: offset 65528 + 16 bytes.
    let mut r = frag6(17, 65528, false, 1);
    r.extend_from_slice(&[0; 16]);
    assert_eq!(
        d.decode(LinkType::Raw, &ipv6(44, &r), 0),
        Err(Skip::FragmentTooLarge {
            end: 65544,
            max: 65535
        })
    );
    // Atomic fragment: decoded at once.
    let mut r = frag6(17, 0, false, 2);
    r.extend_from_slice(&udp(A6.into(), B6.into(), 5353, 53, b"atomic"));
    assert_eq!(
        d.decode(LinkType::Raw, &ipv6(44, &r), 0)
            .map(|p| p.transport.payload()),
        Ok(&b"atomic"[..])
    );
}

#[test]
fn reassembled_packet_borrows_decoder_until_dropped() {
    let (data, frags) = v4_frags(1);
    let (_, other) = v4_frags(2);
    let mut d = decoder();
    let mut seen = Vec::new();
    for f in frags.iter().chain(other.iter()) {
        if let Ok(p) = d.decode(LinkType::Raw, f, 0) {
            seen.push(p.transport.payload().to_vec());
        }
    }
    assert_eq!(seen, vec![data.clone(), data]);
}
